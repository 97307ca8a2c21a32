// booflow's Orchestrator pane: entry point and wiring.
//
// Left: workflow picker, args (form + JSON), run button, run history.
// Right: the open run (URL hash `#run=<id>`): header, agent rows by phase, arena, result,
// log, trace. One WebSocket keeps everything live; REST rebuilds the view on load, on a
// hash change and after a reconnect, so a refresh mid-run shows the same run.

import { initToken, setToken, api, hooks, LiveSocket, getWorkflows, getRun, getLogs, startRun as postRun, resumeRun, getHealth } from './api.js';
import { el, $, setText, append } from './ui.js';
import { ArgsEditor } from './args.js';
import { RunView, RESUMABLE } from './run.js';
import { RecentFrames } from './run_model.js';
import { History } from './history.js';
import { TraceView } from './traces.js';
import { isArenaRun, renderArena } from './arena.js';

/** @typedef {import('./api.js').RunDetail} RunDetail */
/** @typedef {import('./api.js').StartRun} StartRun */
/** @typedef {import('./api.js').WorkflowInfo} WorkflowInfo */
/** @typedef {import('./api.js').Frame} Frame */
/** @typedef {import('./types/OwnerInfo').OwnerInfo} OwnerInfo */

initToken();

// ---- error banner (and the token prompt after a 401) ----------------------------------

const banner = $('error-banner');
const bannerMessage = document.getElementById('error-message');
/** @type {HTMLFormElement} */
const tokenForm = /** @type {any} */ (document.getElementById('token-form'));

let needsToken = false; // after a 401 the token prompt stays until the page reloads

/** @param {string} message */
function showError(message) {
  if (needsToken) return; // every later call fails the same way: keep the prompt
  setText(bannerMessage, message);
  tokenForm.hidden = true;
  banner.hidden = false;
}

hooks.onUnauthorized = () => {
  needsToken = true;
  setText(bannerMessage, 'This booflow server needs an access token (401). Open the page as /?token=<token> — `booflow serve` prints it — or paste it here:');
  tokenForm.hidden = false;
  banner.hidden = false;
};

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  setToken(/** @type {HTMLInputElement} */ (document.getElementById('token-input')).value.trim());
  location.reload();
});
document.getElementById('error-close').addEventListener('click', () => {
  needsToken = false;
  banner.hidden = true;
});

// ---- workflows and args -----------------------------------------------------------------

/** @type {HTMLSelectElement} */
const workflowSelect = $('workflow-select');
const workflowInfo = document.getElementById('workflow-info');
const argsEditor = new ArgsEditor(document.getElementById('args'));
/** @type {WorkflowInfo[]} */
let workflows = [];

async function loadWorkflows() {
  try {
    workflows = (await getWorkflows()) || [];
  } catch (e) {
    showError(e.message);
    return;
  }
  // Grouped by source, the project's own workflows first (they are what a user came for).
  const sources = ['project', 'global', 'catalog'];
  for (const w of workflows) if (!sources.includes(w.source)) sources.push(w.source);
  workflowSelect.replaceChildren();
  for (const source of sources) {
    const group = workflows.filter((w) => w.source === source);
    if (group.length) workflowSelect.append(el('optgroup', { label: source }, group.map((w) => el('option', { value: w.name }, `${w.name} (${w.source})`))));
  }
  const remembered = localStorage.getItem('booflow.workflow');
  if (remembered && workflows.some((w) => w.name === remembered)) workflowSelect.value = remembered;
  onWorkflowSelected();
}

function onWorkflowSelected() {
  const w = workflows.find((x) => x.name === workflowSelect.value);
  workflowInfo.replaceChildren();
  if (!w) {
    argsEditor.setSchema(null);
    return;
  }
  localStorage.setItem('booflow.workflow', w.name);
  const phases = (w.phases || []).map((p) => el('li', {}, el('span', { class: 'phase-name' }, p.title), p.detail ? el('span', { class: 'muted' }, ` — ${p.detail}`) : null));
  append(workflowInfo, [
    w.description ? el('p', { class: 'wf-description' }, w.description) : null,
    w.whenToUse ? el('p', { class: 'wf-when' }, el('span', { class: 'muted' }, 'When to use: '), w.whenToUse) : null,
    el('p', { class: 'wf-source muted', title: w.path || '' }, `source: ${w.source}${w.path ? ` · ${w.path}` : ''}`),
    phases.length ? el('ol', { class: 'wf-phases' }, phases) : null,
  ]);
  argsEditor.setSchema(w.args ?? null);
}
workflowSelect.addEventListener('change', onWorkflowSelected);

// ---- starting runs ----------------------------------------------------------------------

