// The trace view: one horizontal timing bar per agent call, from
// GET /api/runs/{id}/traces (paginated by a seq cursor). A bar starts at
// started_at − run start and is as wide as the call's duration, on a shared time axis.

import { getTraces } from './api.js';
import { el, setText, toMs, fmtDuration, fmtCount } from './ui.js';

/** @typedef {import('./types/TraceRow').TraceRow} TraceRow */

export class TraceView {
  /**
   * @param {HTMLElement} root
   * @param {(message: string) => void} showError
   */
  constructor(root, showError) {
    this.root = root;
    this.showError = showError;
    this.list = el('div', { class: 'trace-rows' });
    this.axisEnd = el('span');
    this.axis = el('div', { class: 'trace-row trace-axis muted', hidden: true }, el('span'), el('div', { class: 'trace-scale' }, el('span', {}, '0 s'), this.axisEnd), el('span'), el('span'));
    this.more = el('button', { class: 'btn small', 'data-testid': 'trace-load-more', hidden: true, onclick: () => this.loadPage() }, 'Load more');
    this.refresh = el('button', { class: 'btn small', title: 'Reload the traces', onclick: () => this.load(this.runId, this.runStart) }, 'Refresh');
    this.note = el('span', { class: 'muted' });
    root.append(el('div', { class: 'trace-tools' }, this.note, this.refresh), this.axis, this.list, this.more);
    /** @type {string | null} */
    this.runId = null;
    /** @type {number | null} */
    this.runStart = null;
    /** @type {TraceRow[]} */
    this.traces = [];
    /** @type {number | null} the `next_cursor` (a call seq) of the last page */
    this.cursor = null;
  }

  /**
   * Load the first page of run `runId`'s traces.
   * @param {string} runId
   * @param {number | null} runStart the run's start in epoch ms
   */
  async load(runId, runStart) {
    this.runId = runId;
    this.runStart = runStart;
    this.traces = [];
    this.cursor = null;
    this.generation = (this.generation || 0) + 1;
    await this.loadPage(true);
  }

  async loadPage(first = false) {
    const runId = this.runId;
    const generation = this.generation;
    if (!runId) return;
    this.more.disabled = true;
    try {
      const page = await getTraces(runId, 50, first ? null : this.cursor);
      if (generation !== this.generation) return; // another run was opened meanwhile
      this.traces.push(...((page && page.traces) || []));
      this.cursor = page && page.next_cursor !== undefined ? page.next_cursor : null;
      this.draw();
    } catch (e) {
      if (generation === this.generation) this.showError(e.message);
    } finally {
      this.more.disabled = false;
    }
  }

  clear() {
    this.runId = null;
    this.generation = (this.generation || 0) + 1;
    this.list.replaceChildren();
    this.axis.hidden = true;
    setText(this.note, '');
    this.more.hidden = true;
  }

  draw() {
    const spans = this.traces.map((t) => {
      const start = toMs(t.started_at);
      let end = toMs(t.finished_at);
      if (end === null && start !== null && t.duration_ms !== null && t.duration_ms !== undefined) end = start + t.duration_ms;
      return { t, start, end };
    });
    const starts = spans.map((s) => s.start).filter((v) => v !== null);
    const origin = this.runStart ?? (starts.length ? Math.min(...starts) : 0);
    const ends = spans.map((s) => s.end ?? s.start).filter((v) => v !== null);
    const total = Math.max(1, ...ends.map((e) => e - origin));
    setText(this.axisEnd, fmtDuration(total));
    this.axis.hidden = !this.traces.length;
    setText(this.note, `${this.traces.length} call${this.traces.length === 1 ? '' : 's'}${this.cursor !== null ? ' (more available)' : ''}`);
    this.more.hidden = this.cursor === null;
    this.list.replaceChildren(
      ...spans.map(({ t, start, end }) => {
        const left = start === null ? 0 : ((start - origin) / total) * 100;
        const width = start === null || end === null ? 0 : ((end - start) / total) * 100;
        const bar = el('div', { class: `trace-bar st-${t.status}${t.cached ? ' cached' : ''}` });
        bar.style.left = `${Math.max(0, Math.min(100, left))}%`;
        bar.style.width = `${Math.max(0.4, Math.min(100 - left, width))}%`;
        const u = t.usage;
        const details = [
          `${t.label || t.call_id} (${t.status}${t.cached ? ', cached' : ''})`,
          `agent: ${[t.agent, t.model].filter(Boolean).join(' · ') || 'default'}`,
          `start +${fmtDuration(start === null ? 0 : start - origin)}, duration ${fmtDuration(t.duration_ms ?? (end !== null && start !== null ? end - start : null)) || '—'}`,
          t.first_update_ms !== null && t.first_update_ms !== undefined ? `first update after ${t.first_update_ms} ms` : null,
          `tokens: ${u.input_tokens ?? 0} in, ${u.output_tokens ?? 0} out, ${u.cached_tokens ?? 0} cached, ${u.reasoning_tokens ?? 0} reasoning`,
          t.retries ? `retries: ${t.retries}` : null,
          t.stop_reason ? `stop: ${t.stop_reason}` : null,
          t.tool_calls ? `tool calls: ${t.tool_calls}` : null,
          t.served_by ? `served by: ${t.served_by}` : null,
        ].filter(Boolean);
        return el(
          'div',
          { class: 'trace-row', 'data-testid': 'trace-row', 'data-call-id': t.call_id, title: details.join('\n') },
          el('span', { class: 'trace-label' }, t.label || t.call_id),
          el('div', { class: 'trace-track' }, bar),
          el('span', { class: 'trace-dur' }, fmtDuration(t.duration_ms ?? (end !== null && start !== null ? end - start : null))),
          el('span', { class: 'trace-tok muted' }, `${fmtCount(u.output_tokens)} out`),
        );
      }),
    );
    if (!this.traces.length) this.list.append(el('div', { class: 'empty muted' }, 'No traces yet.'));
  }
}
