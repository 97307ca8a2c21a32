//! Where a script's error stands: the file, line and column of the failing expression and
//! the script's own frames (docs/DESIGN.md §1), read from boa's `Error.prototype.stack`
//! text and corrected where boa 0.22 records no position of its own.

use booflow_host_api::{ScriptError, StackFrame, messages::PreparedScript};

/// What the body is wrapped in before it is compiled (see [`wrapped_body`]): it opens on
/// the body's first line, so columns on that line are off by its length. The body's
/// function takes its name from a property key ([`BODY_NAME`]): it shows in stacks, and
/// unlike a named function expression it binds no name the body could see.
const WRAP_OPEN: &str = "((args, workflow) => ({ 'booflow:main': async () => {";
const WRAP_CLOSE: &str = "\n} })['booflow:main'])";
/// The body's function name in boa's stack text, shown as `<main>`; boa shows every
/// function without a name as `<main>` too, and those are shown as `<anonymous>`.
const BODY_NAME: &str = "booflow:main";

/// The body as the function both sandboxes compile, a factory `(args, workflow) => async
/// () => { body }`: its first line is the body's first and it closes after the last, so
/// every line keeps its number (and every column but those of line 1, which [`frames`]
/// corrects).
pub(crate) fn wrapped_body(script: &PreparedScript) -> String {
    format!("{WRAP_OPEN}{}{WRAP_CLOSE}", script.body)
}

/// An error as the prelude's `describeError` hands it over: its `name`, `message` and
/// boa's `stack` text (empty when the thrown value had none).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Thrown {
    pub name: String,
    pub message: String,
    #[serde(default)]
    pub stack: String,
}

/// Places a thrown error: the innermost of the script's frames gives file, line and
/// column; a syntax error's position comes from its message; an unbound name is moved to
/// where it is used ([`place_unbound_name`]). `script` is the run's workflow, whose file
/// stands in when no frame names one.
pub(crate) fn describe(thrown: Thrown, script: &PreparedScript) -> ScriptError {
    let Thrown {
        name,
        mut message,
        mut stack,
    } = thrown;
    // boa reports its runtime limits as `RuntimeLimitError: …` with the stack folded into
    // the message; give it the name scripts expect and keep the stack out of the message.
    if let Some((head, folded)) = message.split_once("\n    at ") {
        if stack.is_empty() {
            stack = format!("    at {folded}");
        }
        message = head.to_string();
    }
    let mut error = ScriptError {
        name,
        message,
        stack: frames(&stack),
        ..ScriptError::default()
    };
    if let Some(rest) = error.message.strip_prefix("RuntimeLimitError: ") {
        error.message = rest.to_string();
        error.name = "RangeError".into();
    }
    if let Some(top) = error.stack.first() {
        error.file = Some(top.file.clone());
        error.line = Some(top.line);
        error.column = Some(top.column);
    } else if error.name == "SyntaxError" {
        // Only a syntax error carries its position in the message; other messages may
        // quote unrelated "line N" text (a JSON error from an agent, say).
        (error.line, error.column) = position_from_message(&error.message);
        error.column = error.column.map(|c| unwrapped_column(error.line, c));
    }
    if error.file.is_none() {
        error.file = Some(script.file.clone());
    }
    if error.file.as_deref() == Some(script.file.as_str()) {
        place_unbound_name(&mut error, &script.body);
    }
    error
}

/// Most frames kept, as V8's default `Error.stackTraceLimit`.
const MAX_FRAMES: usize = 10;

/// The script's frames in boa's stack text (`    at NAME (PATH:LINE:COLUMN)`, innermost
/// first), without the runtime's frames (the prelude and native functions), a run of the
/// same frame (recursion) kept once, at most [`MAX_FRAMES`].
pub(crate) fn frames(stack: &str) -> Vec<StackFrame> {
    let mut frames: Vec<StackFrame> = stack.lines().filter_map(frame).collect();
    frames.dedup();
    frames.truncate(MAX_FRAMES);
    frames
}

fn frame(text: &str) -> Option<StackFrame> {
    let text = text.trim().strip_prefix("at ")?.strip_suffix(')')?;
    // The path may hold " (" itself (a nested workflow's marker), the name does not.
    let (function, place) = text.split_once(" (")?;
    let mut parts = place.rsplitn(3, ':');
    let column: u32 = parts.next()?.parse().ok()?;
    let line: u32 = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    if file == crate::PRELUDE_PATH || file.starts_with("native") {
        return None;
    }
    let function = match function {
        BODY_NAME => "<main>",
        "" | "<main>" => "<anonymous>",
        named => named,
    };
    Some(StackFrame {
        function: function.to_string(),
        file: file.to_string(),
        line,
        column: unwrapped_column(Some(line), column),
    })
}

/// A column as it stands in the file: on line 1 the compiled text starts with the body's
/// wrapper.
fn unwrapped_column(line: Option<u32>, column: u32) -> u32 {
    let open = WRAP_OPEN.chars().count() as u32;
    if line == Some(1) && column > open {
        column - open
    } else {
        column
    }
}

