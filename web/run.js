// The open run's view: header, phases with one row per agent call, log, result; drawn from
// its model (run_model.js).

import { el, setText, fmtDuration, fmtClock, fmtCount, chip, updateChip, TERMINAL } from './ui.js';
import { renderMarkdown } from './markdown.js';
import { isArenaRun } from './arena.js';
import { RunModel, NO_PHASE } from './run_model.js';
import { QuestionsView } from './questions.js';

/** A failed or interrupted run can be resumed under its own id (docs/DESIGN.md §7); a
 * paused one goes on (docs/DESIGN.md §6). */
export const RESUMABLE = new Set(['failed', 'interrupted', 'paused']);
/** A run in progress: it can be cancelled and paused. */
const IN_PROGRESS = new Set(['queued', 'running', 'waiting']);

/**
 * @typedef {object} RunActions
 * @property {(callId: string) => void} skip
 * @property {(callId: string) => void} retry
 * @property {() => void} cancel
 * @property {() => void} resume a paused, failed or interrupted run: the same id; a cancelled one: a new run replaying its calls
 * @property {() => void} pause a run in progress: no new agent call starts
 * @property {(questionId: string, answer: unknown) => Promise<string | null>} answer answers an `ask()`; the refusal's message, or null
 * @property {(ownerId: string) => string} describeOwner how to show the process that executes the run
 */

/**
 * The DOM for one open run.
 * Rows and phase groups are keyed and updated in place, so a click never lands on a row
 * that was just rebuilt, and the live tick only rewrites elapsed-time text.
 */
export class RunView {
  /** @param {RunActions} actions */
  constructor(actions) {
    this.actions = actions;
    /** @type {RunModel | null} */
    this.model = null;
    this.groups = new Map(); // phase title → {section, rows, count, chip}
    this.rows = new Map(); // call_id → row parts
    this.renderedLogs = 0;
    this.renderedResult = null; // [status, result, error] last drawn

    this.title = document.getElementById('run-title');
    this.runId = document.getElementById('run-id');
    this.statusChip = document.getElementById('run-status-chip');
    this.statusText = document.querySelector('[data-testid="run-status"]');
    this.cachedIndicator = document.querySelector('[data-testid="cached-indicator"]');
    this.usageText = document.getElementById('run-usage');
    /** @type {HTMLElement} */
    this.ownerText = document.querySelector('[data-testid="run-owner"]');
    /** @type {HTMLElement} */
    this.resumeCount = document.querySelector('[data-testid="resume-count"]');
    /** @type {HTMLButtonElement} */
    this.cancelButton = document.querySelector('[data-testid="cancel-button"]');
    /** @type {HTMLButtonElement} */
    this.resumeButton = document.querySelector('[data-testid="resume-button"]');
    /** @type {HTMLButtonElement} */
    this.pauseButton = document.querySelector('[data-testid="pause-button"]');
    this.questions = new QuestionsView(document.getElementById('questions'), (qid, answer) => this.actions.answer(qid, answer));
    this.phasesRoot = document.getElementById('phases');
    this.logView = document.querySelector('[data-testid="log-view"]');
    this.resultView = document.querySelector('[data-testid="result-view"]');
    this.resultNote = document.getElementById('result-note');
    this.argsView = document.getElementById('run-args');
    this.cancelButton.addEventListener('click', () => this.actions.cancel());
    this.resumeButton.addEventListener('click', () => this.actions.resume());
    this.pauseButton.addEventListener('click', () => this.actions.pause());
  }

  /** Start showing run `id` (empty until its detail arrives). */
  reset(id) {
    this.model = new RunModel(id);
    this.groups.clear();
    this.rows.clear();
    this.phasesRoot.replaceChildren();
    this.logView.replaceChildren();
    this.resultView.replaceChildren();
    this.argsView.replaceChildren();
    this.renderedLogs = 0;
    this.renderedResult = null;
    this.renderedVersion = -1;
    this.render();
  }

  render() {
    const m = this.model;
    if (!m) return;
    setText(this.title, m.workflow || 'run');
    setText(this.runId, m.id);
    this.renderHeader();
    this.questions.render(m.ended ? [] : m.openQuestions());
    this.renderPhases();
    this.renderLog();
    this.renderResult();
    this.renderedVersion = m.version;
  }

