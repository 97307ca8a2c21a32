//! The native side of the runtime: the boa context with booflow's host hooks, and the
//! primitives the prelude is built on: `send`, `agentStart`, `request`, `settle`,
//! `nextId` and `spent` (requests and their replies, in `requests.rs`), `callerLine`,
//! `compileLoaded` (a nested workflow the host loaded), `inNested` (whether the caller
//! is a nested workflow's code) and `errorPlace` (where a caught error stands).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use boa_engine::{
    Context, JsNativeError, JsResult, JsString, JsValue, NativeFunction, Source,
    context::{ContextBuilder, HostHooks},
    js_string,
    module::{Module, ModuleLoader, ModuleRequest, Referrer},
    object::ObjectInitializer,
    realm::Realm,
    vm::SourcePath,
};
use booflow_host_api::messages::PreparedScript;

/// JS recursion depth before a catchable `RangeError`. Kept well below what the wasm stack
/// (and the native sandbox thread's stack) can hold, so deep recursion is an error, not a
/// crash.
const RECURSION_LIMIT: usize = 400;

/// Bans code generation from strings (`eval`, `Function`, docs/DESIGN.md §1).
struct Hooks;

impl HostHooks for Hooks {
    fn ensure_can_compile_strings(
        &self,
        _realm: Realm,
        _parameters: &[JsString],
        _body: &JsString,
        _direct: bool,
        context: &mut Context,
    ) -> JsResult<()> {
        Err(sandbox_error(
            "code generation from strings (eval, Function) is not allowed in workflows",
            context,
        ))
    }
}

/// A `WorkflowSandboxError` (the prelude's class, a non-writable global) with `message`,
/// so a script sees the stable name in `e.name` and `e instanceof WorkflowSandboxError`
/// holds (docs/DESIGN.md §1). Before the prelude ran, a plain error carrying the name.
fn sandbox_error(message: &str, ctx: &mut Context) -> boa_engine::JsError {
    let class = ctx
        .global_object()
        .get(js_string!("WorkflowSandboxError"), ctx)
        .ok()
        .and_then(|v| v.as_constructor());
    if let Some(class) = class
        && let Ok(error) = class.construct(&[JsValue::from(js_string!(message))], None, ctx)
    {
        return boa_engine::JsError::from_opaque(error.into());
    }
    JsNativeError::eval()
        .with_message(format!("WorkflowSandboxError: {message}"))
        .into()
}

/// Refuses every `import` (docs/DESIGN.md §1: nothing is imported).
struct NoModules;

impl ModuleLoader for NoModules {
    fn load_imported_module(
        self: Rc<Self>,
        _referrer: Referrer,
        request: ModuleRequest,
        context: &RefCell<&mut Context>,
    ) -> impl Future<Output = JsResult<Module>> {
        let specifier = request.specifier().to_std_string_escaped();
        let message = format!(
            "import('{specifier}') is not allowed in workflows: the sandbox has no modules"
        );
        let error = sandbox_error(&message, &mut context.borrow_mut());
        std::future::ready(Err(error))
    }
}

/// A fresh context with booflow's hooks and limits.
pub(crate) fn new_context() -> JsResult<Context> {
    let mut ctx = ContextBuilder::new()
        .host_hooks(Rc::new(Hooks))
        .module_loader(Rc::new(NoModules))
        .build()?;
    ctx.runtime_limits_mut()
        .set_recursion_limit(RECURSION_LIMIT);
    Ok(ctx)
}

fn arg_string(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    Ok(args
        .get(i)
        .cloned()
        .unwrap_or_default()
        .to_string(ctx)?
        .to_std_string_escaped())
}

fn send(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let text = arg_string(args, 0, ctx)?;
    crate::host_send(&text);
    Ok(JsValue::undefined())
}

/// The line of the innermost frame of the script (not the prelude) on the stack.
pub(crate) fn caller_line_number(ctx: &mut Context) -> Option<u32> {
    for frame in ctx.stack_trace() {
        let location = frame.position();
        let from_script = match &location.path {
            SourcePath::Path(path) => path.to_str() != Some(crate::PRELUDE_PATH),
            _ => false,
        };
        if from_script && let Some(position) = location.position {
            return Some(position.line_number());
        }
    }
    None
}

fn caller_line(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    Ok(caller_line_number(ctx).map_or(JsValue::null(), JsValue::from))
}

