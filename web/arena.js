// The Arena view for a finished run whose workflow declares a `winner` annotation over a
// list in its result (`meta.annotations: { winner: '/contestants/*/id' }`, as the catalog's
// `arena` does; docs/DESIGN.md §1): the contestants table, the winner (a human override in
// the run's annotations beats the judge's pick), each contestant's answer, and for coding
// battles each contestant's worktree diff. Nothing here knows a workflow by name.

import { api } from './api.js';
import { el, append, fmtDuration, fmtCount } from './ui.js';
import { renderMarkdown } from './markdown.js';

/** @typedef {import('./run_model.js').RunModel} RunModel */

/**
 * Where a run's contestants are: a `winner` rule `/LIST/*` + `/KEY` names the result's
 * list and the field that identifies each element; null for any other rule (or none).
 * @param {Record<string, string>} rules the run's `annotation_rules`
 * @returns {{list: string, key: string} | null}
 */
export function winnerRule(rules) {
  const match = /^\/([^/*]+)\/\*\/([^/*]+)$/.exec((rules && rules.winner) || '');
  return match ? { list: match[1], key: match[2] } : null;
}

/**
 * The contestants of an Arena run (the elements of the list its `winner` rule names, with
 * their ids as text), or null when the run is no battle or its result has no such list.
 * @param {{annotationRules: Record<string, string>, result: any}} run
 * @returns {{id: string, entry: any}[] | null}
 */
export function contestantsOf(run) {
  const rule = winnerRule(run.annotationRules);
  const list = rule && run.result && typeof run.result === 'object' ? run.result[rule.list] : null;
  if (!Array.isArray(list)) return null;
  return list.filter((c) => c && typeof c === 'object').map((c) => ({ id: String(c[rule.key]), entry: c }));
}

/**
 * Does this run get an arena view? Its workflow declares a `winner` rule over a list of
 * its result, and the result has that list.
 * @param {{annotationRules: Record<string, string>, result: any}} run
 * @returns {boolean}
 */
export function isArenaRun(run) {
  return contestantsOf(run) !== null;
}

/**
 * The effective winner: annotations.winner when set, else the judge's analysis.winner.
 * @param {RunModel} run
 * @returns {string | null}
 */
export function effectiveWinner(run) {
  const a = run.annotations || {};
  if (a.winner) return String(a.winner);
  const w = run.result && run.result.analysis && run.result.analysis.winner;
  return w ? String(w) : null;
}

/**
 * Draw the arena for `run` into `root`.
 * @param {HTMLElement} root
 * @param {RunModel} run
 * @param {(message: string) => void} showError reports failures
 */
export function renderArena(root, run, showError) {
  const result = run.result;
  const contestants = (contestantsOf(run) || []).map(({ id, entry }) => ({ ...entry, id }));
  const analysis = result.analysis || {};
  const battle = result.battle || {};
  const judged = analysis.winner ? String(analysis.winner) : null;

  const badge = el('span', { class: 'winner-badge', 'data-testid': 'winner-badge' });
  const who = el('span', { class: 'muted' });
  const setBadge = () => {
    const winner = effectiveWinner(run);
    badge.textContent = winner ? `★ ${winner}` : 'no winner';
    const c = contestants.find((x) => String(x.id) === winner);
    who.textContent = [c && (c.model || c.agent), run.annotations && run.annotations.winner ? 'chosen by you' : judged ? "judge's pick" : ''].filter(Boolean).join(' · ');
    for (const tr of table.querySelectorAll('tbody tr')) if (tr instanceof HTMLElement) tr.classList.toggle('winner', tr.dataset.id === winner);
  };

  const select = el(
    'select',
    { 'data-testid': 'winner-override', 'aria-label': 'override the winner' },
    contestants.map((c) => el('option', { value: String(c.id) }, `${c.id}${String(c.id) === judged ? " (judge's pick)" : ''}`)),
  );
  select.value = effectiveWinner(run) || '';
  select.addEventListener('change', async () => {
    const winner = select.value;
    select.disabled = true;
    try {
      const response = await api('POST', `/api/runs/${encodeURIComponent(run.id)}/annotations`, { winner });
      run.annotations = (response && response.annotations) || { ...run.annotations, winner };
      setBadge();
    } catch (e) {
      showError(e.message);
      select.value = effectiveWinner(run) || '';
    } finally {
      select.disabled = false;
    }
  });

  const columns = ['id', 'agent', 'model', 'lane', 'status', 'duration_ms', 'output_tokens', 'tokens/s'];
  const table = el(
    'table',
    { class: 'arena-table', 'data-testid': 'arena-table' },
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {}, c)))),
    el(
      'tbody',
      {},
      contestants.map((c) =>
        el(
          'tr',
          { 'data-id': String(c.id), 'data-testid': 'arena-contestant' },
          el('td', {}, String(c.id)),
          el('td', {}, c.agent ?? '—'),
          el('td', {}, c.model ?? '—'),
          el('td', {}, c.lane ?? '—'),
          el('td', {}, el('span', { class: `chip st-${c.status}` }, c.status ?? '—')),
          el('td', { class: 'num', title: fmtDuration(c.duration_ms) }, c.duration_ms ?? '—'),
          el('td', { class: 'num' }, fmtCount(c.output_tokens)),
          el('td', { class: 'num' }, c.tokens_per_sec ?? '—'),
        ),
      ),
    ),
  );

  const outputs = contestants.map((c) => {
    const body = [];
    if (c.error) body.push(el('pre', { class: 'error-text' }, c.error));
    if (typeof c.output === 'string') body.push(renderMarkdown(c.output));
    else if (c.output !== null && c.output !== undefined) body.push(el('pre', { class: 'json' }, JSON.stringify(c.output, null, 2)));
    else if (!c.error) body.push(el('div', { class: 'muted' }, 'no output'));
    if (battle.type === 'coding') body.push(el('h4', {}, 'diff'), renderDiff(c.diff));
    return el('details', { class: 'arena-output', open: true, 'data-id': String(c.id) }, el('summary', {}, `${c.id} · ${c.model || c.agent || 'default agent'}`), body);
  });

  const extras = [];
  if (analysis.rationale) extras.push(el('div', { class: 'arena-rationale' }, el('strong', {}, 'Judge: '), analysis.rationale));
  if (Array.isArray(analysis.ranking) && analysis.ranking.length) extras.push(el('div', { class: 'muted' }, `Ranking: ${analysis.ranking.join(' › ')}`));
  if (result.cross_examination && result.cross_examination.critique) {
    const x = result.cross_examination;
    const critique = typeof x.critique === 'string' ? renderMarkdown(x.critique) : el('pre', { class: 'json' }, JSON.stringify(x.critique, null, 2));
    extras.push(el('details', { class: 'arena-output' }, el('summary', {}, `Cross-examination: ${x.by} → ${x.of}`), critique));
  }

  root.replaceChildren();
  append(root, [
    el('div', { class: 'arena-head' }, el('span', { class: 'muted' }, `${battle.type || 'battle'} · winner`), badge, who, el('label', { class: 'muted' }, 'override ', select)),
    battle.prompt ? el('div', { class: 'arena-prompt' }, battle.prompt) : null,
    table,
    ...extras,
    el('div', { class: 'arena-outputs' }, outputs),
  ]);
  setBadge();
}

/**
 * A unified diff with per-line colours (+ green, - red, hunk headers blue, file headers grey).
 * @param {string | null | undefined} diff
 * @returns {HTMLPreElement}
 */
export function renderDiff(diff) {
  const view = el('pre', { class: 'diff', 'data-testid': 'diff-view' });
  if (!diff) {
    view.append(el('span', { class: 'muted' }, '(no changes)'));
    return view;
  }
  for (const line of String(diff).replace(/\n$/, '').split('\n')) {
    let kind = 'ctx';
    if (/^(diff --git|index |--- |\+\+\+ |new file mode|deleted file mode|similarity index|rename (from|to) )/.test(line)) kind = 'meta';
    else if (line.startsWith('@@')) kind = 'hunk';
    else if (line.startsWith('+')) kind = 'add';
    else if (line.startsWith('-')) kind = 'del';
    view.append(el('span', { class: `diff-line diff-${kind}` }, line || ' '), '\n');
  }
  return view;
}
