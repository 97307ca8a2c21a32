// The open run: its model (built from GET /api/runs/{id}, then kept live by WebSocket
// frames) and its view (header, phases with one row per agent call, log, result).
//
// Two ways state arrives, and why they are merged differently:
//  - a snapshot (the REST detail, a (re)connect replay, frames buffered while the REST call
//    was in flight) may be older than what we already know, so it never moves a status
//    backwards (pending → running → finished);
//  - a live frame is the newest word and is applied as is (a retried call may go back).

import { el, setText, toMs, fmtDuration, fmtClock, fmtCount, chip, updateChip, statusRank, TERMINAL } from './ui.js';
import { renderMarkdown } from './markdown.js';
import { isArenaRun } from './arena.js';

/** @typedef {import('./api.js').RunDetail} RunDetail */
/** @typedef {import('./api.js').Frame} Frame */
/** @typedef {import('./types/Step').Step} Step */
/** @typedef {import('./types/StepUpdate').StepUpdate} StepUpdate */
/** @typedef {import('./types/StepStatus').StepStatus} StepStatus */
/** @typedef {import('./types/LogRecord').LogRecord} LogRecord */
/** @typedef {import('./types/Usage').Usage} Usage */
/** @typedef {import('./types/AgentCounts').AgentCounts} AgentCounts */
/** @typedef {import('./types/UsageTotals').UsageTotals} UsageTotals */
/** A call's step update (`flow_run_step_updated` of a call). @typedef {Extract<StepUpdate, {agent: string}>} CallUpdate */
/** The run's own step update (`step_id` `run`). @typedef {Extract<StepUpdate, {run_status: unknown}>} RunUpdate */
/**
 * A call as the view shows it; times are epoch ms.
 * @typedef {object} Call
 * @property {string} call_id
 * @property {number} seq
 * @property {string | null} label
 * @property {string | null} phase
 * @property {string} status a call status (docs/DESIGN.md §6)
 * @property {boolean} cached
 * @property {string | null} agent
 * @property {string | null} model
 * @property {number | null} startedAt
 * @property {number | null} finishedAt
 * @property {number | null} duration ms at the agent
 * @property {Usage | null} usage
 * @property {string | null} error
 */

export const NO_PHASE = '(no phase)';
const RUN_TERMINAL = new Set(['completed', 'failed', 'cancelled', 'interrupted']);

export class RunModel {
  /** @param {string} id */
  constructor(id) {
    this.id = id;
    /** @type {string | null} */
    this.workflow = null;
    /** @type {string | null} */
    this.source = null;
    /** @type {string | null} a run status (docs/DESIGN.md §6); null until known */
    this.status = null;
    /** @type {unknown} */
    this.args = undefined;
    /** The script's result: any JSON its workflow returns. @type {any} */
    this.result = undefined;
    /** @type {string | null} */
    this.error = null;
    /** @type {number | null} */
    this.startedAt = null;
    /** @type {number | null} */
    this.finishedAt = null;
    /** @type {UsageTotals | null} */
    this.usage = null;
    /** @type {AgentCounts | null} */
    this.agents = null;
    /** @type {Record<string, string>} */
    this.annotations = {};
    /** `meta.annotations` of the workflow: key → result path. @type {Record<string, string>} */
    this.annotationRules = {};
    /** The owner id of the process executing the run (docs/DESIGN.md §7). @type {string | null} */
    this.owner = null;
    /** Takeovers and resumes under the same id. */
    this.resumeCount = 0;
    /** @type {string[]} titles: the detail's list (meta phases), then any entered later */
    this.phases = [];
    /** @type {Map<string, string>} title → status from the phase steps of the WebSocket */
    this.phaseStatus = new Map();
    /** @type {string | null} */
    this.currentPhase = null;
    /** @type {Map<string, Call>} call_id → call */
    this.calls = new Map();
    this.nextSeq = 0; // local order for calls first seen on the WebSocket (no seq yet)
    this.logs = [];
    this.logKeys = new Set();
    this.version = 0; // bumped on every change the view must show
  }

  get ended() {
    return RUN_TERMINAL.has(this.status);
  }

