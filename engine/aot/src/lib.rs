//! The wasmtime [`Config`] of the wasm sandbox (docs/DESIGN.md §2), shared by the runtime
//! (`booflow-engine`) and by the `booflow-aot` tool that the engine's build script runs to
//! precompile the guest. wasmtime only loads a precompiled module into an engine whose
//! settings match the ones it was compiled with, so both sides take them from here.

use wasmtime::Config;

/// Native stack wasm code may use, in bytes: deep enough for boa's recursion limit.
pub const MAX_WASM_STACK: usize = 16 * 1024 * 1024;

/// The sandbox's wasmtime settings: epoch interruption (the CPU bound of a run's
/// synchronous work), a 16 MiB wasm stack, and async fiber stacks that fit it
/// (wasmtime-wasi turns on async support).
pub fn config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.async_stack_size(MAX_WASM_STACK + (2 << 20));
    config.max_wasm_stack(MAX_WASM_STACK);
    config
}
