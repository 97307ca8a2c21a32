//! `.wasm` workflow modules in the wasm sandbox (docs/DESIGN.md §2): read again at run start
//! and refused when their hash differs from the validated one or when they import anything
//! beyond the allowlist (`booflow_workflows::module`), compiled once per content hash
//! (in memory, and on disk next to the guest's cache), and given a WASI context in which
//! randomness and clocks are fixed, so a module run twice does the same thing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use booflow_host_api::ModuleRef;
use booflow_workflows::module::{check_imports, module_hash, read_module};
use wasmtime::{Engine, Module};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// Compiled modules by content hash, for this process.
static COMPILED: OnceLock<Mutex<HashMap<String, Module>>> = OnceLock::new();

/// The compiled module `module` names, checked as described in the module docs.
///
/// # Errors
/// A message naming the file: unreadable, changed since it was validated, a forbidden
/// import, or not compilable.
pub(super) fn load(engine: &Engine, module: &ModuleRef) -> Result<Module, String> {
    let path = Path::new(&module.path);
    let bytes = read_module(path)
        .map_err(|e| format!("cannot read the workflow module {}: {e}", module.path))?
        .map_err(|e| format!("{}: {e}", module.path))?;
    let hash = module_hash(&bytes);
    if hash != module.sha256 {
        return Err(format!(
            "{} changed since the run was started (its SHA-256 is {hash}, the run's is {}); start the run again",
            module.path, module.sha256
        ));
    }
    // Before anything is compiled or instantiated: a module that imports more than the
    // sandbox gives never runs.
    check_imports(&bytes).map_err(|e| format!("{}: {e}", module.path))?;
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(compiled) = cache.lock().expect("module cache").get(&hash) {
        return Ok(compiled.clone());
    }
    let compiled = compile_cached(engine, &bytes, &hash)
        .map_err(|e| format!("cannot compile the workflow module {}: {e:#}", module.path))?;
    cache
        .lock()
        .expect("module cache")
        .insert(hash, compiled.clone());
    Ok(compiled)
}

/// Compiles `bytes`, or loads the artifact an earlier process cached for the same hash.
fn compile_cached(engine: &Engine, bytes: &[u8], hash: &str) -> wasmtime::Result<Module> {
    let guest_cache = super::wasm::module_cache_path();
    let dir = guest_cache
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(format!(
        "workflow-{}-{}.cwasm",
        env!("CARGO_PKG_VERSION"),
        &hash[..24]
    ));
    if path.exists() {
        // SAFETY: the file is one this booflow version wrote with `Module::serialize` for
        // the module of this hash; wasmtime also checks it against the engine's settings.
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(module) => return Ok(module),
            Err(e) => tracing::warn!(
                "recompiling {}: cached artifact unusable: {e}",
                path.display()
            ),
        }
    }
    let module = Module::new(engine, bytes)?;
    if let Err(e) = super::wasm::write_cache(&module, &path) {
        tracing::warn!(
            "cannot cache the compiled workflow module at {}: {e}",
            path.display()
        );
    }
    Ok(module)
}

/// A clock that stands still at the epoch (docs/DESIGN.md §2: runs are deterministic).
struct Stopped;

impl HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The WASI context of a workflow module: no files, environment, arguments or sockets (as
/// for the guest), stdout and stderr discarded, and a fixed byte stream for `random_get`
/// and stopped clocks.
pub(super) fn wasi() -> WasiP1Ctx {
    let seed: Vec<u8> = (0u8..=255)
        .map(|b| b.wrapping_mul(167).wrapping_add(13))
        .collect();
    WasiCtxBuilder::new()
        .secure_random(wasmtime_wasi::Deterministic::new(seed.clone()))
        .insecure_random(wasmtime_wasi::Deterministic::new(seed))
        .insecure_random_seed(0)
        .wall_clock(Stopped)
        .monotonic_clock(Stopped)
        .build_p1()
}
