//! The wasm sandbox: the guest runtime compiled to `wasm32-wasip1`, run by wasmtime with no
//! preopened directories, environment or sockets (docs/DESIGN.md §2).
//!
//! - CPU: epoch interruption. A ticker thread advances the engine epoch every
//!   [`TICK_MS`]; a store's deadline is the sync timeout in ticks, refreshed each time the
//!   guest returns from waiting on the host, so only *synchronous* work is bounded.
//! - Memory: `StoreLimits` with `trap_on_grow_failure`.
//! - Start-up: the guest is compiled ahead of time at build time (`booflow-aot`, with the
//!   same [`booflow_aot::config`]) and the artifact embedded, so even the first run on a
//!   fresh machine only deserializes it. Should wasmtime find the artifact incompatible
//!   with this machine (another CPU, say), the guest is compiled once, with one log line,
//!   and cached on disk (`~/.cache/booflow/`) for the next runs.
//! - A `.wasm` workflow runs its own module in place of the guest, on the same engine,
//!   limits and host imports (see [`super::modules`]).

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::error::Context as _;
use wasmtime::{
    AsContextMut, Caller, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

use booflow_host_api::ModuleRef;

use super::{RequestSink, SandboxLimits, hung_up};

/// The guest module, built by `build.rs`.
static GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/booflow-guest.wasm"));
/// [`GUEST_WASM`] compiled ahead of time by `booflow-aot` for the build machine.
static GUEST_PRECOMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/booflow-guest.cwasm"));
/// Epoch tick length.
const TICK_MS: u64 = 10;
use booflow_aot::MAX_WASM_STACK;
/// Stack of the thread that runs the guest. wasmtime runs wasm on the calling thread's
/// stack and traps (`Trap::StackOverflow`) once wasm frames use [`MAX_WASM_STACK`]; the
/// thread must hold that much *plus* the host frames around and below it, or a deep guest
/// recursion (say `JSON.stringify` of a 5000-deep structure) overflows the host thread
/// first and aborts the whole process instead of failing the one run.
const THREAD_STACK: usize = MAX_WASM_STACK + 16 * 1024 * 1024;

struct Runtime {
    engine: Engine,
    module: Module,
    load: GuestLoad,
}

static RUNTIME: OnceLock<Result<Arc<Runtime>, String>> = OnceLock::new();
/// `BOOFLOW_CACHE_DIR` (see `Settings::cache_dir`), set once per process by the engine.
static CACHE_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Where the compiled guest is cached (`None`: `~/.cache/booflow`); the first call wins,
/// as there is one compiled module per process.
pub fn set_cache_dir(dir: Option<PathBuf>) {
    let _ = CACHE_DIR.set(dir);
}

/// Where a guest compiled at run time is cached: keyed by booflow's version and the guest's hash,
/// so a rebuilt guest or a new release never loads a stale artifact.
pub fn module_cache_path() -> PathBuf {
    let hash = hex::encode(&Sha256::digest(GUEST_WASM)[..8]);
    let dir = CACHE_DIR
        .get()
        .cloned()
        .flatten()
        .or_else(|| dirs::cache_dir().map(|d| d.join("booflow")))
        .unwrap_or_else(|| std::env::temp_dir().join("booflow-cache"));
    dir.join(format!("guest-{}-{hash}.cwasm", env!("CARGO_PKG_VERSION")))
}

/// How the guest module was obtained, for [`warm_up`] and the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestLoad {
    /// The artifact embedded at build time was deserialized.
    Embedded,
    /// The embedded artifact did not fit this machine; the guest was compiled at run time
    /// (or loaded from the on-disk cache of an earlier such compile).
    Compiled,
}

fn load_module(engine: &Engine) -> wasmtime::Result<(Module, GuestLoad)> {
    // SAFETY: the bytes are the artifact `booflow-aot` wrote with `precompile_module` for
    // this very guest at build time (embedded, so nobody can swap it); wasmtime checks its
    // version, settings and CPU features against this engine before using it.
    match unsafe { Module::deserialize(engine, GUEST_PRECOMPILED) } {
        Ok(module) => return Ok((module, GuestLoad::Embedded)),
        Err(e) => tracing::warn!(
            "the precompiled wasm guest does not fit this machine ({e}); compiling it once into {}",
            module_cache_path().display()
        ),
    }
    Ok((compiled_module(engine)?, GuestLoad::Compiled))
}

