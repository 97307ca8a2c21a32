//! The TypeScript declarations are generated from the wire types and hold their names.

#[test]
fn declarations_are_written_for_every_wire_type() {
    let dir = tempfile_dir();
    booflow_types::export_typescript(&dir).unwrap();
    let frame = std::fs::read_to_string(dir.join("Frame.ts")).unwrap();
    assert!(frame.contains("flow_run_step_updated"), "{frame}");
    let detail = std::fs::read_to_string(dir.join("RunDetail.ts")).unwrap();
    assert!(detail.contains("annotation_rules"), "{detail}");
    let status = std::fs::read_to_string(dir.join("CallStatus.ts")).unwrap();
    assert!(status.contains("\"timed_out\""), "{status}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("booflow-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
