// End-to-end test of the pane of one server showing the runs another server executes
// (docs/DESIGN.md §7), in headless Chromium.
//
//   BOOFLOW_URL=http://127.0.0.1:7422 E2E_LIVE_RUN=… E2E_OWNER=… E2E_FAILED_RUN=… node tests/e2e/pane_cluster.mjs
//
// Env: BOOFLOW_URL (server B, whose pane is opened), E2E_LIVE_RUN (a run server A executes
// now, whose calls each take a few seconds), E2E_OWNER (server A's owner id, from its
// /api/health), E2E_FAILED_RUN (a run that failed on A and can succeed when resumed),
// CHROMIUM (default /usr/bin/chromium), E2E_SCREENSHOTS (a directory: a PNG per scenario).
// Prints "ok <scenario>" per passing scenario; exits 1 with a message on the first failure.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from '../node/node_modules/playwright-core/index.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
};
const BASE = env('BOOFLOW_URL');
const LIVE = env('E2E_LIVE_RUN');
const OWNER = env('E2E_OWNER');
const FAILED = env('E2E_FAILED_RUN');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOTS || '';

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
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
page.setDefaultTimeout(20_000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
page.on('console', (msg) => {
  if (msg.type() === 'error') pageErrors.push(`console.error: ${msg.text()}`);
});

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Waits until `predicate(arg)` holds in the page, else fails with `what` and `describe()`. */
async function waitIn(what, timeout, predicate, arg, describe) {
  try {
    await page.waitForFunction(predicate, arg, { timeout });
  } catch {
    throw new Failure(`${what} within ${timeout / 1000} s; ${await describe()}`);
  }
}

const statusText = () => page.locator(tid('run-status')).textContent().catch(() => '?');
const rowStatuses = () => page.locator(tid('agent-row')).evaluateAll((rows) => rows.map((r) => `${r.dataset.callId}=${r.dataset.status}`));

async function waitForStatus(pattern, timeout, what) {
  await waitIn(
    `${what}: run-status never matched ${pattern}`,
    timeout,
    ([selector, source]) => new RegExp(source).test(document.querySelector(selector)?.textContent || ''),
    [tid('run-status'), pattern.source],
    async () => `last "${await statusText()}", rows ${JSON.stringify(await rowStatuses())}, error banner "${(await page.locator(tid('error-banner')).textContent()).trim()}"`,
  );
}

const scenarios = [
  [
    'live-from-another-server',
    async () => {
      await page.goto(`${BASE}/#run=${LIVE}`);
      await waitForStatus(/running/, 15_000, 'the run of server A, opened in server B');
      check((await page.locator(`${tid('run-history')} [data-run-id="${LIVE}"]`).count()) === 1, `run ${LIVE} is not in B's run-history`);
      const running = page.locator(`${tid('agent-row')}[data-status="running"]`).first();
      await running.waitFor({ timeout: 15_000 }).catch(async () => {
        throw new Failure(`no agent-row became running (rows ${JSON.stringify(await rowStatuses())})`);
      });
      const callId = await running.getAttribute('data-call-id');
      await waitIn(
        `call ${callId} did not go from running to completed on screen`,
        20_000,
        (selector) => document.querySelector(selector)?.dataset.status === 'completed',
        `${tid('agent-row')}[data-call-id="${callId}"]`,
        async () => `rows ${JSON.stringify(await rowStatuses())}`,
      );
      await waitIn(
        `the run does not show server A (${OWNER}) as its owner`,
        10_000,
        ([selector, owner]) => document.querySelector(selector)?.dataset.owner === owner,
        [tid('run-owner'), OWNER],
        async () => `run-owner "${await page.locator(tid('run-owner')).textContent()}" (data-owner ${await page.locator(tid('run-owner')).getAttribute('data-owner')})`,
      );
      const ownerText = await page.locator(tid('run-owner')).textContent();
      check(/serve on \S+ \(pid \d+\)/.test(ownerText), `run-owner "${ownerText}" does not name A's kind, host and pid`);
      await shot('cluster-1-live');
      await waitForStatus(/completed|failed|cancelled|interrupted/, 60_000, 'the end of the run of server A');
      check(/completed/.test(await statusText()), `the run of server A ended "${await statusText()}"`);
      const rows = await rowStatuses();
      check(rows.length >= 2 && rows.every((r) => r.endsWith('=completed')), `not every call completed on screen: ${JSON.stringify(rows)}`);
      check(pageErrors.length === 0, `page errors:\n  ${pageErrors.join('\n  ')}`);
    },
  ],
  [
    'resume-from-another-server',
    async () => {
      await page.evaluate((id) => {
        location.hash = `run=${id}`;
      }, FAILED);
      await waitForStatus(/failed/, 15_000, 'the failed run of server A');
      const resume = page.locator(tid('resume-button'));
      check(await resume.isVisible(), 'a failed run shows no resume-button');
      check((await resume.textContent()).trim() === 'Resume', `resume-button says "${await resume.textContent()}"`);
      check(await page.locator(tid('resume-count')).isHidden(), 'a run never resumed shows a resume-count');
      await shot('cluster-2-failed');
      await resume.click();
      await waitForStatus(/queued|running|completed/, 15_000, 'the resumed run');
      check((await page.evaluate(() => location.hash)) === `#run=${FAILED}`, 'the resumed run is not the same run id');
      await waitForStatus(/completed|failed|cancelled|interrupted/, 60_000, 'the end of the resumed run');
      check(/completed/.test(await statusText()), `the resumed run ended "${await statusText()}"`);
      await waitIn(
        'the resumed run does not show "resumed 1×"',
        10_000,
        (selector) => /resumed 1×/.test(document.querySelector(selector)?.textContent || ''),
        tid('resume-count'),
        async () => `resume-count "${await page.locator(tid('resume-count')).textContent()}"`,
      );
      check(await resume.isHidden(), 'a completed run still shows the resume-button');
      const rows = await rowStatuses();
      check(rows.length === 3 && rows.every((r) => r.endsWith('=completed')), `the resumed run's calls: ${JSON.stringify(rows)}`);
      await shot('cluster-3-resumed');
      check(pageErrors.length === 0, `page errors:\n  ${pageErrors.join('\n  ')}`);
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