  /**
   * The authoritative REST detail: replaces what we knew, keeping local start times.
   * @param {RunDetail} d
   */
  applyDetail(d) {
    this.workflow = d.workflow ?? this.workflow;
    this.source = d.source ?? this.source;
    this.setStatus(d.status, false);
    this.args = d.args;
    if ('result' in d) this.result = d.result;
    this.error = d.error ?? null;
    this.startedAt = toMs(d.started_at) ?? this.startedAt;
    this.finishedAt = toMs(d.finished_at) ?? (this.ended ? this.finishedAt : null);
    this.usage = d.usage ?? this.usage;
    this.agents = d.agents ?? this.agents;
    this.annotations = d.annotations || {};
    this.annotationRules = d.annotation_rules || {};
    this.owner = d.owner ?? null;
    this.resumeCount = d.resume_count ?? 0;
    for (const p of d.phases || []) this.addPhase(p);
    const previous = this.calls;
    this.calls = new Map();
    const calls = [...(d.calls || [])].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    for (const c of calls) {
      const old = previous.get(c.call_id);
      /** @type {Call} */
      const call = {
        call_id: c.call_id,
        seq: c.seq ?? this.nextSeq,
        label: c.label || null,
        phase: c.phase || null,
        status: c.status || 'pending',
        cached: Boolean(c.cached),
        agent: c.agent || null,
        model: c.model || null,
        startedAt: toMs(c.started_at) ?? (old && old.startedAt) ?? null,
        finishedAt: toMs(c.finished_at),
        duration: c.duration_ms ?? null,
        usage: c.usage || null,
        error: c.error || null,
      };
      if (call.status === 'running' && call.startedAt === null) call.startedAt = Date.now();
      this.nextSeq = Math.max(this.nextSeq, (call.seq ?? 0) + 1);
      this.calls.set(call.call_id, call);
      if (call.phase) this.addPhase(call.phase);
    }
    this.version += 1;
  }

  /** @param {LogRecord[] | undefined} logs */
  applyLogs(logs) {
    for (const line of logs || []) this.addLog(line);
  }

  /** @param {{at: string, level: string, message: string}} line a log record or a `workflow_log` frame */
  addLog(line) {
    const at = toMs(line.at);
    const key = `${at}|${line.level}|${line.message}`;
    if (this.logKeys.has(key)) return;
    this.logKeys.add(key);
    this.logs.push({ at, level: line.level || 'info', message: String(line.message ?? '') });
    this.version += 1;
  }

  /** @param {string | null | undefined} title */
  addPhase(title) {
    if (!title || this.phases.includes(title)) return;
    this.phases.push(title);
    this.version += 1;
  }

  /**
   * @param {string} title
   * @param {StepStatus} status
   */
  updatePhase(title, status) {
    this.addPhase(title);
    if (title && status && this.phaseStatus.get(title) !== status) {
      this.phaseStatus.set(title, status);
      this.version += 1;
    }
  }

  /**
   * @param {string | null | undefined} status
   * @param {boolean} snapshot a snapshot never moves the status backwards
   */
  setStatus(status, snapshot) {
    if (!status || status === this.status) return;
    if (snapshot && this.status && statusRank(status) <= statusRank(this.status)) return;
    this.status = status;
    if (status === 'running' && this.startedAt === null) this.startedAt = Date.now();
    if (RUN_TERMINAL.has(status) && this.finishedAt === null) this.finishedAt = Date.now();
    this.version += 1;
  }

  /**
   * Merge a step (manifest entry or update) into call `id`.
   * @param {string} id
   * @param {Step | CallUpdate} s
   * @param {boolean} snapshot
   */
  updateCall(id, s, snapshot) {
    let call = this.calls.get(id);
    if (!call) {
      call = { call_id: id, seq: this.nextSeq++, label: null, phase: null, status: 'pending', cached: false, agent: null, model: null, startedAt: null, finishedAt: null, duration: null, usage: null, error: null };
      this.calls.set(id, call);
    }
    if (s.label) call.label = s.label;
    if (s.phase) call.phase = s.phase;
    if (s.agent) call.agent = s.agent;
    if (s.model) call.model = s.model;
    if (call.phase) this.addPhase(call.phase);
    if (s.cached !== undefined && s.cached !== null) call.cached = snapshot ? call.cached || Boolean(s.cached) : Boolean(s.cached);
    const status = s.status;
    const moves = status && status !== call.status && (!snapshot || statusRank(status) > statusRank(call.status));
    if (moves) {
      call.status = status;
      if (status === 'running' || status === 'pending') {
        // A live restart (retry) begins a new attempt: forget the previous end.
        call.finishedAt = null;
        call.duration = null;
        call.error = null;
      }
      if (status === 'running' && (call.startedAt === null || !snapshot)) call.startedAt = Date.now();
      if (TERMINAL.has(status)) call.finishedAt = call.finishedAt ?? Date.now();
    }
    const report = s.report;
    if (report && typeof report === 'object' && (moves || !snapshot || call.duration === null)) {
      if (report.duration_ms !== undefined && report.duration_ms !== null) call.duration = report.duration_ms;
      if (report.usage) call.usage = report.usage;
      if (report.error) call.error = report.error;
    }
    if (this.status === 'queued' || this.status === null) this.setStatus('running', true);
    this.version += 1;
  }