fn compiled_module(engine: &Engine) -> wasmtime::Result<Module> {
    let path = module_cache_path();
    if path.exists() {
        // SAFETY: the file is one we wrote with `Module::serialize` for this exact guest and
        // booflow version; wasmtime also checks that it matches the engine's configuration.
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(module) => return Ok(module),
            Err(e) => tracing::warn!(
                "recompiling the wasm guest, cached {} unusable: {e}",
                path.display()
            ),
        }
    }
    let module = Module::new(engine, GUEST_WASM).context("cannot compile the wasm guest")?;
    if let Err(e) = write_cache(&module, &path) {
        tracing::warn!(
            "cannot cache the compiled wasm guest at {}: {e}",
            path.display()
        );
    }
    Ok(module)
}

pub(super) fn write_cache(module: &Module, path: &std::path::Path) -> wasmtime::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context("cannot create the cache directory")?;
    }
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, module.serialize()?).context("cannot write the cache file")?;
    std::fs::rename(&tmp, path).context("cannot rename the cache file")?;
    Ok(())
}

fn runtime() -> Result<Arc<Runtime>, String> {
    RUNTIME
        .get_or_init(|| {
            let engine = Engine::new(&booflow_aot::config())
                .map_err(|e| format!("cannot start wasmtime: {e}"))?;
            let (module, load) = load_module(&engine).map_err(|e| format!("{e:#}"))?;
            let ticker = engine.weak();
            std::thread::Builder::new()
                .name("booflow-epoch".into())
                .spawn(move || {
                    while let Some(engine) = ticker.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(Duration::from_millis(TICK_MS));
                    }
                })
                .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
            Ok(Arc::new(Runtime {
                engine,
                module,
                load,
            }))
        })
        .clone()
}

/// Loads the guest module now (see [`GuestLoad`]); returns how, or why it could not. Lets a
/// caller pay the one-time cost up front, and the bench and tests see which path was taken.
pub fn warm_up() -> Result<GuestLoad, String> {
    runtime().map(|rt| rt.load)
}

/// Measures both ways of obtaining the guest, side by side, on fresh wasmtime engines:
/// deserializing the embedded precompiled artifact, and compiling the guest from wasm
/// (what a run without the artifact pays). For the `first_run` bench; returns
/// `(deserialize, compile)` wall times, or panics if either fails.
pub fn load_costs() -> (Duration, Duration) {
    let engine = Engine::new(&booflow_aot::config()).expect("wasmtime starts");
    let started = std::time::Instant::now();
    // SAFETY: as in `load_module`: our own build-time artifact, checked by wasmtime.
    unsafe { Module::deserialize(&engine, GUEST_PRECOMPILED) }.expect("the artifact loads");
    let deserialize = started.elapsed();
    let engine = Engine::new(&booflow_aot::config()).expect("wasmtime starts");
    let started = std::time::Instant::now();
    Module::new(&engine, GUEST_WASM).expect("the guest compiles");
    (deserialize, started.elapsed())
}

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
    sink: RequestSink,
    events: Receiver<String>,
    inbox: Vec<u8>,
    deadline_ticks: u64,
}

fn guest_bytes(caller: &mut Caller<'_, State>, ptr: u32, len: u32) -> wasmtime::Result<Vec<u8>> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .context("the guest exports no memory")?;
    let data = memory.data(&caller);
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .context("guest buffer overflows")?;
    data.get(start..end)
        .map(<[u8]>::to_vec)
        .context("guest buffer out of bounds")
}