/** @type {HTMLButtonElement} */
const runButton = $('run-button');

/** @param {StartRun} body */
async function startRun(body) {
  runButton.disabled = true;
  try {
    const started = await postRun(body);
    banner.hidden = true; // an earlier error no longer applies to the run now on screen
    runHistory.upsert({ run_id: started.run_id, workflow: body.workflow, status: started.status }, true);
    location.hash = `run=${encodeURIComponent(started.run_id)}`;
  } catch (e) {
    showError(e.message);
  } finally {
    runButton.disabled = false;
  }
}

runButton.addEventListener('click', () => {
  if (!workflowSelect.value) return showError('Pick a workflow first.');
  const parsed = argsEditor.parse();
  if (!parsed.ok) return showError(`Args: ${parsed.error}`);
  /** @type {StartRun} */
  const body = { workflow: workflowSelect.value };
  if (parsed.value !== undefined) body.args = parsed.value;
  if (/** @type {HTMLInputElement} */ (document.getElementById('no-cache')).checked) body.no_cache = true;
  const budget = /** @type {HTMLInputElement} */ (document.getElementById('budget')).valueAsNumber;
  if (Number.isFinite(budget) && budget > 0) body.budget = budget;
  startRun(body);
});

// ---- the open run -----------------------------------------------------------------------

const runPanel = document.getElementById('run');
const noRun = document.getElementById('no-run');
const arenaPanel = document.getElementById('arena-panel');
const arenaView = $('arena-view');
const traces = new TraceView($('trace-view'), showError);
let loaded = false; // has the open run's REST detail arrived?
let openGeneration = 0;
let arenaDrawn = null; // the result object the arena was drawn from

const runPath = (/** @type {string} */ id, suffix = '') => `/api/runs/${encodeURIComponent(id)}${suffix}`;

/** @param {string} path */
async function postAction(path) {
  try {
    await api('POST', path);
  } catch (e) {
    showError(e.message);
  }
}

const view = new RunView({
  skip: (callId) => postAction(runPath(view.model.id, `/calls/${encodeURIComponent(callId)}/skip`)),
  retry: (callId) => postAction(runPath(view.model.id, `/calls/${encodeURIComponent(callId)}/retry`)),
  cancel: () => postAction(runPath(view.model.id, '/cancel')),
  pause: () => postAction(runPath(view.model.id, '/pause')),
  answer: async (questionId, answer) => {
    try {
      await api('POST', runPath(view.model.id, `/questions/${encodeURIComponent(questionId)}/answer`), { answer, by: 'pane' });
      return null;
    } catch (e) {
      return e.message;
    }
  },
  resume: () => {
    const m = view.model;
    // A paused run goes on where it is (docs/DESIGN.md §6).
    if (m.status === 'paused') return postAction(runPath(m.id, '/resume'));
    if (RESUMABLE.has(m.status)) return resumeHere(m.id);
    /** @type {StartRun} */
    const body = { workflow: m.workflow, resume_from: m.id };
    if (m.args !== undefined && m.args !== null) body.args = m.args;
    startRun(body);
  },
  describeOwner,
});

/** Queues a failed or interrupted run again under its id, then follows it from its new start. */
async function resumeHere(/** @type {string} */ id) {
  try {
    await resumeRun(id);
    banner.hidden = true;
    recent.forget(id); // frames of its first life must not fold into the new one
    runHistory.update({ run_id: id, status: 'queued' });
    await openRun(id);
  } catch (e) {
    showError(e.message);
  }
}

// ---- owners (docs/DESIGN.md §7): who executes a run, from /api/health ------------------

/** @type {Map<string, OwnerInfo>} owner id → the live owner */
const owners = new Map();
let ownersAt = 0;

async function loadOwners() {
  ownersAt = Date.now();
  try {
    const health = await getHealth();
    owners.clear();
    for (const o of health.owners || []) owners.set(o.owner_id, o);
    if (view.model) view.render();
  } catch {
    // The owner id alone is shown; the next run with an unknown owner tries again.
  }
}

/**
 * `serve on HOST (pid N)` for a live owner, else the owner id (it names its host).
 * @param {string} id
 * @returns {string}
 */
function describeOwner(id) {
  const o = owners.get(id);
  if (o) return `${o.kind} on ${o.host} (pid ${o.pid})`;
  if (Date.now() - ownersAt > 5000) loadOwners();
  return id;
}

