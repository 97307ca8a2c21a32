//! Warm pool against one process per call (`cargo bench --bench pool`): the per-call latency
//! (open a session + one prompt turn) of an ACP agent whose process is kept warm, side by
//! side with `warm = false`, which starts and initialises a process for every call. Uses the
//! ACP test agent (`booflow-test-agent`), so it measures booflow and the protocol, not a model.

use std::time::Duration;

use booflow_agents::acp::{AcpBackend, PoolGroup};
use booflow_agents::config::AcpAgent;
use booflow_agents::{AgentBackend, Progress, SessionOptions};
use booflow_testkit::test_agent::test_agent_bin;
use criterion::{Criterion, criterion_group, criterion_main};

fn config(warm: bool) -> AcpAgent {
    AcpAgent {
        auth_method: Some("test".into()),
        max_live: 1,
        warm,
        ..AcpAgent::new(vec![test_agent_bin().display().to_string()])
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = SessionOptions {
        cwd: dir.path().to_path_buf(),
        model: None,
        effort: None,
        tools: None,
        max_output_tokens: None,
        asker: None,
    };
    let mut group = c.benchmark_group("acp_call");
    group.sample_size(20);
    for (name, warm) in [("warm", true), ("one_process_per_call", false)] {
        let backend = rt.block_on(async {
            AcpBackend::new(
                "bench",
                &config(warm),
                PoolGroup::new(4, Duration::from_secs(600)),
            )
            .unwrap()
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut session = backend.open_session(&opts).await.unwrap();
                    let (progress, _rx) = Progress::new();
                    let turn = session
                        .prompt("[[reply:ok]]", None, &progress)
                        .await
                        .unwrap();
                    assert_eq!(turn.text, "ok");
                })
            })
        });
        rt.block_on(backend.shutdown());
    }
    group.finish();
}

criterion_group!(pool_benches, benches);
criterion_main!(pool_benches);
