// Run history: GET /api/runs (newest first, cursor-paginated), kept current by the
// WebSocket (new runs appear on top, statuses change as runs end).

import { listRuns } from './api.js';
import { el, setText, toMs, fmtDateTime, chip, updateChip } from './ui.js';

/** @typedef {import('./api.js').RunsPage} RunsPage */
/** @typedef {import('./api.js').Frame} Frame */
/** @typedef {import('./types/RunSummary').RunSummary} RunSummary */
/** What is known of a run so far: its id, then any fields of its summary. @typedef {Partial<RunSummary> & {run_id: string}} KnownRun */
/**
 * @typedef {object} HistoryItem
 * @property {HTMLElement} node
 * @property {HTMLElement} status
 * @property {HTMLElement} agents
 * @property {HTMLElement} when
 * @property {HTMLElement} name
 * @property {HTMLElement} resumed
 * @property {KnownRun} run
 */

export class History {
  /**
   * @param {HTMLElement} root
   * @param {{onOpen: (runId: string) => void, showError: (message: string) => void}} hooks
   */
  constructor(root, { onOpen, showError }) {
    this.onOpen = onOpen;
    this.showError = showError;
    /** @type {Map<string, HistoryItem>} run_id → its list item */
    this.items = new Map();
    this.list = el('ol', { class: 'history', 'data-testid': 'run-history' });
    this.more = el('button', { class: 'btn small', 'data-testid': 'history-load-more', hidden: true, onclick: () => this.loadMore() }, 'Load more');
    /** @type {string | null} */
    this.cursor = null;
    /** @type {string | null} */
    this.activeId = null;
    root.append(this.list, this.more);
  }

  async load() {
    try {
      const page = await listRuns(20);
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
      this.addPage(await listRuns(20, this.cursor));
    } catch (e) {
      this.showError(e.message);
    } finally {
      this.more.disabled = false;
    }
  }

  /** @param {RunsPage} page */
  addPage(page) {
    for (const run of (page && page.runs) || []) this.upsert(run, false);
    this.cursor = (page && page.next_cursor) || null;
    this.more.hidden = !this.cursor;
    if (!this.items.size) this.list.append(el('li', { class: 'empty muted' }, 'No runs yet.'));
  }

  /**
   * Add or update one run summary; `top` puts a new one first (a run that just started).
   * @param {KnownRun} run
   * @param {boolean} top
   */
  upsert(run, top) {
    let item = this.items.get(run.run_id);
    if (!item) {
      this.list.querySelector(':scope > .empty')?.remove();
      const status = chip(run.status, 'history-status');
      const agents = el('span');
      const when = el('span', { class: 'muted history-when' });
      const name = el('span', { class: 'history-name' });
      const resumed = el('span', { class: 'badge resumed', hidden: true });
      const node = el(
        'li',
        { 'data-testid': 'history-item', 'data-run-id': run.run_id },
        el('button', { class: 'history-button', title: run.run_id, onclick: () => this.onOpen(run.run_id) }, status, name, when, el('span', { class: 'muted' }, agents, ' ', resumed)),
      );
      item = { node, status, agents, when, name, resumed, run: { run_id: run.run_id } };
      this.items.set(run.run_id, item);
      if (top) this.list.prepend(node);
      else this.list.append(node);
    }
    Object.assign(item.run, Object.fromEntries(Object.entries(run).filter(([, v]) => v !== undefined)));
    const r = item.run;
    updateChip(item.status, r.status);
    setText(item.name, r.workflow || '…');
    setText(item.when, fmtDateTime(toMs(r.started_at)) || 'just now');
    item.resumed.hidden = !r.resume_count;
    setText(item.resumed, `resumed ${r.resume_count}×`);
    const a = r.agents;
    setText(item.agents, a ? `${a.total} call${a.total === 1 ? '' : 's'}${a.cached ? `, ${a.cached} cached` : ''}${a.failed ? `, ${a.failed} failed` : ''}` : '');
    item.node.classList.toggle('active', r.run_id === this.activeId);
  }

  /**
   * Update a run already in the list (from its detail); unknown runs are left out.
   * @param {KnownRun} run
   */
  update(run) {
    if (this.items.has(run.run_id)) this.upsert(run, false);
  }

  /** @param {string | null} runId */
  setActive(runId) {
    this.activeId = runId;
    for (const [id, item] of this.items) item.node.classList.toggle('active', id === runId);
  }

  /**
   * Keep statuses current from WebSocket frames of any run.
   * @param {Frame} f
   */
  onFrame(f) {
    if (!f.run_id) return;
    const known = this.items.get(f.run_id);
    if (f.type === 'flow_run_started') {
      this.upsert({ run_id: f.run_id, workflow: f.flow_name, status: f.status || 'running' }, !known);
    } else if (!known) {
      return;
    } else if (f.type === 'flow_run_step_updated' && 'run_status' in f) {
      this.upsert({ run_id: f.run_id, status: f.run_status, agents: f.report ? f.report.agents : undefined }, false);
    } else if (f.type === 'flow_run_step_updated' && known.run.status === 'queued') {
      this.upsert({ run_id: f.run_id, status: 'running' }, false);
    }
  }
}
