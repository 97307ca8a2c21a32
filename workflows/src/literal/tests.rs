use super::*;
use serde_json::json;

fn ok(src: &str) -> Value {
    match parse(src) {
        Ok(m) => m.value,
        Err(e) => panic!("{src:?} failed: {e:?}"),
    }
}

/// The 1-based line of the error and its message.
fn bad(src: &str) -> (usize, usize, String) {
    let e = parse(src).expect_err(src);
    let (line, col) = line_col(src, e.offset);
    (line, col, e.message)
}

#[test]
fn nested_with_comments_and_trailing_commas() {
    let src = r#"#!/usr/bin/env booflow
// leading comment
/* block */ export /* a */ const meta /* b */ = /* c */ {
  name: 'x', // trailing
  "quoted": "dq",
  'single': 's',
  1: 'one',
  0x10: 'hex key',
  default: true, // reserved word as key
  nested: { list: [1, -2, +3.5, [], {},], deeper: { ok: null, no: false, }, },
  tpl: `multi
line`,
};
const body = 1
"#;
    let m = parse(src).unwrap();
    assert_eq!(
        m.value,
        json!({
            "name": "x", "quoted": "dq", "single": "s", "1": "one", "16": "hex key",
            "default": true,
            "nested": {"list": [1, -2, 3.5, [], {}], "deeper": {"ok": null, "no": false}},
            "tpl": "multi\nline"
        })
    );
    assert!(src[m.span.clone()].starts_with("export"));
    assert!(src[m.span.clone()].ends_with("};"));
    assert_eq!(
        m.positions["meta.nested.list[2]"],
        src.find("+3.5").unwrap()
    );
    // Key order is the source order.
    let keys: Vec<_> = m.value.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys[..3], ["name", "quoted", "single"]);
}

#[test]
fn numbers_and_signs() {
    let v = ok("export const meta = [0, -0, 1.0, 1e3, -1_000, 0b11, 0o7, .5, - 2, 1.5e-3]");
    assert_eq!(v, json!([0, 0, 1, 1000, -1000, 3, 7, 0.5, -2, 0.0015]));
}

#[test]
fn statement_ends() {
    let src = "export const meta = {a: 1}\nconst x = 2";
    assert_eq!(parse(src).unwrap().span, 0..26);
    let src = "export const meta = {a: 1} /* c */ ;\nx()";
    assert_eq!(parse(src).unwrap().span, 0..36);
    assert_eq!(parse("export const meta = {a: 1}").unwrap().span, 0..26);
    // A keyword on the next line cannot continue the expression: ASI ends it.
    assert!(parse("export const meta = {}\nreturn 1").is_ok());
    // A byte-order mark and a hashbang line may precede the statement.
    let src = "\u{FEFF}#!/usr/bin/env booflow\nexport const meta = {}";
    assert_eq!(
        parse(src).unwrap().span,
        src.find("export").unwrap()..src.len()
    );
}

#[test]
fn duplicate_keys_warn_and_last_wins() {
    let m = parse("export const meta = {a: 1, b: 2,\n a: 3}").unwrap();
    assert_eq!(m.value, json!({"a": 3, "b": 2}));
    assert_eq!(
        m.warnings,
        ["duplicate key 'a' in meta at line 2; the last value wins"]
    );
}

#[test]
fn rejections_name_the_construct_and_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "export const meta = {\n  name: foo,\n}",
            2,
            "identifier 'foo'",
        ),
        (
            "export const meta = {\n  a: undefined }",
            2,
            "identifier 'undefined'",
        ),
        (
            "export const meta = {\n\n  a: make(1) }",
            3,
            "a call to 'make'",
        ),
        ("export const meta = {\n  ...base }", 2, "spread"),
        ("export const meta = {\n  a: [...xs] }", 2, "spread"),
        ("export const meta = {\n  [k]: 1 }", 2, "computed key"),
        ("export const meta = {\n  a: `x ${y}` }", 2, "interpolation"),
        (
            "export const meta = {\n  __proto__: {} }",
            2,
            "'__proto__' is not allowed",
        ),
        (
            "export const meta = {\n  a: { 'constructor': 1 } }",
            2,
            "'constructor'",
        ),
        ("export const meta = {\n  prototype: 1 }", 2, "'prototype'"),
        (
            "export const meta = {\n  name }",
            2,
            "shorthand property 'name'",
        ),
        ("export const meta = {\n  run() {} }", 2, "method 'run()'"),
        ("export const meta = {\n  get x() {} }", 2, "get method"),
        ("export const meta = {\n  a: () => 1 }", 2, "arrow function"),
        ("export const meta = {\n  a: x => 1 }", 2, "arrow function"),
        (
            "export const meta = {\n  a: function () {} }",
            2,
            "function expression",
        ),
        (
            "export const meta = {\n  a: /re/ }",
            2,
            "regular expression",
        ),
        ("export const meta = {\n  a: 1 + 2 }", 2, "operator `+`"),
        (
            "export const meta = {\n  a: 'x'.repeat(2) }",
            2,
            "member expression",
        ),
        (
            "export const meta = {\n  a: Math.PI }",
            2,
            "member expression on 'Math'",
        ),
        (
            "export const meta = {\n  a: new Date() }",
            2,
            "`new` expression",
        ),
        ("export const meta = {\n  a: [1,,2] }", 2, "holes"),
        ("export const meta = {\n  a: -x }", 2, "unary"),
        ("export const meta = {\n  a: 10n }", 2, "BigInt"),
        (
            "export const meta = {a: 1}\n(run)()",
            2,
            "continues the meta expression",
        ),
        ("export const meta = {a: 1} + x", 1, "after the literal"),
        ("export const meta = {a: 1}, b = 2", 1, "after the literal"),
        (
            "export const meta = {\n  a: 'open\n}",
            2,
            "unterminated string",
        ),
        ("export const meta = {\n  a: 1", 1, "unterminated"),
    ];
    for (src, line, needle) in cases {
        let (got_line, _, msg) = bad(src);
        assert!(msg.contains(needle), "{src:?}: {msg:?} lacks {needle:?}");
        assert_eq!(got_line, *line, "{src:?}: {msg}");
    }
}

#[test]
fn column_points_at_the_construct() {
    let (line, col, _) = bad("export const meta = {\n  name: 'x', desc: foo }");
    assert_eq!((line, col), (2, 20));
}

#[test]
fn meta_must_be_the_first_statement() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "// c\n\nconst x = 1\nexport const meta = {}",
            3,
            "found `const x = 1`",
        ),
        ("import x from 'y'\n", 1, "found `import x from 'y'`"),
        ("export let meta = {}", 1, "found `export let meta = {}`"),
        ("export const other = {}", 1, "found"),
        ("export const meta == {}", 1, "found"),
        ("exportconst meta = {}", 1, "found"),
        ("  // only a comment\n", 2, "end of the file"),
    ];
    for (src, line, needle) in cases {
        let (got_line, _, msg) = bad(src);
        assert!(msg.starts_with(FIRST_STATEMENT), "{msg}");
        assert!(msg.contains(needle), "{src:?}: {msg:?} lacks {needle:?}");
        assert_eq!(got_line, *line, "{src:?}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!(
        "export const meta = {}{}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(bad(&src).2.contains("nested deeper"));
}

#[test]
fn paths_bracket_odd_keys() {
    assert_eq!(child_path("meta", "name"), "meta.name");
    assert_eq!(child_path("meta", "a b"), "meta[\"a b\"]");
    assert_eq!(child_path("meta", "1"), "meta[\"1\"]");
}
