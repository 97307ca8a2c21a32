//! The native side of the runtime: the boa context with booflow's host hooks, and the three
//! primitives the prelude is built on (`send`, `checkOptions`, `compile`) plus `callerLine`.

use std::cell::RefCell;
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
use booflow_host_api::{AgentOptions, messages::PreparedScript};

/// JS recursion depth before a catchable `RangeError`. Kept well below what the wasm stack
/// (and the native sandbox thread's stack) can hold, so deep recursion is an error, not a
/// crash.
const RECURSION_LIMIT: usize = 400;

/// Bans code generation from strings (`eval`, `Function`, DESIGN.md §1).
struct Hooks;

impl HostHooks for Hooks {
    fn ensure_can_compile_strings(
        &self,
        _realm: Realm,
        _parameters: &[JsString],
        _body: &JsString,
        _direct: bool,
        _context: &mut Context,
    ) -> JsResult<()> {
        Err(JsNativeError::eval()
            .with_message(
                "WorkflowSandboxError: code generation from strings (eval, Function) is not allowed in workflows",
            )
            .into())
    }
}

/// Refuses every `import` (DESIGN.md §1: nothing is imported).
struct NoModules;

impl ModuleLoader for NoModules {
    fn load_imported_module(
        self: Rc<Self>,
        _referrer: Referrer,
        request: ModuleRequest,
        _context: &RefCell<&mut Context>,
    ) -> impl Future<Output = JsResult<Module>> {
        let specifier = request.specifier().to_std_string_escaped();
        std::future::ready(Err(JsNativeError::typ()
            .with_message(format!(
                "WorkflowSandboxError: import('{specifier}') is not allowed in workflows: the sandbox has no modules"
            ))
            .into()))
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

fn check_options(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let text = arg_string(args, 0, ctx)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        JsNativeError::typ().with_message(format!("agent() options are not plain data: {e}"))
    })?;
    let agent_types = crate::with_init(|init| init.agent_types.clone()).unwrap_or_default();
    let opts = AgentOptions::from_js(&value, &agent_types)
        .map_err(|e| JsNativeError::typ().with_message(e.0))?;
    let json = serde_json::to_string(&opts).unwrap_or_else(|_| "{}".into());
    Ok(js_string!(json).into())
}

fn caller_line(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    for frame in ctx.stack_trace() {
        let location = frame.position();
        let from_script = match &location.path {
            SourcePath::Path(path) => path.to_str() != Some(crate::PRELUDE_PATH),
            _ => false,
        };
        if from_script && let Some(position) = location.position {
            return Ok(JsValue::from(position.line_number()));
        }
    }
    Ok(JsValue::null())
}

fn compile(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let script = PreparedScript {
        body: arg_string(args, 0, ctx)?,
        file: arg_string(args, 1, ctx)?,
    };
    compile_body(&script, ctx)
}

/// Compiles a workflow body into a factory `(args, workflow) => async () => { body }`.
/// `args` and `workflow` are parameters of the *outer* function, so a script may still
/// declare its own `const args` at top level, as it could under Claude Code. The wrapper
/// opens on the body's first line and closes after its last, so every line keeps its number.
pub(crate) fn compile_body(script: &PreparedScript, ctx: &mut Context) -> JsResult<JsValue> {
    let wrapped = format!("((args, workflow) => async () => {{{}\n}})", script.body);
    ctx.eval(Source::from_bytes(&wrapped).with_path(Path::new(&script.file)))
}

/// The object handed to the prelude as `native`.
pub(crate) fn native_object(ctx: &mut Context) -> JsValue {
    let object = ObjectInitializer::new(ctx)
        .function(NativeFunction::from_fn_ptr(send), js_string!("send"), 1)
        .function(
            NativeFunction::from_fn_ptr(check_options),
            js_string!("checkOptions"),
            1,
        )
        .function(
            NativeFunction::from_fn_ptr(caller_line),
            js_string!("callerLine"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(compile),
            js_string!("compile"),
            2,
        )
        .build();
    object.into()
}

/// The line of a syntax error, from boa's message (`… at line 3, col 7`).
pub(crate) fn line_from_message(message: &str) -> Option<u32> {
    let at = message.rfind("line ")?;
    let digits: String = message[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The line of the first stack frame in `file` (`at f (file:12:5)`).
pub(crate) fn line_from_frame(stack: &str, file: &str) -> Option<u32> {
    let needle = format!("{file}:");
    let at = stack.find(&needle)? + needle.len();
    let digits: String = stack[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_lines_are_read_for_the_workflow_file() {
        let stack = "f (/p/w.js:2:25)\n    at f (/p/w.js:2:25)";
        assert_eq!(super::line_from_frame(stack, "/p/w.js"), Some(2));
        assert_eq!(super::line_from_frame(stack, "/p/other.js"), None);
    }

    #[test]
    fn syntax_error_lines_are_read_from_the_message() {
        assert_eq!(
            super::line_from_message("unexpected token at line 12, col 4"),
            Some(12)
        );
        assert_eq!(super::line_from_message("no position"), None);
    }
}
