//! The native boa sandbox: the guest runtime on its own thread (boa's `Context` is `!Send`),
//! talking to the host through channels. It cannot be pre-empted after an `await` and has
//! no memory cap, so it is for trusted (catalog) scripts.

use std::sync::mpsc::Receiver;

use super::{RequestSink, hung_up};

/// Stack of the sandbox thread: generous, since boa recurses natively for some calls and
/// the JS recursion limit must trip before the thread's stack does.
const STACK_BYTES: usize = 256 * 1024 * 1024;

struct ChannelHost {
    sink: RequestSink,
    events: Receiver<String>,
}

impl booflow_guest::Host for ChannelHost {
    fn send(&mut self, request: &str) {
        self.sink.send_text(request);
    }

    fn wait(&mut self) -> String {
        self.events.recv().unwrap_or_else(|_| hung_up())
    }
}

pub(crate) fn spawn(sink: RequestSink, events: Receiver<String>) {
    let panic_sink = sink.clone();
    let spawned = std::thread::Builder::new()
        .name("booflow-boa".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                booflow_guest::run(Box::new(ChannelHost { sink, events }));
            }));
            if result.is_err() {
                panic_sink.fail("the boa sandbox panicked".into());
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the boa sandbox thread: {e}");
    }
}
