// REST and WebSocket access to `booflow serve`, with the optional bearer token.
//
// A server bound to a non-loopback address requires a token. The user opens the page as
// `/?token=XYZ`; we keep the token in sessionStorage (so a reload or a hash change keeps
// it, and it dies with the tab) and drop it from the visible URL.

// The wire types are generated from the booflow-types crate (docs/DESIGN.md §6) into
// web/types/; `tsc -p web/tsconfig.json` (tests/pane_types.rs) checks every read below.
/** @typedef {import('./types/RunDetail').RunDetail} RunDetail */
/** @typedef {import('./types/RunsPage').RunsPage} RunsPage */
/** @typedef {import('./types/LogsPage').LogsPage} LogsPage */
/** @typedef {import('./types/TracesPage').TracesPage} TracesPage */
/** @typedef {import('./types/WorkflowInfo').WorkflowInfo} WorkflowInfo */
/** @typedef {import('./types/StartRun').StartRun} StartRun */
/** @typedef {import('./types/RunAccepted').RunAccepted} RunAccepted */
/** @typedef {import('./types/RunResumed').RunResumed} RunResumed */
/** @typedef {import('./types/Health').Health} Health */
/** @typedef {import('./types/Frame').Frame} Frame */

const TOKEN_KEY = 'booflow.token';

export function initToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status (0: the server could not be reached)
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Called with no arguments on any 401 (set by app.js to show the token prompt). */
export const hooks = { onUnauthorized: () => {} };

/**
 * `api('GET', '/api/runs')` → parsed JSON; throws ApiError carrying the server's `{error}`.
 * The typed readers below name the body each endpoint answers.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  /** @type {RequestInit} */
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the booflow server (${e.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    hooks.onUnauthorized();
    throw new ApiError(401, (data && data.error) || 'unauthorized: this server needs a token');
  }
  if (!response.ok) {
    const message = data && typeof data.error === 'string' ? data.error : text || response.statusText;
    throw new ApiError(response.status, `${method} ${path}: ${message} (HTTP ${response.status})`);
  }
  return data;
}

const runPath = (/** @type {string} */ id, suffix = '') => `/api/runs/${encodeURIComponent(id)}${suffix}`;

/** @returns {Promise<WorkflowInfo[]>} `GET /api/workflows` */
export const getWorkflows = () => api('GET', '/api/workflows');

/**
 * `GET /api/runs?limit=&cursor=`, newest first.
 * @param {number} limit 1–200
 * @param {string | null} [cursor] the `next_cursor` of the page before
 * @returns {Promise<RunsPage>}
 */
export const listRuns = (limit, cursor) => api('GET', `/api/runs?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);

/** @param {string} id @returns {Promise<RunDetail>} `GET /api/runs/{id}` */
export const getRun = (id) => api('GET', runPath(id));

/** @param {string} id @returns {Promise<LogsPage>} `GET /api/runs/{id}/logs` */
export const getLogs = (id) => api('GET', runPath(id, '/logs'));

/**
 * `GET /api/runs/{id}/traces?limit=&cursor=`, in call order.
 * @param {string} id
 * @param {number} limit 1–200
 * @param {number | null} cursor the `next_cursor` (a call seq) of the page before
 * @returns {Promise<TracesPage>}
 */
export const getTraces = (id, limit, cursor) => api('GET', runPath(id, `/traces?limit=${limit}${cursor !== null ? `&cursor=${cursor}` : ''}`));

/** @param {StartRun} body @returns {Promise<RunAccepted>} `POST /api/runs` → 202 */
export const startRun = (body) => api('POST', '/api/runs', body);

/**
 * `POST /api/runs/{id}/resume` → 202 `{run_id}`: a failed or interrupted run is queued again
 * under the same id (docs/DESIGN.md §7); 409 for any other status.
 * @param {string} id
 * @returns {Promise<RunResumed>}
 */
export const resumeRun = (id) => api('POST', runPath(id, '/resume'));

/** @returns {Promise<Health>} `GET /api/health` */
export const getHealth = () => api('GET', '/api/health');

/**
 * One WebSocket to /api/ws, reconnected with exponential backoff. After a reconnect the
 * server replays the state of active runs, so `onOpen(reconnected)` lets the app refresh.
 */
export class LiveSocket {
  /**
   * @param {object} handlers
   * @param {(frame: Frame) => void} handlers.onFrame each JSON frame, as the server sent it
   * @param {(reconnected: boolean) => void} handlers.onOpen
   * @param {(state: 'connecting' | 'live' | 'offline') => void} handlers.onState
   */
  constructor({ onFrame, onOpen, onState }) {
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onState = onState;
    this.delay = 500;
    this.opened = false; // has any connection ever opened?
    this.connect();
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = getToken();
    return `${scheme}//${location.host}/api/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  }

  connect() {
    this.onState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.opened;
      this.opened = true;
      this.delay = 500;
      this.onState('live');
      this.onOpen(reconnected);
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not ours: ignore anything that is not a JSON frame
      }
      if (frame && typeof frame === 'object') this.onFrame(/** @type {Frame} */ (frame));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.onState('offline');
      this.retry();
    };
    // An error is always followed by close; nothing to do here.
    ws.onerror = () => {};
  }

  retry() {
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, 10000);
    setTimeout(() => this.connect(), delay);
  }
}