  /**
   * Apply one WebSocket frame; returns true when it ended the run.
   * @param {Frame} f
   * @param {boolean} snapshot
   * @returns {boolean}
   */
  applyFrame(f, snapshot) {
    switch (f.type) {
      case 'flow_run_started':
        if (f.flow_name && !this.workflow) this.workflow = f.flow_name;
        this.setStatus(f.status, true);
        for (const s of f.steps || []) {
          if (!s || !s.step_id) continue;
          if (s.kind === 'phase' || s.step_id.startsWith('phase:')) this.updatePhase(s.step_id.startsWith('phase:') ? s.step_id.slice(6) : s.label, s.status);
          else this.updateCall(s.step_id, s, true);
        }
        this.version += 1;
        return false;
      case 'flow_run_step_updated': {
        if ('run_status' in f) return this.applyRunStep(f, snapshot);
        const id = f.step_id;
        if (!id) return false;
        if (id.startsWith('phase:') || !('agent' in f)) this.updatePhase(id.slice(6), f.status);
        else this.updateCall(id, f, snapshot);
        return false;
      }
      case 'workflow_log':
        this.addLog(f);
        return false;
      case 'workflow_phase':
        this.addPhase(f.title);
        this.currentPhase = f.title || this.currentPhase;
        if (f.title) this.phaseStatus.set(f.title, 'running');
        if (this.status === 'queued') this.setStatus('running', true);
        this.version += 1;
        return false;
      default:
        return false;
    }
  }

  /**
   * The run's own step: its status, and at its end the `--json` outcome.
   * @param {RunUpdate} f
   * @param {boolean} snapshot
   * @returns {boolean} it ended the run
   */
  applyRunStep(f, snapshot) {
    const wasEnded = this.ended;
    this.setStatus(f.run_status, snapshot);
    if (!RUN_TERMINAL.has(f.run_status)) return false;
    const r = f.report && typeof f.report === 'object' ? f.report : null;
    if (r && (!snapshot || !wasEnded)) {
      if ('result' in r) this.result = r.result;
      if (r.error) this.error = r.error;
      if (r.agents) this.agents = r.agents;
      if (r.usage) this.usage = r.usage;
    }
    this.version += 1;
    return !wasEnded;
  }

  /**
   * @param {Call} call
   * @returns {number | null} ms
   */
  callElapsed(call, now = Date.now()) {
    if (call.duration !== null && call.duration !== undefined && TERMINAL.has(call.status)) return call.duration;
    if (call.startedAt === null) return call.duration;
    if (TERMINAL.has(call.status)) return call.finishedAt !== null ? call.finishedAt - call.startedAt : call.duration;
    return call.status === 'running' ? now - call.startedAt : null;
  }

  runElapsed(now = Date.now()) {
    if (this.startedAt === null) return null;
    if (this.ended) return this.finishedAt !== null ? this.finishedAt - this.startedAt : null;
    return this.status === 'running' ? now - this.startedAt : null;
  }

  /** Tokens so far: the calls' reports while live, the server's totals once known. */
  liveUsage() {
    let input = 0;
    let output = 0;
    for (const c of this.calls.values()) {
      input += (c.usage && c.usage.input_tokens) || 0;
      output += (c.usage && c.usage.output_tokens) || 0;
    }
    const u = this.usage;
    if (u && (u.input_tokens || u.output_tokens) && (this.ended || (u.input_tokens >= input && u.output_tokens >= output))) return u;
    return input || output ? { input_tokens: input, output_tokens: output } : u;
  }

  cachedCount() {
    let n = 0;
    for (const c of this.calls.values()) if (c.cached) n += 1;
    return n;
  }
}

/** A failed or interrupted run can be resumed under its own id (docs/DESIGN.md §7). */
export const RESUMABLE = new Set(['failed', 'interrupted']);

/**
 * @typedef {object} RunActions
 * @property {(callId: string) => void} skip
 * @property {(callId: string) => void} retry
 * @property {() => void} cancel
 * @property {() => void} resume a failed or interrupted run: the same id; a cancelled one: a new run replaying its calls
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
    this.phasesRoot = document.getElementById('phases');
    this.logView = document.querySelector('[data-testid="log-view"]');
    this.resultView = document.querySelector('[data-testid="result-view"]');
    this.resultNote = document.getElementById('result-note');
    this.argsView = document.getElementById('run-args');
    this.cancelButton.addEventListener('click', () => this.actions.cancel());
    this.resumeButton.addEventListener('click', () => this.actions.resume());
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
    setText(this.usageText, u ? `${fmtCount(u.input_tokens)} in · ${fmtCount(u.output_tokens)} out tokens` : '');
    this.cancelButton.disabled = !(m.status === 'queued' || m.status === 'running');
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
    if (m.status === 'running') this.renderHeader(now);
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
