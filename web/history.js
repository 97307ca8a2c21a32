// Run history: GET /api/runs (newest first, cursor-paginated), kept current by the
// WebSocket (new runs appear on top, statuses change as runs end).

import { api } from './api.js';
import { el, setText, toMs, fmtDateTime, chip, updateChip } from './ui.js';

export class History {
  constructor(root, { onOpen, showError }) {
    this.onOpen = onOpen;
    this.showError = showError;
    this.items = new Map(); // run_id → {node, chip, agents}
    this.list = el('ol', { class: 'history', 'data-testid': 'run-history' });
    this.more = el('button', { class: 'btn small', 'data-testid': 'history-load-more', hidden: true, onclick: () => this.loadMore() }, 'Load more');
    this.cursor = null;
    this.activeId = null;
    root.append(this.list, this.more);
  }

  async load() {
    try {
      const page = await api('GET', '/api/runs?limit=20');
      this.list.replaceChildren();
      this.items.clear();
      this.addPage(page);
    } catch (e) {
      this.showError(e.message);
    }
  }

  async loadMore() {
    if (!this.cursor) return;
    this.more.disabled = true;
    try {
      this.addPage(await api('GET', `/api/runs?limit=20&cursor=${encodeURIComponent(this.cursor)}`));
    } catch (e) {
      this.showError(e.message);
    } finally {
      this.more.disabled = false;
    }
  }

  addPage(page) {
    for (const run of (page && page.runs) || []) this.upsert(run, false);
    this.cursor = (page && page.next_cursor) || null;
    this.more.hidden = !this.cursor;
    if (!this.items.size) this.list.append(el('li', { class: 'empty muted' }, 'No runs yet.'));
  }

  /** Add or update one run summary; `top` puts a new one first (a run that just started). */
  upsert(run, top) {
    let item = this.items.get(run.run_id);
    if (!item) {
      this.list.querySelector(':scope > .empty')?.remove();
      const status = chip(run.status, 'history-status');
      const agents = el('span', { class: 'muted' });
      const when = el('span', { class: 'muted history-when' });
      const name = el('span', { class: 'history-name' });
      const node = el(
        'li',
        { 'data-testid': 'history-item', 'data-run-id': run.run_id },
        el('button', { class: 'history-button', title: run.run_id, onclick: () => this.onOpen(run.run_id) }, status, name, when, agents),
      );
      item = { node, status, agents, when, name, run: {} };
      this.items.set(run.run_id, item);
      if (top) this.list.prepend(node);
      else this.list.append(node);
    }
    Object.assign(item.run, Object.fromEntries(Object.entries(run).filter(([, v]) => v !== undefined)));
    const r = item.run;
    updateChip(item.status, r.status);
    setText(item.name, r.workflow || '…');
    setText(item.when, fmtDateTime(toMs(r.started_at)) || 'just now');
    const a = r.agents;
    setText(item.agents, a ? `${a.total} call${a.total === 1 ? '' : 's'}${a.cached ? `, ${a.cached} cached` : ''}${a.failed ? `, ${a.failed} failed` : ''}` : '');
    item.node.classList.toggle('active', r.run_id === this.activeId);
  }

  /** Update a run already in the list (from its detail); unknown runs are left out. */
  update(run) {
    if (this.items.has(run.run_id)) this.upsert(run, false);
  }

  setActive(runId) {
    this.activeId = runId;
    for (const [id, item] of this.items) item.node.classList.toggle('active', id === runId);
  }

  /** Keep statuses current from WebSocket frames of any run. */
  onFrame(f) {
    if (!f.run_id) return;
    const known = this.items.get(f.run_id);
    if (f.type === 'flow_run_started') {
      this.upsert({ run_id: f.run_id, workflow: f.flow_name, status: f.status || 'running' }, !known);
    } else if (!known) {
      return;
    } else if (f.run_status) {
      const report = f.report && typeof f.report === 'object' ? f.report : {};
      this.upsert({ run_id: f.run_id, status: f.run_status, agents: report.agents, finished_at: report.finished_at }, false);
    } else if (f.type === 'flow_run_step_updated' && known.run.status === 'queued') {
      this.upsert({ run_id: f.run_id, status: 'running' }, false);
    }
  }
}
