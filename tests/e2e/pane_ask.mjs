// The pane's person-in-the-loop controls in headless Chromium (docs/DESIGN.md §6): the
// answer form of an ask() question (choices as buttons; a schema as the args editor's form,
// a refused answer showing the validation message), and the pause/resume buttons.
//
//   BOOFLOW_URL=http://127.0.0.1:7421 node tests/e2e/pane_ask.mjs
//
// Env: BOOFLOW_URL (required), CHROMIUM (default /usr/bin/chromium), E2E_SCREENSHOTS.
// Prints "ok <scenario>" per passing scenario; exits 1 on the first failure.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from '../node/node_modules/playwright-core/index.mjs';

const BASE = process.env.BOOFLOW_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOTS || '';
if (!BASE) {
  console.error('BOOFLOW_URL is not set');
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
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
page.setDefaultTimeout(20_000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
page.on('console', (msg) => {
  // A refused answer is a 400 the pane shows; the browser logs the failed fetch itself.
  if (msg.type() === 'error' && !/status of 400/.test(msg.text())) pageErrors.push(`console.error: ${msg.text()}`);
});
const frameTypes = new Map();
page.on('websocket', (ws) => {
  ws.on('framereceived', ({ payload }) => {
    try {
      const type = JSON.parse(String(payload)).type;
      frameTypes.set(type, (frameTypes.get(type) || 0) + 1);
    } catch {
      // not ours
    }
  });
});

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

async function start(workflow) {
  const response = await fetch(`${BASE}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow }) });
  check(response.status === 202, `POST /api/runs ${workflow}: HTTP ${response.status}`);
  return (await response.json()).run_id;
}

async function open(runId) {
  await page.goto(`${BASE}/#run=${runId}`);
  await page.locator(tid('run-id')).filter({ hasText: runId }).waitFor();
}

async function waitForStatus(pattern, what, timeout = 30_000) {
  await page
    .waitForFunction(
      ([selector, source]) => new RegExp(source).test(document.querySelector(selector)?.textContent || ''),
      [tid('run-status'), pattern.source],
      { timeout },
    )
    .catch(async () => {
      throw new Failure(`${what}: the status never matched ${pattern} (it says "${await page.locator(tid('run-status')).textContent()}")`);
    });
}

async function result(runId) {
  const response = await fetch(`${BASE}/api/runs/${runId}`);
  return response.json();
}

const scenarios = [
  [
    'answer-by-choice',
    async () => {
      const runId = await start('pick');
      await open(runId);
      await waitForStatus(/waiting/, 'the run waits for its question');
      const question = page.locator(tid('question'));
      await question.waitFor();
      check((await question.locator(tid('question-text')).textContent()).includes('Which colour?'), 'the question text is shown');
      const choices = await question.locator(tid('answer-choice')).allTextContents();
      check(JSON.stringify(choices) === JSON.stringify(['red', 'green', 'blue']), `the choices are buttons: ${JSON.stringify(choices)}`);
      await shot('ask-1-choices');
      await question.locator('[data-choice="green"]').click();
      await waitForStatus(/completed/, 'the answered run completes');
      check((await page.locator(tid('question')).count()) === 0, 'the answered question leaves the page');
      const run = await result(runId);
      check(run.result && run.result.pick === 'green', `the script got the answer: ${JSON.stringify(run.result)}`);
      check(run.questions[0].answered_by === 'api:pane', `answered_by: ${run.questions[0].answered_by}`);
    },
  ],
  [
    'answer-by-schema-form',
    async () => {
      const runId = await start('count');
      await open(runId);
      await waitForStatus(/waiting/, 'the run waits for its number');
      const question = page.locator(tid('question'));
      await question.waitFor();
      await question.locator(tid('answer-json')).fill('9');
      await question.locator(tid('answer-submit')).click();
      const error = question.locator(tid('answer-error'));
      await page.waitForFunction((selector) => (document.querySelector(selector)?.textContent || '').length > 0, `${tid('question')} ${tid('answer-error')}`);
      const message = await error.textContent();
      check(/schema/.test(message) && /9/.test(message), `the refusal shows the validation message: "${message}"`);
      await shot('ask-2-refused');
      await waitForStatus(/waiting/, 'a refused answer leaves the question open');
      await question.locator(tid('answer-json')).fill('3');
      await question.locator(tid('answer-submit')).click();
      await waitForStatus(/completed/, 'the run completes with a valid answer');
      const run = await result(runId);
      check(run.result === 6, `result ${JSON.stringify(run.result)}`);
    },
  ],
  [
    'pause-and-resume',
    async () => {
      const runId = await start('slow');
      await open(runId);
      await page.locator(`${tid('pause-button')}:not([hidden])`).waitFor();
      await page.locator(tid('pause-button')).click();
      await waitForStatus(/paused/, 'the pause button pauses the run');
      await shot('ask-3-paused');
      await page.locator(`${tid('resume-button')}:not([hidden])`).waitFor();
      await page.locator(tid('resume-button')).click();
      await waitForStatus(/completed/, 'the resumed run completes', 60_000);
    },
  ],
];

let failed = false;
try {
  for (const [name, run] of scenarios) {
    try {
      await run();
      check(pageErrors.length === 0, `page errors:\n  ${pageErrors.join('\n  ')}`);
      console.log(`ok ${name}`);
    } catch (e) {
      failed = true;
      await shot(`FAILED-${name}`).catch(() => {});
      console.error(`FAIL ${name}: ${e instanceof Failure ? e.message : e.stack || e}`);
      break;
    }
  }
  if (!failed) {
    for (const type of ['question_asked', 'question_answered']) {
      if (!frameTypes.get(type)) {
        failed = true;
        console.error(`FAIL frames: no ${type} frame arrived (${JSON.stringify([...frameTypes])})`);
      }
    }
    if (!failed) console.log('ok frames');
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
