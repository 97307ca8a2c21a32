//! Decoding the sandbox <-> host messages (`GuestRequest`, `HostEvent`, and `Init`) from
//! arbitrary JSON, as the host does with every line a (possibly hostile) script's sandbox
//! sends.
//!
//! Invariants: no panic; whatever decodes serialises (`to_json` never fails), and decoding
//! that serialisation gives the same serialisation back (a fixed point after one trip).
#![no_main]

use booflow_host_api::messages::{GuestRequest, HostEvent, Init};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<GuestRequest>(data) {
        let text = request.to_json();
        let again: GuestRequest = serde_json::from_str(&text).expect("a request re-decodes");
        assert_eq!(again.to_json(), text);
    }
    if let Ok(event) = serde_json::from_slice::<HostEvent>(data) {
        let text = event.to_json();
        let again: HostEvent = serde_json::from_str(&text).expect("an event re-decodes");
        assert_eq!(again.to_json(), text);
    }
    if let Ok(init) = serde_json::from_slice::<Init>(data) {
        let text = serde_json::to_string(&init).expect("init serialises");
        let again: Init = serde_json::from_str(&text).expect("init re-decodes");
        assert_eq!(serde_json::to_string(&again).unwrap(), text);
    }
});
