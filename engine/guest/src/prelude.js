// The workflow runtime: every global of docs/DESIGN.md §1, written in JavaScript over the
// native primitives of natives.rs (send a request, check agent() options, the caller's
// line, compile a workflow the host loaded, whether the caller is a nested workflow).
// Evaluated once per run before the workflow body; returns the hooks the Rust event loop
// drives (dispatch a host event, count outstanding work, start the main body).
(function (native, initJson) {
  'use strict';
  const G = globalThis;
  // The runtime keeps its own references: a script may replace JSON.parse/stringify or
  // Promise with anything, and that must change nothing about how the runtime talks to
  // the host.
  const jsonParse = JSON.parse;
  const jsonStringify = JSON.stringify;
  const Prom = Promise;
  const init = jsonParse(initJson);
  const send = (msg) => native.send(jsonStringify(msg));

  // ---- errors with stable names (docs/DESIGN.md §1) ----------------------------------------
  const ERROR_NAMES = [
    'WorkflowAgentCapError',
    'WorkflowBudgetExceededError',
    'WorkflowInputError',
    'WorkflowAbortError',
    'WorkflowSandboxError',
    'WorkflowAgentError',
  ];
  const errorClasses = {};
  for (const name of ERROR_NAMES) {
    const cls = class extends Error {
      constructor(message) {
        super(message);
        this.name = name;
      }
    };
    Object.defineProperty(cls, 'name', { value: name });
    errorClasses[name] = cls;
    // Fixed: the runtime itself throws these, so a script must not swap them out.
    Object.defineProperty(G, name, { value: cls, writable: false, configurable: false, enumerable: false });
  }
  function makeError(name, message) {
    const cls = errorClasses[name];
    if (cls) return new cls(message);
    const e = new Error(message);
    e.name = name;
    return e;
  }

  // ---- determinism bans (docs/DESIGN.md §1) ------------------------------------------------
  const banned = (what, why) => () => {
    throw makeError('WorkflowSandboxError', `${what} is not allowed in workflows: ${why}`);
  };
  const NONDETERMINISTIC = 'runs must be deterministic so that results can be cached and resumed';
  Math.random = banned('Math.random()', NONDETERMINISTIC);
  const RealDate = Date;
  const SafeDate = function Date(...values) {
    if (new.target === undefined) {
      banned('Date()', `${NONDETERMINISTIC}; pass a value, new Date(value)`)();
    }
    if (values.length === 0) {
      banned('new Date() without a value', `${NONDETERMINISTIC}; pass a value, new Date(value)`)();
    }
    return Reflect.construct(RealDate, values, new.target);
  };
  SafeDate.prototype = RealDate.prototype;
  Object.defineProperty(RealDate.prototype, 'constructor', { value: SafeDate, writable: true, configurable: true });
  SafeDate.now = banned('Date.now()', NONDETERMINISTIC);
  SafeDate.parse = RealDate.parse;
  SafeDate.UTC = RealDate.UTC;
  G.Date = SafeDate;
  const noAccess = (what) =>
    banned(what, 'the sandbox has no modules, files, processes or network; only agent() reaches outside');
  G.require = noAccess('require()');
  G.fetch = noAccess('fetch()');

  // ---- host requests ---------------------------------------------------------------
  // Requests and their promises live on the native side (requests.rs): ids, the pending
  // promises, the spend replies report, and the cancel.
  const timers = new Map(); // timer id -> callback
  let currentPhase = null;
  let cancelled = false;

  // A request answered by the host (ask, workflow_load): its promise.
  function request(msg) {
    return native.request(jsonStringify(msg));
  }

  const show = (value) => {
    if (typeof value === 'string') return value;
    if (value instanceof Error) {
      const stack = typeof value.stack === 'string' ? value.stack : '';
      return `${value.name}: ${value.message}${native.errorPlace(value.name, value.message, stack)}`;
    }
    try {
      const text = jsonStringify(value);
      return text === undefined ? String(value) : text;
    } catch (_) {
      return String(value);
    }
  };
  const logLine = (level, parts) => send({ type: 'log', level, message: parts.map(show).join(' ') });

  // A thunk or stage that threw: the slot becomes null, and the failure stays visible.
  const reportDropped = (where, e) => logLine('warn', [`${where} failed, its slot is null:`, e]);

  function checkItems(fn, items) {
    if (!Array.isArray(items)) {
      throw makeError('WorkflowInputError', `${fn}() takes an array as its first argument, got ${typeof items}`);
    }
    if (items.length > init.max_items) {
      throw makeError(
        'WorkflowInputError',
        `${fn}() got ${items.length} items; the limit is ${init.max_items} per call (WORKFLOW_MAX_ITEMS)`,
      );
    }
  }

  // ---- the globals -------------------------------------------------------------------
  // agent(): the options are checked, the request sent and its promise made natively
  // (requests.rs agent_start), the hot path of every fan-out.
  G.agent = function agent(prompt, opts) {
    if (typeof prompt !== 'string') {
      return Prom.reject(makeError('WorkflowInputError', `agent() prompt must be a string, got ${typeof prompt}`));
    }
    let text = null;
    if (opts !== undefined && opts !== null) {
      try {
        text = jsonStringify(opts);
      } catch (e) {
        return Prom.reject(makeError('WorkflowInputError', e.message));
      }
      if (text === undefined) {
        return Prom.reject(makeError('WorkflowInputError', `agent() options must be an object, got ${typeof opts}`));
      }
    }
    return native.agentStart(prompt, text, currentPhase);
  };

  // booflow extension (docs/DESIGN.md §1): pauses the script until a person answers. The
  // host checks the options (choices, schema, default, timeoutMs, label) and rejects the
  // promise with WorkflowInputError for an unknown or ill-typed one.
  G.ask = function ask(question, opts) {
    if (typeof question !== 'string' || question === '') {
      return Prom.reject(makeError('WorkflowInputError', `ask() question must be a non-empty string, got ${typeof question}`));
    }
    let options = null;
    if (opts !== undefined && opts !== null) {
      if (typeof opts !== 'object' || Array.isArray(opts)) {
        return Prom.reject(makeError('WorkflowInputError', `ask() options must be an object, got ${Array.isArray(opts) ? 'array' : typeof opts}`));
      }
      options = jsonParse(jsonStringify(opts));
    }
    return request({ type: 'ask', question, opts: options, line: native.callerLine() });
  };

  G.parallel = async function parallel(thunks) {
    checkItems('parallel', thunks);
    return Prom.all(
      thunks.map(async (thunk, i) => {
        try {
          if (typeof thunk === 'function') return await thunk();
          if (thunk && typeof thunk.then === 'function') {
            logLine('warn', [`parallel() item ${i} is a promise, not a function: it started before parallel() could schedule it`]);
            return await thunk;
          }
          throw makeError('WorkflowInputError', `parallel() item ${i} is ${typeof thunk}, not a function; wrap each call: () => agent(...)`);
        } catch (e) {
          reportDropped(`parallel item ${i}`, e);
          return null;
        }
      }),
    );
  };

  G.pipeline = async function pipeline(items, ...stages) {
    checkItems('pipeline', items);
    stages.forEach((stage, s) => {
      if (typeof stage !== 'function') {
        throw makeError('WorkflowInputError', `pipeline() stage ${s + 1} is ${typeof stage}, not a function (prev, item, index) => …`);
      }
    });
    return Prom.all(
      items.map(async (item, index) => {
        let prev = item;
        for (let s = 0; s < stages.length; s++) {
          try {
            prev = await stages[s](prev, item, index);
          } catch (e) {
            reportDropped(`pipeline item ${index} stage ${s + 1}`, e);
            return null;
          }
        }
        return prev;
      }),
    );
  };

  G.phase = function phase(title) {
    currentPhase = String(title);
    send({ type: 'phase', title: currentPhase });
  };

  G.log = function log(...parts) {
    logLine('info', parts);
  };

  G.console = Object.freeze({
    log: (...parts) => logLine('info', parts),
    info: (...parts) => logLine('info', parts),
    debug: (...parts) => logLine('debug', parts),
    warn: (...parts) => logLine('warn', parts),
    error: (...parts) => logLine('error', parts),
  });

  G.setTimeout = function setTimeout(callback, ms, ...rest) {
    if (typeof callback !== 'function') throw new TypeError('setTimeout() needs a function');
    const id = native.nextId();
    if (cancelled) return id;
    timers.set(id, () => callback(...rest));
    // As in browsers and Node: a delay that is not a finite number runs at once, and the
    // delay is capped at 2^31 - 1 ms.
    const delay = Math.floor(Number(ms));
    send({ type: 'timer_start', id, ms: Number.isFinite(delay) ? Math.min(Math.max(0, delay), 2 ** 31 - 1) : 0 });
    return id;
  };
  G.clearTimeout = function clearTimeout(id) {
    if (timers.delete(id)) send({ type: 'timer_clear', id });
  };

  // booflow extension: budget.cost() is what the run spent in dollars (live calls priced
  // by [prices."MODEL"]; calls whose model has no price are counted apart, never as $0).
  let cost = { usd: 0, unknownCalls: 0 };
  const costTotal = init.cost_total === undefined ? null : init.cost_total;
  G.budget = Object.freeze({
    total: init.budget_total,
    spent: () => native.spent(),
    remaining: () => (init.budget_total === null ? Infinity : Math.max(0, init.budget_total - native.spent())),
    cost: () => Object.freeze({ usd: cost.usd, unknownCalls: cost.unknownCalls, total: costTotal }),
  });

  G.artifact = function artifact(name, content) {
    if (typeof name !== 'string' || name === '') {
      throw makeError('WorkflowInputError', 'artifact() needs a non-empty name');
    }
    const text = content === undefined ? 'null' : jsonStringify(content);
    if (text === undefined) {
      throw makeError('WorkflowInputError', `artifact('${name}') content must be text or JSON data, got ${typeof content}`);
    }
    // The name rule and the per-run quotas (docs/DESIGN.md §1 limits).
    const problem = native.checkArtifact(name, text);
    if (problem !== '') throw makeError('WorkflowInputError', problem);
    send({ type: 'artifact', name, content: jsonParse(text) });
  };

  const ONE_LEVEL = 'workflow() nests one level only: a nested workflow cannot call workflow()';
  const nestedWorkflow = async () => {
    throw makeError('WorkflowInputError', ONE_LEVEL);
  };
  G.workflow = async function workflow(target, childArgs) {
    // However the nested body reached this function (globalThis.workflow, a reference
    // captured by its parent), its frames on the stack give it away. A sandbox that runs
    // the child of a .wasm parent (init.nested, docs/DESIGN.md §2) is nested throughout.
    if (init.nested === true || native.inNested()) throw makeError('WorkflowInputError', ONE_LEVEL);
    const valid =
      (typeof target === 'string' && target !== '') ||
      (target && typeof target === 'object' && typeof target.scriptPath === 'string');
    if (!valid) {
      throw makeError('WorkflowInputError', 'workflow() takes a workflow name or {scriptPath}, e.g. workflow("review", args)');
    }
    const ref = typeof target === 'string' ? target : { scriptPath: target.scriptPath };
    // A nested workflow's args are data, as a run's are: no functions or live objects
    // cross into the child.
    const text = childArgs === undefined ? undefined : jsonStringify(childArgs);
    const data = text === undefined ? undefined : jsonParse(text);
    const handle = await request({ type: 'workflow_load', target: ref, from_file: init.script.file });
    const body = native.compileLoaded(handle);
    return body(data, nestedWorkflow)();
  };

  // Web-platform helpers that scripts written for Node or browsers take for granted and
  // boa does not ship; both are deterministic.
  if (typeof G.queueMicrotask !== 'function') {
    G.queueMicrotask = (callback) => {
      Promise.resolve().then(callback);
    };
  }
  if (typeof G.structuredClone !== 'function') {
    G.structuredClone = (value) => (value === undefined ? undefined : jsonParse(jsonStringify(value)));
  }

  G.args = init.args === null ? undefined : init.args;

  // ---- hooks for the Rust event loop -------------------------------------------------
  // The thrown value as the Rust side places it (place.rs): name, message and boa's stack
  // text, from which it reads the file, line, column and the script's frames.
  function describeError(e) {
    const out = { name: 'Error', message: show(e), stack: '' };
    if (e && typeof e === 'object') {
      if (typeof e.name === 'string') out.name = e.name;
      if (typeof e.message === 'string') out.message = e.message;
      if (typeof e.stack === 'string') out.stack = e.stack;
    }
    return jsonStringify(out);
  }

  // The events the native side leaves to the runtime (lib.rs take_event): timers, the
  // spend in dollars and the cancel, parsed; or any event as its text when the native side
  // could not parse it (nested deeper than serde_json's limit), replies included.
  function dispatch(event) {
    const ev = typeof event === 'string' ? jsonParse(event) : event;
    switch (ev.type) {
      case 'script':
        native.settle(ev.id, ev.budget_spent, false, ev.id);
        break;
      case 'resolve':
        native.settle(ev.id, ev.budget_spent, false, ev.value);
        break;
      case 'reject':
        native.settle(ev.id, ev.budget_spent, true, makeError(ev.error.name, ev.error.message));
        break;
      case 'timer': {
        const callback = timers.get(ev.id);
        timers.delete(ev.id);
        if (callback) {
          try {
            callback();
          } catch (e) {
            logLine('error', ['setTimeout callback threw:', e]);
          }
        }
        break;
      }
      case 'cost': {
        cost = { usd: ev.spent_usd, unknownCalls: ev.unknown_calls };
        break;
      }
      case 'cancel': {
        // The native side rejected the pending requests already.
        cancelled = true;
        timers.clear();
        break;
      }
    }
  }

  return {
    dispatch,
    describeError,
    makeError,
    outstanding: () => timers.size,
    start: (main) => main(G.args, G.workflow)(),
    toJson: (value) => {
      const text = jsonStringify(value === undefined ? null : value);
      return text === undefined ? 'null' : text;
    },
  };
});