fn add_host_imports(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "booflow",
        "send",
        |mut caller: Caller<'_, State>, ptr: u32, len: u32| -> wasmtime::Result<()> {
            let bytes = guest_bytes(&mut caller, ptr, len)?;
            caller
                .data()
                .sink
                .send_text(&String::from_utf8_lossy(&bytes));
            Ok(())
        },
    )?;
    linker.func_wrap("booflow", "wait", |mut caller: Caller<'_, State>| -> u32 {
        let event = caller.data().events.recv().unwrap_or_else(|_| hung_up());
        // The guest waited on the host: its synchronous slice starts afresh.
        let ticks = caller.data().deadline_ticks;
        caller.as_context_mut().set_epoch_deadline(ticks);
        let len = event.len() as u32;
        caller.data_mut().inbox = event.into_bytes();
        len
    })?;
    linker.func_wrap(
        "booflow",
        "recv",
        |mut caller: Caller<'_, State>, ptr: u32| -> wasmtime::Result<()> {
            let memory = caller
                .get_export("memory")
                .and_then(|e| e.into_memory())
                .context("the guest exports no memory")?;
            let inbox = std::mem::take(&mut caller.data_mut().inbox);
            memory
                .write(&mut caller, ptr as usize, &inbox)
                .context("guest buffer out of bounds")?;
            Ok(())
        },
    )?;
    Ok(())
}

/// The run's error for a trap: what happened and which limit applies, never wasmtime's
/// backtrace (logged at debug level instead).
fn describe_trap(error: &wasmtime::Error, limits: SandboxLimits) -> String {
    tracing::debug!("the wasm sandbox stopped a workflow: {error:?}");
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "the workflow ran for more than {} ms without yielding to the host (an endless loop?); \
             WORKFLOW_SYNC_TIMEOUT_MS sets the bound",
            limits.sync_timeout_ms
        ),
        Some(Trap::StackOverflow) => {
            "the workflow exhausted the sandbox stack (runaway recursion, or a structure nested too deep?)".into()
        }
        // The guest's shadow stack sits at the bottom of its memory: running off it is an
        // access below address 0, reported as out of bounds.
        Some(Trap::MemoryOutOfBounds) => {
            "the workflow exhausted the sandbox stack (runaway recursion, or a structure nested too deep?)".into()
        }
        Some(trap) => format!("the workflow runtime faulted: {trap}"),
        _ if format!("{error:?}").contains("memory") => format!(
            "the workflow needed more than {} MiB of memory; WORKFLOW_MEMORY_MB sets the bound",
            limits.memory_mb
        ),
        _ => format!("the wasm sandbox stopped the workflow: {}", error.root_cause()),
    }
}

fn run(
    sink: RequestSink,
    events: Receiver<String>,
    limits: SandboxLimits,
    workflow: Option<ModuleRef>,
) -> Result<(), String> {
    let runtime = runtime()?;
    let (module, wasi) = match &workflow {
        Some(workflow) => (
            super::modules::load(&runtime.engine, workflow)?,
            super::modules::wasi(),
        ),
        // No preopened directories, no environment, no sockets, no args.
        None => (runtime.module.clone(), WasiCtxBuilder::new().build_p1()),
    };
    let deadline_ticks = limits.sync_timeout_ms.div_ceil(TICK_MS).max(1);
    let state = State {
        wasi,
        limits: StoreLimitsBuilder::new()
            .memory_size((limits.memory_mb as usize) << 20)
            .trap_on_grow_failure(true)
            .build(),
        sink,
        events,
        inbox: Vec::new(),
        deadline_ticks,
    };
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(deadline_ticks);
    let mut linker: Linker<State> = Linker::new(&runtime.engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
        .map_err(|e| e.to_string())?;
    add_host_imports(&mut linker).map_err(|e| e.to_string())?;
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| describe_trap(&e, limits))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| e.to_string())?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) if exit.0 == 0 => Ok(()),
            _ => Err(describe_trap(&e, limits)),
        },
    }
}

/// Runs the guest, or the `.wasm` workflow `workflow`, on its own thread.
pub(super) fn spawn(
    sink: RequestSink,
    events: Receiver<String>,
    limits: SandboxLimits,
    workflow: Option<ModuleRef>,
) {
    let failure_sink = sink.clone();
    let spawned = std::thread::Builder::new()
        .name("booflow-wasm".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            if let Err(message) = run(sink, events, limits, workflow) {
                failure_sink.fail(message);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the wasm sandbox thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The artifact `build.rs` embeds was compiled with the runtime's settings on this
    /// machine, so it must load without the compile fallback: a mismatch (say, different
    /// wasmtime features in `booflow-aot`) would silently cost every first run seconds.
    #[test]
    fn the_embedded_guest_loads_without_compiling() {
        assert_eq!(warm_up(), Ok(GuestLoad::Embedded));
    }
}