  renderHeader(now = Date.now()) {
    const m = this.model;
    updateChip(this.statusChip, m.status || 'loading');
    const parts = [m.status || 'loading…'];
    if (m.status) parts.push(`${m.calls.size} call${m.calls.size === 1 ? '' : 's'}`);
    const elapsed = m.runElapsed(now);
    if (elapsed !== null) parts.push(fmtDuration(elapsed));
    setText(this.statusText, parts.join(' · '));
    setText(this.cachedIndicator, `${m.cachedCount()} of ${m.calls.size} cached`);
    const u = m.liveUsage();
    const cost = m.liveCost();
    const spent = !cost ? '' : cost.unknown_calls && !cost.usd ? ' · cost unknown' : ` · $${cost.usd.toFixed(4)}${cost.unknown_calls ? ` + ${cost.unknown_calls} unknown` : ''}`;
    setText(this.usageText, u ? `${fmtCount(u.input_tokens)} in · ${fmtCount(u.output_tokens)} out tokens${spent}` : '');
    this.cancelButton.disabled = !(IN_PROGRESS.has(m.status) || m.status === 'paused');
    this.pauseButton.hidden = !IN_PROGRESS.has(m.status) || m.status === 'queued';
    this.resumeButton.hidden = !(RESUMABLE.has(m.status) || m.status === 'cancelled');
    const sameId = RESUMABLE.has(m.status);
    setText(this.resumeButton, sameId ? 'Resume' : 'Resume as a new run');
    this.resumeButton.title = sameId ? 'Queue this run again under its id: its finished calls replay, the others run again' : "Start a new run that reuses this run's finished calls";
    this.ownerText.dataset.owner = m.owner || '';
    setText(this.ownerText, m.owner ? `${m.ended ? 'ran on' : 'on'} ${this.actions.describeOwner(m.owner)}` : '');
    this.resumeCount.hidden = !m.resumeCount;
    setText(this.resumeCount, `resumed ${m.resumeCount}×`);
    if (m.args !== undefined && !this.argsView.childElementCount && m.args !== null) {
      this.argsView.append(el('summary', {}, 'args'), el('pre', {}, JSON.stringify(m.args, null, 2)));
    }
  }

  group(title) {
    let g = this.groups.get(title);
    if (g) return g;
    const count = el('span', { class: 'phase-count' });
    const state = el('span', { class: 'chip st-pending phase-chip' }, 'pending');
    const rows = el('div', { class: 'phase-rows' });
    const section = el(
      'section',
      { class: 'phase', 'data-testid': 'phase-group', 'data-phase': title },
      el('h3', { class: 'phase-header', 'data-testid': 'phase-header' }, state, el('span', { class: 'phase-title' }, title), count),
      rows,
    );
    g = { section, rows, count, state };
    this.groups.set(title, g);
    return g;
  }

  renderPhases() {
    const m = this.model;
    const calls = [...m.calls.values()].sort((a, b) => a.seq - b.seq);
    const byPhase = new Map();
    for (const c of calls) {
      const key = c.phase || NO_PHASE;
      if (!byPhase.has(key)) byPhase.set(key, []);
      byPhase.get(key).push(c);
    }
    // "(no phase)" first (calls before the first phase()), then phases as entered.
    const order = [...(byPhase.has(NO_PHASE) ? [NO_PHASE] : []), ...m.phases, ...[...byPhase.keys()].filter((k) => k !== NO_PHASE && !m.phases.includes(k))];
    order.forEach((title, index) => {
      const g = this.group(title);
      if (this.phasesRoot.children[index] !== g.section) this.phasesRoot.insertBefore(g.section, this.phasesRoot.children[index] || null);
      const list = byPhase.get(title) || [];
      list.forEach((call, i) => {
        const row = this.row(call);
        if (g.rows.children[i] !== row.node) g.rows.insertBefore(row.node, g.rows.children[i] || null);
      });
      const done = list.filter((c) => TERMINAL.has(c.status)).length;
      setText(g.count, list.length ? `${done}/${list.length}` : 'no calls');
      // A phase's state: the server's phase step when we have it, else what its calls say.
      let state = m.phaseStatus.get(title) || null;
      if (!state && list.length) {
        if (list.some((c) => c.status === 'running')) state = 'running';
        else if (list.some((c) => c.status === 'failed')) state = 'failed';
        else if (done === list.length) state = 'completed';
        else state = 'pending';
      }
      if (state === 'running' && m.ended) state = m.status;
      // A phase the script never reached in a finished run (e.g. an optional step).
      if ((state === 'pending' || (!state && !list.length)) && m.ended) state = 'skipped';
      g.state.hidden = !state;
      if (state) updateChip(g.state, state);
      g.section.classList.toggle('idle', !list.length);
    });
    if (!order.length) {
      if (!this.phasesRoot.querySelector('.empty')) this.phasesRoot.append(el('div', { class: 'empty muted' }, m.status ? 'No agent calls yet.' : 'Loading…'));
    } else this.phasesRoot.querySelector(':scope > .empty')?.remove();
  }