/// The line and column of a syntax error, from boa's message (`… at line 3, col 7`).
pub(crate) fn position_from_message(message: &str) -> (Option<u32>, Option<u32>) {
    let number_after = |needle: &str| -> Option<u32> {
        let at = message.rfind(needle)? + needle.len();
        let digits: String = message[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    (number_after("line "), number_after("col "))
}

/// Moves a `ReferenceError: NAME is not defined` to the line and column where `NAME` is
/// used.
///
/// boa 0.22 records source positions at calls and property accesses but not at name
/// lookups, so the error's frame carries the last position recorded before it (for a name
/// used before the body's first call, the body's own start: line 1), or the position of
/// the call whose callee it is (after the name, on its line). The name is looked for as a
/// whole identifier from that line on, skipping uses after a `.` (properties); the first
/// such use is where the lookup failed in straight-line code. Left as it is when the name
/// is not found there.
pub(crate) fn place_unbound_name(error: &mut ScriptError, body: &str) {
    if error.name != "ReferenceError" {
        return;
    }
    let Some(name) = error.message.strip_suffix(" is not defined") else {
        return;
    };
    let from_line = error.line.unwrap_or(1).max(1) as usize;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    for (index, line) in body.lines().enumerate().skip(from_line - 1) {
        let found = line.match_indices(name).find(|&(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + name.len()..].chars().next();
            !before.is_some_and(|c| is_ident(c) || c == '.') && !after.is_some_and(is_ident)
        });
        if let Some((at, _)) = found {
            let (line, column) = (index as u32 + 1, line[..at].chars().count() as u32 + 1);
            error.line = Some(line);
            error.column = Some(column);
            if let Some(top) = error.stack.first_mut() {
                top.line = line;
                top.column = column;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use booflow_host_api::{ScriptError, messages::PreparedScript};

    use super::Thrown;

    fn script(body: &str) -> PreparedScript {
        PreparedScript {
            file: "/p/w.js".into(),
            body: body.into(),
            module: None,
        }
    }

    fn unbound(line: u32, column: u32, body: &str) -> (Option<u32>, Option<u32>) {
        let mut error = ScriptError {
            name: "ReferenceError".into(),
            message: "nope is not defined".into(),
            line: Some(line),
            column: Some(column),
            ..ScriptError::default()
        };
        super::place_unbound_name(&mut error, body);
        (error.line, error.column)
    }

    #[test]
    fn an_unbound_name_is_placed_where_it_is_used() {
        let body = "\nconst a = 1 // not nope_x, nor x.nope\nconst b = nope(a)\n";
        assert_eq!(unbound(1, 1, body), (Some(3), Some(11)));
        // From the recorded position on: an earlier use does not count.
        assert_eq!(unbound(3, 1, "nope()\n\nnope\n"), (Some(3), Some(1)));
        // On the recorded line, wherever the position points (boa's is the call's).
        assert_eq!(unbound(1, 5, "x = nope(1)\n"), (Some(1), Some(5)));
        // Not found: the place stays.
        assert_eq!(unbound(2, 5, "a\nb\n"), (Some(2), Some(5)));
    }

    #[test]
    fn frames_skip_the_runtime_and_unwrap_the_first_line() {
        let stack = "    at inner (/p/w.js:3:9)\n    at <main> (/p/w.js:4:7)\n    \
                     at run (booflow:prelude:140:20)\n    at  (native)\n    \
                     at booflow:main (/p/w.js:1:60)\n    \
                     at booflow:main (/p/x.js (nested workflow):2:5)\n";
        let frames = super::frames(stack);
        let shown: Vec<String> = frames.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "inner (/p/w.js:3:9)",
                "<anonymous> (/p/w.js:4:7)",
                "<main> (/p/w.js:1:7)",
                "<main> (/p/x.js (nested workflow):2:5)"
            ]
        );
    }

    #[test]
    fn an_error_is_placed_at_its_innermost_script_frame() {
        let thrown = Thrown {
            name: "TypeError".into(),
            message: "not a callable function".into(),
            stack: "    at f (/p/w.js:4:7)\n    at booflow:main (/p/w.js:9:1)\n".into(),
        };
        let error = super::describe(thrown, &script(""));
        assert_eq!(
            error.to_string(),
            "TypeError: not a callable function (/p/w.js:4:7)\n    at f (/p/w.js:4:7)\n    \
             at <main> (/p/w.js:9:1)"
        );
    }

    #[test]
    fn runtime_limits_are_range_errors_placed_from_the_folded_stack() {
        let thrown = Thrown {
            name: "Error".into(),
            message: "RuntimeLimitError: exceeded maximum number of recursive calls\n    \
                      at f (/p/w.js:2:25)\n    at f (/p/w.js:2:25)"
                .into(),
            stack: String::new(),
        };
        let error = super::describe(thrown, &script(""));
        assert_eq!(error.name, "RangeError");
        assert_eq!(error.message, "exceeded maximum number of recursive calls");
        assert_eq!((error.line, error.column), (Some(2), Some(25)));
        // The recursion shows once.
        assert_eq!(error.stack.len(), 1);
    }

    #[test]
    fn syntax_errors_are_placed_from_the_message() {
        assert_eq!(
            super::position_from_message("unexpected token at line 12, col 4"),
            (Some(12), Some(4))
        );
        assert_eq!(super::position_from_message("no position"), (None, None));
    }
}
