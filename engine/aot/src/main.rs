//! `booflow-aot GUEST.wasm OUT.cwasm`: compiles the guest with the sandbox's [`config`]
//! for this machine and writes wasmtime's precompiled artifact, which the engine embeds and
//! loads with `Module::deserialize` (docs/DESIGN.md §2). Run by `engine/build.rs`.
//!
//! Exit status 1 with a message on stderr when an argument is missing, the guest cannot be
//! read or compiled, or the output cannot be written.

use std::process::ExitCode;

use booflow_aot::config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: booflow-aot GUEST.wasm OUT.cwasm");
        return ExitCode::FAILURE;
    };
    match precompile(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("booflow-aot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn precompile(input: &str, output: &str) -> Result<(), String> {
    let wasm = std::fs::read(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    let engine = wasmtime::Engine::new(&config()).map_err(|e| format!("wasmtime: {e}"))?;
    let artifact = engine
        .precompile_module(&wasm)
        .map_err(|e| format!("cannot compile {input}: {e}"))?;
    // Write then rename, so an interrupted run never leaves half an artifact behind.
    let tmp = format!("{output}.tmp");
    std::fs::write(&tmp, artifact).map_err(|e| format!("cannot write {tmp}: {e}"))?;
    std::fs::rename(&tmp, output).map_err(|e| format!("cannot rename {tmp} to {output}: {e}"))
}