function hashRunId() {
  const match = location.hash.match(/^#(?:.*&)?run=([^&]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

function route() {
  const id = hashRunId();
  if (view.model && id === view.model.id) return;
  if (!id) {
    view.model = null;
    loaded = false;
    runPanel.hidden = true;
    noRun.hidden = false;
    runHistory.setActive(null);
    traces.clear();
    return;
  }
  openRun(id);
}

/**
 * Rebuild the view of run `id` from REST, then fold in the frames that raced the fetch.
 * @param {string} id
 */
async function openRun(id) {
  const generation = ++openGeneration;
  loaded = false;
  arenaDrawn = null;
  view.reset(id);
  runPanel.hidden = false;
  noRun.hidden = true;
  arenaPanel.hidden = true;
  runHistory.setActive(id);
  traces.clear();
  try {
    const mark = recent.mark;
    const [detail, logs] = await Promise.all([
      getRun(id),
      getLogs(id).then((page) => ({ logs: page.logs, error: null }), (e) => ({ logs: [], error: e })),
    ]);
    if (generation !== openGeneration) return;
    if (logs.error) showError(logs.error.message);
    const endedNow = view.model.mergeDetail(detail, recent, mark);
    view.model.applyLogs(logs.logs);
    runHistory.update(summaryOf(detail));
    loaded = true;
    view.render();
    traces.load(id, view.model.startedAt);
    updateArena();
    if (endedNow) refreshRun(id);
  } catch (e) {
    if (generation !== openGeneration) return;
    showError(e.message);
    setText($('run-status'), e.status === 404 ? `no run ${id}` : 'failed to load');
  }
}

/**
 * Re-read the open run (run end, reconnect, a new owner) and merge it into the view.
 * @param {string} id
 */
async function refreshRun(id) {
  try {
    const mark = recent.mark;
    const detail = await getRun(id);
    if (!view.model || view.model.id !== id) return;
    view.model.mergeDetail(detail, recent, mark);
    view.render();
    updateArena();
    runHistory.update(summaryOf(detail));
    if (view.model.ended) traces.load(id, view.model.startedAt);
  } catch (e) {
    showError(e.message);
  }
}

/** @param {RunDetail} d */
const summaryOf = (d) => ({ run_id: d.run_id, workflow: d.workflow, status: d.status, owner: d.owner, resume_count: d.resume_count, agents: d.agents, started_at: d.started_at, finished_at: d.finished_at });

function updateArena() {
  const m = view.model;
  if (!m || !isArenaRun(m)) {
    arenaPanel.hidden = true;
    return;
  }
  arenaPanel.hidden = false;
  if (arenaDrawn === m.result) return;
  arenaDrawn = m.result;
  renderArena(arenaView, m, showError);
}

window.addEventListener('hashchange', route);

// ---- history ----------------------------------------------------------------------------

const runHistory = new History(document.getElementById('history'), {
  onOpen: (id) => {
    location.hash = `run=${encodeURIComponent(id)}`;
  },
  showError,
});
document.getElementById('history-refresh').addEventListener('click', () => runHistory.load());

// ---- the WebSocket ----------------------------------------------------------------------

// The last frames of each recent run: a run opened or re-read while frames are in flight (a
// fresh POST, a hash change, a reload, a run's end) merges them with its REST detail.
const recent = new RecentFrames();

let renderQueued = false;
function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    if (view.model) view.render();
  }, 30);
}

/** @param {Frame} f */
function onFrame(f) {
  recent.remember(f);
  runHistory.onFrame(f);
  if (!loaded || !view.model || f.run_id !== view.model.id) return;
  const m = view.model;
  const ended = m.applyFrame(f, f.type === 'flow_run_started');
  queueRender();
  if (ended) refreshRun(m.id);
  else if (m.status === 'running' && (!m.owner || (f.type === 'flow_run_started' && f.status !== 'queued'))) refreshOwner(m.id);
}

let ownerRefreshAt = 0;
/**
 * A run that started (or was taken over) here or on another server: read who executes it
 * now, at most once a second.
 * @param {string} id
 */
function refreshOwner(id) {
  if (Date.now() - ownerRefreshAt < 1000) return;
  ownerRefreshAt = Date.now();
  refreshRun(id);
}

const connection = document.getElementById('connection');
let everLive = false;
new LiveSocket({
  onFrame,
  onOpen: (reconnected) => {
    if (!reconnected) return;
    // Frames were lost while we were away: re-read the open run and the history.
    runHistory.load();
    if (view.model && loaded && !view.model.ended) refreshRun(view.model.id);
  },
  onState: (state) => {
    const label = { live: '● live', connecting: everLive ? '○ reconnecting…' : 'connecting…', offline: '○ reconnecting…' }[state];
    everLive = everLive || state === 'live';
    setText(connection, label);
    connection.className = `connection ${state}`;
  },
});

setInterval(() => {
  if (loaded) view.tick();
}, 250);

loadWorkflows();
runHistory.load();
route();