/// A string argument, or `None` when it is `undefined` or `null`.
fn optional_string(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<Option<String>> {
    match args.get(i) {
        None => Ok(None),
        Some(value) if value.is_null_or_undefined() => Ok(None),
        Some(value) => Ok(Some(value.to_string(ctx)?.to_std_string_escaped())),
    }
}

/// `native.agentStart(prompt, optionsJson | null, phase | null)`: the request sent, its
/// promise returned (see [`crate::requests::agent_start`]).
fn agent_start(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let prompt = arg_string(args, 0, ctx)?;
    let opts = optional_string(args, 1, ctx)?;
    let phase = optional_string(args, 2, ctx)?;
    crate::requests::agent_start(prompt, opts, phase, ctx)
}

/// `native.request(messageJson)`: another request the host answers; its promise.
fn request(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let message = arg_string(args, 0, ctx)?;
    crate::requests::request(&message, ctx)
}

/// `native.settle(id, budgetSpent, rejected, value)`: a reply the prelude parsed itself
/// settles its request (see [`crate::requests::settle`]).
fn settle(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let number = |i: usize, ctx: &mut Context| -> JsResult<u64> {
        let n = args.get(i).cloned().unwrap_or_default().to_number(ctx)?;
        Ok(if n.is_finite() && n > 0.0 {
            n as u64
        } else {
            0
        })
    };
    let id = number(0, ctx)?;
    let spent = number(1, ctx)?;
    let value = args.get(3).cloned().unwrap_or_default();
    let settlement = match args.get(2).is_some_and(JsValue::to_boolean) {
        true => crate::requests::Settlement::Reject(value),
        false => crate::requests::Settlement::Resolve(value),
    };
    crate::requests::settle(id, spent, settlement, ctx)?;
    Ok(JsValue::undefined())
}

fn next_id(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(JsValue::from(crate::requests::next_id() as f64))
}

fn spent(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(JsValue::from(crate::requests::spent() as f64))
}

thread_local! {
    /// Scripts the host loaded for `workflow()` calls, by request id, until compiled. Only
    /// the host fills this (see [`crate::accept_event`]), so nothing a script does can put
    /// its own text here: the eval ban holds even with `JSON.parse` overridden.
    static LOADED: RefCell<HashMap<u64, PreparedScript>> = RefCell::new(HashMap::new());
    /// Source paths nested workflow bodies were compiled under (see [`compile_loaded`]).
    static NESTED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

thread_local! {
    /// Names stored by `artifact()` so far and their bytes in all, for the per-run quotas.
    static ARTIFACTS: RefCell<(HashSet<String>, usize)> = RefCell::new((HashSet::new(), 0));
}

/// `native.checkArtifact(name, jsonText)`: `""` when `artifact(name, …)` may store that
/// JSON text, else why not (the name rule, or a quota of `booflow_host_api::limits`).
/// Counts what it allows.
fn check_artifact(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    use booflow_host_api::limits::{
        MAX_ARTIFACT_BYTES, MAX_ARTIFACT_TOTAL_BYTES, MAX_ARTIFACTS, check_artifact_name,
    };
    let name = arg_string(args, 0, ctx)?;
    let bytes = arg_string(args, 1, ctx)?.len();
    let verdict = ARTIFACTS.with(|a| {
        let (names, total) = &mut *a.borrow_mut();
        check_artifact_name(&name)?;
        if bytes > MAX_ARTIFACT_BYTES {
            return Err(format!(
                "artifact('{name}') is {bytes} bytes as JSON; the limit is {MAX_ARTIFACT_BYTES} bytes per artifact"
            ));
        }
        if !names.contains(&name) && names.len() >= MAX_ARTIFACTS {
            return Err(format!(
                "artifact('{name}'): a run keeps at most {MAX_ARTIFACTS} artifacts"
            ));
        }
        if *total + bytes > MAX_ARTIFACT_TOTAL_BYTES {
            return Err(format!(
                "artifact('{name}'): a run's artifacts hold at most {MAX_ARTIFACT_TOTAL_BYTES} bytes in all"
            ));
        }
        names.insert(name.clone());
        *total += bytes;
        Ok(())
    });
    Ok(js_string!(verdict.err().unwrap_or_default()).into())
}

/// Keeps a script the host loaded for the `workflow_load` request `id`.
pub(crate) fn keep_loaded(id: u64, script: PreparedScript) {
    LOADED.with(|l| l.borrow_mut().insert(id, script));
}

/// Forgets every loaded script, nested path and artifact count (the run is over).
pub(crate) fn forget_loaded() {
    LOADED.with(|l| l.borrow_mut().clear());
    NESTED.with(|n| n.borrow_mut().clear());
    ARTIFACTS.with(|a| *a.borrow_mut() = (HashSet::new(), 0));
}

/// The path a nested workflow's body is compiled under: its file with a marker, so its
/// frames can be told from the caller's even when a script nests itself, and errors in it
/// say where they came from.
fn nested_path(file: &str) -> String {
    format!("{file} (nested workflow)")
}

/// `native.compileLoaded(handle)`: compiles the script the host loaded for that
/// `workflow_load` request into its body factory; each handle compiles once.
fn compile_loaded(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let handle = args.first().cloned().unwrap_or_default().to_number(ctx)?;
    let script = LOADED
        .with(|l| l.borrow_mut().remove(&(handle as u64)))
        .ok_or_else(|| {
            JsNativeError::typ()
                .with_message("WorkflowSandboxError: no workflow was loaded under this handle")
        })?;
    let file = nested_path(&script.file);
    NESTED.with(|n| n.borrow_mut().insert(file.clone()));
    compile_body(
        &PreparedScript {
            file,
            body: script.body,
            module: None,
        },
        ctx,
    )
}

/// `native.inNested()`: whether any frame on the stack belongs to a nested workflow's
/// body, so `workflow()` can refuse a second level however the script reached it
/// (`globalThis.workflow`, a captured reference, a helper of the parent script).
fn in_nested(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let nested = NESTED.with(|nested| {
        let nested = nested.borrow();
        !nested.is_empty()
            && ctx.stack_trace().any(|frame| match &frame.position().path {
                SourcePath::Path(path) => path.to_str().is_some_and(|p| nested.contains(p)),
                _ => false,
            })
    });
    Ok(JsValue::from(nested))
}

/// `native.errorPlace(name, message, stack)`: where a caught error stands, as
/// ` (FILE:LINE:COLUMN)` (or `""`), for the warning a dropped `parallel()`/`pipeline()`
/// slot leaves: the same place the run's error would name (see [`crate::place::describe`]).
fn error_place(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let thrown = crate::place::Thrown {
        name: arg_string(args, 0, ctx)?,
        message: arg_string(args, 1, ctx)?,
        stack: arg_string(args, 2, ctx)?,
    };
    let place = crate::with_init(|init| crate::place::describe(thrown, &init.script).place());
    Ok(js_string!(place.unwrap_or_default()).into())
}

/// Compiles a workflow body into a factory `(args, workflow) => async () => { body }`.
/// `args` and `workflow` are parameters of the *outer* function, so a script may still
/// declare its own `const args` at top level, as it could under Claude Code. The wrapper
/// opens on the body's first line and closes after its last, so every line keeps its number.
pub(crate) fn compile_body(script: &PreparedScript, ctx: &mut Context) -> JsResult<JsValue> {
    let wrapped = crate::place::wrapped_body(script);
    ctx.eval(Source::from_bytes(&wrapped).with_path(Path::new(&script.file)))
}

/// The object handed to the prelude as `native`.
pub(crate) fn native_object(ctx: &mut Context) -> JsValue {
    let object = ObjectInitializer::new(ctx)
        .function(NativeFunction::from_fn_ptr(send), js_string!("send"), 1)
        .function(
            NativeFunction::from_fn_ptr(agent_start),
            js_string!("agentStart"),
            3,
        )
        .function(
            NativeFunction::from_fn_ptr(request),
            js_string!("request"),
            1,
        )
        .function(NativeFunction::from_fn_ptr(settle), js_string!("settle"), 4)
        .function(
            NativeFunction::from_fn_ptr(next_id),
            js_string!("nextId"),
            0,
        )
        .function(NativeFunction::from_fn_ptr(spent), js_string!("spent"), 0)
        .function(
            NativeFunction::from_fn_ptr(caller_line),
            js_string!("callerLine"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(compile_loaded),
            js_string!("compileLoaded"),
            1,
        )
        .function(
            NativeFunction::from_fn_ptr(check_artifact),
            js_string!("checkArtifact"),
            2,
        )
        .function(
            NativeFunction::from_fn_ptr(in_nested),
            js_string!("inNested"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(error_place),
            js_string!("errorPlace"),
            3,
        )
        .build();
    object.into()
}
