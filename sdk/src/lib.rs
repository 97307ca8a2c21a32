//! The Rust guest SDK for booflow `.wasm` workflows (docs/DESIGN.md §2).
//!
//! A `.wasm` workflow is a `wasm32-wasip1` command that talks to the host through three
//! imports in the `booflow` module — the same ones the built-in JavaScript runtime uses:
//!
//! - `send(ptr, len)`: a [`GuestRequest`](booflow_host_api::GuestRequest) as UTF-8 JSON;
//! - `wait() -> len`: blocks until the next [`HostEvent`](booflow_host_api::HostEvent)
//!   (the first is the [`Init`](booflow_host_api::Init)) and returns its byte length;
//! - `recv(ptr)`: copies that event into guest memory.
//!
//! The script-level typings for JavaScript authors are in `booflow.d.ts` beside this crate.

pub use booflow_host_api as api;

/// The raw host imports. On other targets they panic: only the wasm sandbox provides them.
pub mod raw {
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "booflow")]
    unsafe extern "C" {
        #[link_name = "send"]
        fn host_send(ptr: *const u8, len: usize);
        #[link_name = "wait"]
        fn host_wait() -> usize;
        #[link_name = "recv"]
        fn host_recv(ptr: *mut u8);
    }

    /// Sends one request (JSON text) to the host.
    pub fn send(message: &str) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: the host reads exactly `len` bytes from our memory at `ptr`.
        unsafe {
            host_send(message.as_ptr(), message.len())
        };
        #[cfg(not(target_arch = "wasm32"))]
        panic!("booflow_sdk::raw::send is only available inside the wasm sandbox ({message})");
    }

    /// Blocks until the host's next event and returns it (JSON text).
    pub fn wait() -> String {
        #[cfg(target_arch = "wasm32")]
        {
            // SAFETY: `wait` returns the length the host will write with `recv`, and we hand
            // it a buffer of exactly that length.
            unsafe {
                let len = host_wait();
                let mut buf = vec![0u8; len];
                host_recv(buf.as_mut_ptr());
                String::from_utf8_lossy(&buf).into_owned()
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        panic!("booflow_sdk::raw::wait is only available inside the wasm sandbox")
    }
}

/// Typed helpers over [`raw`].
pub mod host {
    use booflow_host_api::{GuestRequest, HostEvent, Init};

    /// Reads the run's [`Init`]; call once, first.
    pub fn init() -> Result<Init, serde_json::Error> {
        serde_json::from_str(&super::raw::wait())
    }

    /// Sends a request.
    pub fn send(request: &GuestRequest) {
        super::raw::send(&request.to_json());
    }

    /// Waits for the next host event.
    pub fn next_event() -> Result<HostEvent, serde_json::Error> {
        serde_json::from_str(&super::raw::wait())
    }
}
