// Small DOM and formatting helpers shared by the pane's modules.
//
// Everything that comes from the server (agent output, logs, labels, results) reaches the
// page through `el(...)` children or `textContent`: strings become text nodes, never markup.
// No module in web/ assigns innerHTML.

/**
 * Build an element: `el('div', {class: 'x', 'data-testid': 'y', onclick: fn}, 'text', child…)`.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [attrs]
 * @param {...unknown} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'value' || key === 'checked' || key === 'disabled') node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/**
 * Append children (strings become text nodes; null/false are skipped; arrays are flattened).
 * @template {ParentNode} N
 * @param {N} node
 * @param {unknown[]} children
 * @returns {N}
 */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Set textContent only when it changed (avoids needless layout during the live tick).
 * @param {Node} node
 * @param {unknown} text
 */
export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

/**
 * The element with `data-testid` (the pane's own markup: the caller knows its kind).
 * @param {string} testid
 * @returns {any}
 */
export const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

/** Server timestamps may be RFC 3339 strings or epoch numbers (s or ms): return epoch ms. */
export function toMs(value) {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number') return value < 1e12 ? value * 1000 : value;
  if (/^\d+(\.\d+)?$/.test(value)) return toMs(Number(value));
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

/** 153 ms · 3.2 s · 2m 05s · 1h 02m */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function fmtClock(ms) {
  if (ms === null) return '--:--:--';
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtDateTime(ms) {
  if (ms === null) return '';
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

export function fmtCount(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
  n = Number(n);
  return n >= 10000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

export const TERMINAL = new Set(['completed', 'failed', 'skipped', 'cancelled', 'interrupted']);

/** Order of a status in a call's or run's life: a snapshot never moves a status backwards. */
export function statusRank(status) {
  if (status === 'pending' || status === 'queued') return 0;
  // waiting and paused are running runs (docs/DESIGN.md §6): a snapshot may move between them.
  if (status === 'running' || status === 'waiting' || status === 'paused') return 1;
  return TERMINAL.has(status) ? 2 : 0;
}

/** A coloured status chip. */
export function chip(status, testid) {
  return el('span', { class: `chip st-${status || 'unknown'}`, 'data-testid': testid }, status || '…');
}

export function updateChip(node, status) {
  node.className = `chip st-${status || 'unknown'}`;
  setText(node, status || '…');
}
