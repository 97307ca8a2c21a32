// REST and WebSocket access to `booflow serve`, with the optional bearer token.
//
// A server bound to a non-loopback address requires a token. The user opens the page as
// `/?token=XYZ`; we keep the token in sessionStorage (so a reload or a hash change keeps
// it, and it dies with the tab) and drop it from the visible URL.

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
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Called with no arguments on any 401 (set by app.js to show the token prompt). */
export const hooks = { onUnauthorized: () => {} };

/** `api('GET', '/api/runs')` → parsed JSON; throws ApiError carrying the server's `{error}`. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
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

/**
 * One WebSocket to /api/ws, reconnected with exponential backoff. After a reconnect the
 * server replays the state of active runs, so `onOpen(reconnected)` lets the app refresh.
 */
export class LiveSocket {
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
      if (frame && typeof frame === 'object') this.onFrame(frame);
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
