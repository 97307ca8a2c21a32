//! `AgentOptions::from_js` (the `agent()` options allowlist) on arbitrary JSON, with and
//! without configured agent types.
//!
//! Invariants: no panic; accepted options are a fixed point — their JSON form
//! (`camelCase`, as the guest sends it) is accepted again by `from_js` and decodes with
//! serde to the same options; an accepted `agentType` is one of the configured ones; an
//! error has a message.
#![no_main]

use booflow_host_api::AgentOptions;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let configured = ["qwen".to_string(), "deepseek".to_string()];
    for agent_types in [&[][..], &configured[..]] {
        match AgentOptions::from_js(&value, agent_types) {
            Ok(opts) => {
                let json = serde_json::to_value(&opts).expect("options serialise");
                let again = AgentOptions::from_js(&json, agent_types)
                    .unwrap_or_else(|e| panic!("accepted options {json} are refused again: {e}"));
                assert_eq!(again, opts);
                let decoded: AgentOptions =
                    serde_json::from_value(json.clone()).expect("options decode");
                assert_eq!(decoded, opts);
                if let (Some(name), false) = (&opts.agent_type, agent_types.is_empty()) {
                    assert!(agent_types.contains(name), "{name}");
                }
                let _ = opts.dispatch_affecting();
            }
            Err(e) => assert!(!e.0.is_empty()),
        }
    }
});
