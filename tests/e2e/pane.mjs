// End-to-end test of the Orchestrator pane in headless Chromium.
//
//   BOOFLOW_URL=http://127.0.0.1:7421 node tests/e2e/pane.mjs
//
// Env: BOOFLOW_URL (required; may carry ?token=…), CHROMIUM (default /usr/bin/chromium),
// E2E_WORKFLOW (a 6-call workflow, default `six`), E2E_SLOW_WORKFLOW (calls that take
// several seconds, default `slow`), E2E_CODER_AGENT (an ACP agent that obeys
// [[write:FILE:TEXT]], default `coder`), E2E_SCREENSHOTS (a directory: save a PNG per scenario).
// Prints "ok <scenario>" per passing scenario; exits 1 with a message on the first failure.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from '../node/node_modules/playwright-core/index.mjs';

const BASE = process.env.BOOFLOW_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WORKFLOW = process.env.E2E_WORKFLOW || 'six';
const SLOW = process.env.E2E_SLOW_WORKFLOW || 'slow';
const CODER = process.env.E2E_CODER_AGENT || 'coder';
const SHOTS = process.env.E2E_SCREENSHOTS || '';
const STATUS_WORDS = /queued|running|completed|failed|cancelled|interrupted/;

if (!BASE) {
  console.error('BOOFLOW_URL is not set (e.g. http://127.0.0.1:7421)');
  process.exit(2);
}

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

const tid = (id) => `[data-testid="${id}"]`;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(20_000);

// Every page error and console error fails the test.
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
page.on('console', (msg) => {
  if (msg.type() === 'error') pageErrors.push(`console.error: ${msg.text()}`);
});

// WebSocket frame types received, over the whole session.
const frameTypes = new Map();
page.on('websocket', (ws) => {
  ws.on('framereceived', ({ payload }) => {
    try {
      const type = JSON.parse(typeof payload === 'string' ? payload : payload.toString()).type;
      frameTypes.set(type, (frameTypes.get(type) || 0) + 1);
    } catch {
      // not JSON: not ours
    }
  });
});

function assertNoPageErrors(where) {
  check(pageErrors.length === 0, `${where}: page errors:\n  ${pageErrors.join('\n  ')}`);
}

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

const currentRunId = () => page.evaluate(() => (location.hash.match(/run=([^&]+)/) || [])[1] || null);

/** Select a workflow, optionally replace the args, press Run; return the new run id. */
async function startRun(workflow, { args, noCache = false } = {}) {
  const select = page.locator(tid('workflow-select'));
  await select.waitFor();
  const names = await select.locator('option').evaluateAll((options) => options.map((o) => o.value));
  check(names.includes(workflow), `workflow-select has no option "${workflow}" (options: ${names.join(', ')})`);
  await select.selectOption(workflow);
  if (args !== undefined) await page.locator(tid('args-editor')).fill(args);
  const noCacheBox = page.locator(tid('no-cache'));
  if ((await noCacheBox.count()) && (await noCacheBox.isChecked()) !== noCache) await noCacheBox.setChecked(noCache);
  const before = await currentRunId();
  await page.locator(tid('run-button')).click();
  await page.waitForFunction((old) => {
    const m = location.hash.match(/run=([^&]+)/);
    return m && m[1] !== old;
  }, before, { timeout: 15_000 }).catch(async () => {
    const banner = await page.locator(tid('error-banner')).textContent().catch(() => '');
    throw new Failure(`run of ${workflow} did not open a new run (#run=…) within 15 s; error banner: ${banner.trim() || '(none)'}`);
  });
  return currentRunId();
}

async function waitForStatus(pattern, timeout, what) {
  const status = page.locator(tid('run-status'));
  try {
    await page.waitForFunction(
      ([selector, source]) => new RegExp(source).test(document.querySelector(selector)?.textContent || ''),
      [tid('run-status'), pattern.source],
      { timeout },
    );
  } catch {
    const text = await status.textContent().catch(() => '?');
    const banner = await page.locator(tid('error-banner')).textContent().catch(() => '');
    throw new Failure(`${what}: run-status never matched ${pattern} within ${timeout / 1000} s (last: "${text}"; error banner: "${banner.trim()}")`);
  }
  const text = await status.textContent();
  check(STATUS_WORDS.test(text), `run-status "${text}" names no run status`);
  return text;
}

async function waitForRunningRow(what) {
  const running = page.locator(`${tid('agent-row')}[data-status="running"]`);
  try {
    await running.first().waitFor({ timeout: 30_000 });
  } catch {
    const statuses = await page.locator(tid('agent-row')).evaluateAll((rows) => rows.map((r) => r.dataset.status));
    throw new Failure(`${what}: no agent-row became running within 30 s (rows: ${JSON.stringify(statuses)})`);
  }
  return running.first();
}