  row(call) {
    let r = this.rows.get(call.call_id);
    if (!r) {
      r = {
        chip: chip(call.status, 'call-status'),
        label: el('span', { class: 'call-label' }),
        agent: el('span', { class: 'call-agent muted' }),
        elapsed: el('span', { class: 'call-elapsed', 'data-testid': 'call-elapsed' }),
        tokens: el('span', { class: 'call-tokens muted', 'data-testid': 'call-tokens' }),
        badge: el('span', { class: 'badge-slot' }),
        error: el('div', { class: 'call-error' }),
        skip: el('button', { class: 'btn small', 'data-testid': 'skip-button', title: 'Skip this call: it resolves to null and the workflow goes on', onclick: () => this.actions.skip(call.call_id) }, 'Skip'),
        retry: el('button', { class: 'btn small', 'data-testid': 'retry-button', title: 'Abort this attempt and start the call again', onclick: () => this.actions.retry(call.call_id) }, 'Retry'),
      };
      r.node = el(
        'div',
        { class: 'call-row', 'data-testid': 'agent-row', 'data-call-id': call.call_id },
        r.chip,
        el('div', { class: 'call-main' }, el('div', { class: 'call-line' }, r.label, r.badge), r.agent, r.error),
        r.elapsed,
        r.tokens,
        el('span', { class: 'call-actions' }, r.skip, r.retry),
      );
      this.rows.set(call.call_id, r);
    }
    r.call = call;
    r.node.dataset.status = call.status;
    updateChip(r.chip, call.status);
    setText(r.label, call.label || call.call_id);
    r.label.title = call.call_id;
    setText(r.agent, [call.agent, call.model].filter(Boolean).join(' · ') || 'default agent');
    const u = call.usage;
    setText(r.tokens, u && (u.input_tokens || u.output_tokens) ? `${fmtCount(u.input_tokens)} in · ${fmtCount(u.output_tokens)} out` : '');
    r.tokens.title = u ? `input ${u.input_tokens ?? 0}, output ${u.output_tokens ?? 0}, cached ${u.cached_tokens ?? 0}, reasoning ${u.reasoning_tokens ?? 0}` : '';
    const hasBadge = Boolean(r.badge.firstChild);
    if (call.cached && !hasBadge) r.badge.append(el('span', { class: 'badge cached', 'data-testid': 'cached-badge', title: 'answered from the cache' }, 'cached'));
    if (!call.cached && hasBadge) r.badge.replaceChildren();
    setText(r.error, call.error || '');
    const live = (call.status === 'pending' || call.status === 'running') && !this.model.ended;
    r.skip.disabled = !live;
    r.retry.disabled = !live;
    this.tickRow(r, Date.now());
    return r;
  }

  tickRow(r, now) {
    const ms = this.model.callElapsed(r.call, now);
    setText(r.elapsed, ms === null || ms === undefined ? '' : fmtDuration(ms));
  }

  /** Called a few times a second: only the running clocks change. */
  tick() {
    const m = this.model;
    if (!m) return;
    if (m.version !== this.renderedVersion) {
      this.render();
      return;
    }
    const now = Date.now();
    if (m.status === 'running' || m.status === 'waiting' || m.status === 'paused') this.renderHeader(now);
    for (const r of this.rows.values()) if (r.call.status === 'running') this.tickRow(r, now);
  }

  renderLog() {
    const m = this.model;
    if (this.renderedLogs === m.logs.length) return;
    const view = this.logView;
    // Follow the tail only when the reader is already at the bottom.
    const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 24;
    const fresh = m.logs.slice(this.renderedLogs).map((line) =>
      el(
        'div',
        { class: `log-line lvl-${String(line.level).toLowerCase()}`, 'data-testid': 'log-line' },
        el('span', { class: 'log-time' }, fmtClock(line.at)),
        el('span', { class: 'log-level' }, line.level),
        el('span', { class: 'log-msg' }, line.message),
      ),
    );
    view.append(...fresh);
    this.renderedLogs = m.logs.length;
    if (atBottom || this.renderedLogs === fresh.length) view.scrollTop = view.scrollHeight;
  }

  renderResult() {
    const m = this.model;
    const key = this.renderedResult;
    if (key && key[0] === m.status && key[1] === m.result && key[2] === m.error) return;
    this.renderedResult = [m.status, m.result, m.error];
    const view = this.resultView;
    view.replaceChildren();
    view.classList.remove('failed');
    if (!m.ended) {
      setText(this.resultNote, m.status ? 'The result appears when the run ends.' : '');
      return;
    }
    setText(this.resultNote, '');
    if (m.status !== 'completed') {
      view.classList.add('failed');
      view.append(el('pre', { class: 'error-text' }, m.error || `run ${m.status}`));
      if (m.result === undefined || m.result === null) return;
    }
    if (m.result === undefined) return;
    if (typeof m.result === 'string') view.append(renderMarkdown(m.result));
    else {
      const json = el('pre', { class: 'json' }, JSON.stringify(m.result, null, 2));
      // The arena view above shows an arena result; its raw JSON stays one click away.
      view.append(isArenaRun(m) && m.status === 'completed' ? el('details', {}, el('summary', {}, 'raw result (JSON)'), json) : json);
    }
  }
}
