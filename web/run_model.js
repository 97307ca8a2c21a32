// The open run's model: built from GET /api/runs/{id}, then kept live by WebSocket frames.
//
// Two ways state arrives, and why they are merged differently:
//  - a snapshot (the REST detail, a (re)connect replay, frames buffered while the REST call
//    was in flight) may be older than what we already know, so it never moves a status
//    backwards (pending → running → finished);
//  - a live frame is the newest word and is applied as is (a retried call may go back).
// A REST detail is ordered against the socket by when its request was sent (see
// `mergeDetail`): within `running`/`waiting`/`paused` no rank can say which word is newer.

import { toMs, statusRank, TERMINAL } from './ui.js';

/** @typedef {import('./api.js').RunDetail} RunDetail */
/** @typedef {import('./api.js').Frame} Frame */
/** @typedef {import('./types/Step').Step} Step */
/** @typedef {import('./types/StepUpdate').StepUpdate} StepUpdate */
/** @typedef {import('./types/StepStatus').StepStatus} StepStatus */
/** @typedef {import('./types/LogRecord').LogRecord} LogRecord */
/** @typedef {import('./types/Usage').Usage} Usage */
/** @typedef {import('./types/AgentCounts').AgentCounts} AgentCounts */
/** @typedef {import('./types/UsageTotals').UsageTotals} UsageTotals */
/** @typedef {import('./types/QuestionRecord').QuestionRecord} QuestionRecord */
/** @typedef {import('./types/CostTotals').CostTotals} CostTotals */
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
 * @property {number | null} cost US dollars; null = unknown (no price) or not ended
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
    /** `ask()` questions by id, in the order asked (docs/DESIGN.md §1). @type {Map<string, QuestionRecord>} */
    this.questions = new Map();
    /** Dollars at the run's end (its outcome), else summed from the calls. @type {CostTotals | null} */
    this.cost = null;
    this.version = 0; // bumped on every change the view must show
  }

  /** The questions still open. @returns {QuestionRecord[]} */
  openQuestions() {
    return [...this.questions.values()].filter((q) => q.status === 'open');
  }

  /** @param {QuestionRecord} q a question as journaled; a later status wins */
  setQuestion(q) {
    if (!q || !q.question_id) return;
    const old = this.questions.get(q.question_id);
    if (old && old.status !== 'open' && q.status === 'open') return;
    this.questions.set(q.question_id, q);
    this.version += 1;
  }

  /** Spend so far: the outcome's once the run ended, else the calls' known costs. @returns {CostTotals | null} */
  liveCost() {
    if (this.cost) return this.cost;
    let usd = 0;
    let unknown = 0;
    let any = false;
    for (const c of this.calls.values()) {
      if (c.cost !== null && c.cost !== undefined) {
        usd += c.cost;
        any = true;
      } else if (TERMINAL.has(c.status) && !c.cached && c.duration !== null) {
        unknown += 1;
        any = true;
      }
    }
    return any ? { usd, unknown_calls: unknown } : null;
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
        cost: c.cost_usd ?? null,
      };
      if (call.status === 'running' && call.startedAt === null) call.startedAt = Date.now();
      this.nextSeq = Math.max(this.nextSeq, (call.seq ?? 0) + 1);
      this.calls.set(call.call_id, call);
      if (call.phase) this.addPhase(call.phase);
    }
    for (const q of d.questions || []) this.setQuestion(q);
    this.version += 1;
  }

  /**
   * Merge a REST detail with the frames the socket brought for this run. The server journals
   * a change before it sends its frame (docs/DESIGN.md §6), so a frame received before the
   * request was sent is older than the detail and merges as a snapshot; one received after it
   * may be older or newer, so those replay in order as live frames and the last word wins.
   * Ranks alone cannot order `running`, `waiting` and `paused`: a `waiting` frame that raced
   * a detail still saying `running` must not be dropped.
   * @param {RunDetail} d the detail, read by a request sent when `recent.mark` was `mark`
   * @param {RecentFrames} recent
   * @param {number} mark
   * @returns {boolean} a frame ended the run the detail showed unfinished
   */
  mergeDetail(d, recent, mark) {
    this.applyDetail(d);
    let ended = false;
    for (const { n, frame } of recent.of(this.id)) ended = this.applyFrame(frame, n <= mark) || ended;
    return ended;
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
      call = { call_id: id, seq: this.nextSeq++, label: null, phase: null, status: 'pending', cached: false, agent: null, model: null, startedAt: null, finishedAt: null, duration: null, usage: null, error: null, cost: null };
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
      case 'question_asked':
      case 'question_answered':
        this.setQuestion(f.question);
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
      if (r.cost) this.cost = r.cost;
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
    return ['running', 'waiting', 'paused'].includes(this.status) ? now - this.startedAt : null;
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

/**
 * The last frames of each recent run, numbered in the order they arrived (of every run):
 * a run opened or re-read while its frames are in flight merges them with its REST detail
 * (`RunModel.mergeDetail`). Keeps `runs` runs of at most `frames` frames each.
 */
export class RecentFrames {
  constructor(runs = 30, frames = 2000) {
    this.runs = runs;
    this.frames = frames;
    /** Frames received so far, of every run. */
    this.mark = 0;
    /** @type {Map<string, {n: number, frame: Frame}[]>} */
    this.byRun = new Map();
  }

  /** @param {Frame} frame */
  remember(frame) {
    this.mark += 1;
    if (!frame.run_id) return;
    let list = this.byRun.get(frame.run_id);
    if (!list) {
      list = [];
      this.byRun.set(frame.run_id, list);
      if (this.byRun.size > this.runs) this.byRun.delete(this.byRun.keys().next().value);
    }
    list.push({ n: this.mark, frame });
    if (list.length > this.frames) list.splice(0, list.length - this.frames);
  }

  /** @param {string} id @returns {{n: number, frame: Frame}[]} oldest first */
  of(id) {
    return this.byRun.get(id) || [];
  }

  /** Forget run `id` (a run resumed under its id starts a new life). @param {string} id */
  forget(id) {
    this.byRun.delete(id);
  }
}
