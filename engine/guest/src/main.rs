//! The wasm guest: the workflow runtime as a WASI command. Its only way out is the three
//! `booflow` host imports of `booflow-sdk`; wasmtime gives it no files, environment or
//! sockets.

#[cfg(target_arch = "wasm32")]
struct WasmHost;

#[cfg(target_arch = "wasm32")]
impl booflow_guest::Host for WasmHost {
    fn send(&mut self, request: &str) {
        booflow_sdk::raw::send(request);
    }

    fn wait(&mut self) -> String {
        booflow_sdk::raw::wait()
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    booflow_guest::run(Box::new(WasmHost));
}
