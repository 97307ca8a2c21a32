// How the pane's run model merges a REST detail with the WebSocket frames that raced it
// (web/run_model.js, docs/DESIGN.md §6). Run by tests/pane_model.rs with `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunModel, RecentFrames } from '../../web/run_model.js';

const RUN = 'r1';
const runStep = (status, report = null) => ({ type: 'flow_run_step_updated', run_id: RUN, step_id: 'run', status, cached: false, run_status: status, report });
const callStep = (id, status) => ({ type: 'flow_run_step_updated', run_id: RUN, step_id: id, status, cached: false, label: null, phase: null, agent: 'fake', model: null, report: null });
const question = (status) => ({ question_id: 'q1', run_id: RUN, prompt: 'How many?', status, answer: null, answered_by: null });
const detail = (status, extra = {}) => ({ run_id: RUN, workflow: 'count', status, calls: [], questions: [], phases: [], ...extra });

test('a waiting frame that raced a detail still saying running is not dropped', () => {
  const recent = new RecentFrames();
  recent.remember({ type: 'flow_run_started', run_id: RUN, flow_name: 'count', status: 'queued', steps: [] });
  recent.remember(runStep('running'));
  const mark = recent.mark; // GET /api/runs/r1 sent here; the server reads the run before the question
  recent.remember({ type: 'question_asked', run_id: RUN, question: question('open') });
  recent.remember(runStep('waiting'));
  const model = new RunModel(RUN);
  model.mergeDetail(detail('running'), recent, mark);
  assert.equal(model.status, 'waiting');
  assert.equal(model.openQuestions().length, 1);
});

test('frames received before the request never move the detail backwards', () => {
  const recent = new RecentFrames();
  recent.remember(runStep('running'));
  recent.remember(callStep('c1', 'running'));
  recent.remember(runStep('waiting'));
  const mark = recent.mark;
  const model = new RunModel(RUN);
  const calls = [{ call_id: 'c1', seq: 0, status: 'completed', cached: false, agent: 'fake', duration_ms: 5 }];
  const ended = model.mergeDetail(detail('completed', { result: 6, calls }), recent, mark);
  assert.equal(model.status, 'completed');
  assert.equal(model.calls.get('c1').status, 'completed');
  assert.equal(model.result, 6);
  assert.equal(ended, false, 'the detail already showed the end');
});

test('frames received after the request replay in order, so the last word wins', () => {
  const recent = new RecentFrames();
  const mark = recent.mark;
  // Older than the detail, but sent after the request: the detail already has c1 completed.
  recent.remember(callStep('c1', 'running'));
  recent.remember(callStep('c1', 'completed'));
  recent.remember(runStep('paused'));
  const model = new RunModel(RUN);
  const calls = [{ call_id: 'c1', seq: 0, status: 'completed', cached: false, agent: 'fake', duration_ms: 5 }];
  model.mergeDetail(detail('running', { calls }), recent, mark);
  assert.equal(model.calls.get('c1').status, 'completed');
  assert.equal(model.status, 'paused');
});

test('a re-read that answers after a newer frame keeps the newer status', () => {
  const recent = new RecentFrames();
  const model = new RunModel(RUN);
  recent.remember(runStep('waiting'));
  model.mergeDetail(detail('waiting', { questions: [question('open')] }), recent, recent.mark);
  const mark = recent.mark; // a re-read goes out
  const answered = { type: 'question_answered', run_id: RUN, question: { ...question('answered'), answer: 3 } };
  for (const f of [answered, runStep('running')]) {
    recent.remember(f);
    model.applyFrame(f, false); // live, as the socket delivers them
  }
  assert.equal(model.status, 'running');
  // The re-read was served before the answer: it still says waiting, with the question open.
  model.mergeDetail(detail('waiting', { questions: [question('open')] }), recent, mark);
  assert.equal(model.status, 'running');
  assert.equal(model.openQuestions().length, 0);
});

test('a frame that ends the run the detail showed unfinished is reported', () => {
  const recent = new RecentFrames();
  const mark = recent.mark;
  recent.remember(runStep('completed', { status: 'completed', result: 6 }));
  const model = new RunModel(RUN);
  assert.equal(model.mergeDetail(detail('running'), recent, mark), true);
  assert.equal(model.status, 'completed');
});

test('the buffer keeps the newest frames of the newest runs', () => {
  const recent = new RecentFrames(2, 3);
  for (let i = 0; i < 5; i += 1) recent.remember({ type: 'workflow_log', run_id: 'a', level: 'info', message: `m${i}`, at: '2026-01-01T00:00:00Z' });
  assert.deepEqual(recent.of('a').map((e) => e.frame.message), ['m2', 'm3', 'm4']);
  assert.deepEqual(recent.of('a').map((e) => e.n), [3, 4, 5]);
  recent.remember({ type: 'workflow_log', run_id: 'b', level: 'info', message: 'x', at: '2026-01-01T00:00:00Z' });
  recent.remember({ type: 'workflow_log', run_id: 'c', level: 'info', message: 'y', at: '2026-01-01T00:00:00Z' });
  assert.equal(recent.of('a').length, 0, 'the oldest run is forgotten');
  assert.equal(recent.of('c').length, 1);
  recent.forget('c');
  assert.equal(recent.of('c').length, 0);
});