// Cancel the open run if it is still live (cleanup after a scenario), and wait for its end.
async function cancelIfLive(what) {
  const cancel = page.locator(tid('cancel-button'));
  if (await cancel.isEnabled()) {
    await cancel.click();
    await waitForStatus(/cancelled|completed|failed/, 30_000, `${what} (cleanup)`);
  }
}

const scenarios = [
  [
    'run-and-cache',
    async () => {
      await page.goto(BASE);
      const runId = await startRun(WORKFLOW, { args: '{"topic":"e2e"}' });
      await waitForStatus(/completed|failed|cancelled|interrupted/, 60_000, `first run of ${WORKFLOW}`);
      const status = await page.locator(tid('run-status')).textContent();
      check(/completed/.test(status), `first run of ${WORKFLOW} ended "${status}", expected completed (result: ${await page.locator(tid('result-view')).textContent()})`);
      const rows = await page.locator(tid('agent-row')).count();
      check(rows >= 6, `expected ≥ 6 agent-row after the first run, found ${rows}`);
      const result = (await page.locator(tid('result-view')).textContent()).trim();
      check(result.length > 0, 'result-view is empty after a completed run');
      const cached = await page.locator(tid('cached-indicator')).textContent();
      check(/\d+ of \d+ cached/.test(cached), `cached-indicator "${cached}" does not match /\\d+ of \\d+ cached/`);
      check(frameTypes.get('flow_run_started') > 0, `no flow_run_started frame received (frames: ${JSON.stringify([...frameTypes])})`);
      check(frameTypes.get('flow_run_step_updated') > 0, `no flow_run_step_updated frame received (frames: ${JSON.stringify([...frameTypes])})`);
      check(await page.locator(`${tid('run-history')} [data-run-id="${runId}"]`).count() === 1, `run ${runId} is not in run-history`);
      await page.locator(tid('trace-view')).locator(tid('trace-row')).first().waitFor({ timeout: 10_000 }).catch(() => {
        throw new Failure('trace-view shows no trace-row for the completed run');
      });
      await shot('1-first-run');

      // The same workflow with the same args again: every call comes from the cache.
      const second = await startRun(WORKFLOW, { args: '{"topic":"e2e"}' });
      check(second !== runId, 'the second run reused the first run id');
      await waitForStatus(/completed|failed|cancelled|interrupted/, 60_000, `second run of ${WORKFLOW}`);
      check(/completed/.test(await page.locator(tid('run-status')).textContent()), 'the cached re-run did not complete');
      await page.waitForFunction(
        (selector) => /\b6 of 6 cached\b/.test(document.querySelector(selector)?.textContent || ''),
        tid('cached-indicator'),
        { timeout: 10_000 },
      ).catch(async () => {
        throw new Failure(`cached re-run: cached-indicator says "${await page.locator(tid('cached-indicator')).textContent()}", expected "6 of 6 cached"`);
      });
      const badges = await page.locator(`${tid('agent-row')} ${tid('cached-badge')}`).count();
      check(badges >= 6, `cached re-run: ${badges} rows show a cached-badge, expected 6`);
      await shot('1-cached-run');
      assertNoPageErrors('run-and-cache');
    },
  ],
  [
    'refresh-and-cancel',
    async () => {
      const runId = await startRun(SLOW, { noCache: true });
      await waitForRunningRow('slow run');
      await waitForStatus(/running/, 15_000, 'slow run before reload');
      const rowsBefore = await page.locator(tid('agent-row')).count();
      await page.reload();
      check((await currentRunId()) === runId, `after reload the hash shows run ${await currentRunId()}, expected ${runId}`);
      await waitForStatus(/running/, 15_000, 'slow run after reload');
      await page.waitForFunction(
        ([selector, n]) => document.querySelectorAll(selector).length >= n,
        [tid('agent-row'), rowsBefore],
        { timeout: 10_000 },
      ).catch(async () => {
        throw new Failure(`after reload: ${await page.locator(tid('agent-row')).count()} agent-row, expected ${rowsBefore} as before the reload`);
      });
      await waitForRunningRow('slow run after reload');
      await shot('2-after-reload');
      const cancel = page.locator(tid('cancel-button'));
      check(await cancel.isEnabled(), 'cancel-button is disabled on a running run');
      await cancel.click();
      await waitForStatus(/cancelled/, 30_000, 'cancel of the slow run');
      await page.waitForFunction((selector) => document.querySelector(selector)?.disabled === true, tid('cancel-button'), { timeout: 5_000 }).catch(() => {
        throw new Failure('cancel-button is still enabled after the run was cancelled');
      });
      await shot('2-cancelled');
      assertNoPageErrors('refresh-and-cancel');
    },
  ],
  [
    'skip-a-call',
    async () => {
      await startRun(SLOW, { noCache: true });
      const row = await waitForRunningRow('slow run for skip');
      const callId = await row.getAttribute('data-call-id');
      const skip = row.locator(tid('skip-button'));
      check(await skip.isEnabled(), `skip-button of running call ${callId} is disabled`);
      check(await row.locator(tid('retry-button')).isEnabled(), `retry-button of running call ${callId} is disabled`);
      await skip.click();
      const target = page.locator(`${tid('agent-row')}[data-call-id="${callId}"]`);
      await page.waitForFunction((selector) => document.querySelector(selector)?.dataset.status === 'skipped', `${tid('agent-row')}[data-call-id="${callId}"]`, { timeout: 20_000 }).catch(async () => {
        const banner = await page.locator(tid('error-banner')).textContent().catch(() => '');
        throw new Failure(`call ${callId} did not become skipped (status ${await target.getAttribute('data-status')}; error banner: "${banner.trim()}")`);
      });
      check(/skipped/.test(await target.locator(tid('call-status')).textContent()), `row ${callId} does not show "skipped"`);
      check(await target.locator(tid('skip-button')).isDisabled(), `skip-button of skipped call ${callId} is still enabled`);
      await shot('3-skipped');
      await cancelIfLive('skip-a-call');
      assertNoPageErrors('skip-a-call');
    },
  ],
  [
    'arena',
    async () => {
      // The catalog's arena with its first example as prefilled (three contestants, one on
      // the local lane): the Arena view shows them, and a winner override sticks.
      await startRun('arena');
      await waitForStatus(/completed|failed|cancelled|interrupted/, 90_000, 'arena run');
      check(/completed/.test(await page.locator(tid('run-status')).textContent()), 'the arena run did not complete');
      const arena = page.locator(tid('arena-view'));
      await arena.waitFor({ timeout: 10_000 }).catch(() => {
        throw new Failure('no arena-view for a completed arena run');
      });
      const contestants = await arena.locator(tid('arena-contestant')).count();
      check(contestants === 3, `arena-view lists ${contestants} contestants, expected 3`);
      const winner = (await page.locator(tid('winner-badge')).textContent()).trim();
      check(winner.length > 0, 'winner-badge is empty');
      const ids = await page.locator(`${tid('winner-override')} option`).evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
      const other = ids.find((id) => !winner.includes(id));
      check(other, `winner-override offers no contestant other than the winner (${ids.join(', ')}; badge "${winner}")`);
      await page.locator(tid('winner-override')).selectOption(other);
      await page.waitForFunction(
        ([selector, id]) => (document.querySelector(selector)?.textContent || '').includes(id),
        [tid('winner-badge'), other],
        { timeout: 10_000 },
      ).catch(() => {
        throw new Failure(`winner-badge did not change to ${other} after the override`);
      });
      await page.reload();
      await page.locator(tid('arena-view')).waitFor({ timeout: 10_000 });
      const after = await page.locator(tid('winner-badge')).textContent();
      check(after.includes(other), `after a reload the winner-badge says "${after}", expected the override ${other}`);
      await shot('4-arena');
      assertNoPageErrors('arena');
    },
  ],
  [
    'arena-coding',
    async () => {
      // A coding battle between ACP test agents that each write a file in their own
      // worktree: the Arena view shows each diff with coloured lines.
      const args = JSON.stringify({
        prompt: '[[write:solution.txt:my fix]] fix it',
        type: 'coding',
        contestants: [{ agent: CODER }, { agent: CODER, lane: 'local' }],
      });
      await startRun('arena', { args, noCache: true });
      await waitForStatus(/completed|failed|cancelled|interrupted/, 90_000, 'coding arena run');
      check(/completed/.test(await page.locator(tid('run-status')).textContent()), 'the coding arena run did not complete');
      const diffs = page.locator(`${tid('arena-view')} ${tid('diff-view')}`);
      await diffs.first().waitFor({ timeout: 10_000 }).catch(() => {
        throw new Failure('no diff-view in the Arena view of a coding battle');
      });
      check((await diffs.count()) === 2, `expected one diff-view per contestant (2), found ${await diffs.count()}`);
      const added = await diffs.first().locator('.diff-add').allTextContents();
      check(added.some((line) => line.includes('+my fix')), `the diff shows no added line "+my fix" (added lines: ${JSON.stringify(added)})`);
      check((await diffs.first().locator('.diff-meta').count()) > 0, 'the diff shows no file header lines');
      check((await diffs.first().locator('.diff-hunk').count()) > 0, 'the diff shows no @@ hunk line');
      await shot('5-arena-coding');
      assertNoPageErrors('arena-coding');
    },
  ],
];

let failed = false;
try {
  for (const [name, run] of scenarios) {
    try {
      await run();
      console.log(`ok ${name}`);
    } catch (e) {
      failed = true;
      await shot(`FAILED-${name}`).catch(() => {});
      console.error(`FAIL ${name}: ${e instanceof Failure ? e.message : e.stack || e}`);
      if (pageErrors.length) console.error(`page errors:\n  ${pageErrors.join('\n  ')}`);
      break;
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
