//! A real OTLP/HTTP trace receiver for tests (docs/DESIGN.md §9): `POST /v1/traces` with a
//! protobuf `ExportTraceServiceRequest` (decoded with the `opentelemetry-proto` types), on
//! `127.0.0.1:<ephemeral port>`. The spans it receives are kept, flattened, in arrival order.
//!
//! Point an exporter at [`OtlpReceiver::endpoint`] (`OTEL_EXPORTER_OTLP_ENDPOINT`; the
//! exporter appends `/v1/traces`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One span as received: ids in lowercase hex (as in a `traceparent` header), attributes as
/// JSON values (strings, booleans, integers, doubles, arrays).
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits; empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// The OTLP `SpanKind` number (1 internal, 2 server, 3 client, …).
    pub kind: i32,
    pub attributes: BTreeMap<String, Value>,
    pub events: Vec<ReceivedEvent>,
    /// The spans this one links to, as `(trace id, span id)` in hex.
    pub links: Vec<(String, String)>,
    /// The OTLP status code (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    /// The `service.name` of the span's resource.
    pub service_name: Option<String>,
}

/// One span event (a `tracing` event inside the span).
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub name: String,
    pub attributes: BTreeMap<String, Value>,
}

impl ReceivedSpan {
    /// The attribute `key`, when the span has it.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }
}

/// A running receiver; stopped when dropped.
pub struct OtlpReceiver {
    /// `http://127.0.0.1:<port>`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Starts a receiver on its own thread and Tokio runtime; the socket is bound before this
    /// returns. Panics if it cannot be bound.
    pub fn start() -> OtlpReceiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind the OTLP port");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(spans.clone());
        let stop = CancellationToken::new();
        let stop_rx = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("OTLP receiver runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let server = axum::serve(listener, app);
                tokio::select! {
                    _ = server => {}
                    _ = stop_rx.cancelled() => {}
                }
            });
        });
        OtlpReceiver {
            endpoint: format!("http://{addr}"),
            addr,
            spans,
            stop,
            thread: Some(thread),
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `POST /v1/traces`: decodes the request, keeps its spans, answers an empty
/// `ExportTraceServiceResponse` (400 for a body that is not one).
async fn traces(State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>, body: Bytes) -> Response {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans.resource.and_then(|r| {
            attributes(&r.attributes)
                .remove("service.name")
                .and_then(|v| v.as_str().map(str::to_string))
        });
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    events: (span.events.iter())
                        .map(|e| ReceivedEvent {
                            name: e.name.clone(),
                            attributes: attributes(&e.attributes),
                        })
                        .collect(),
                    links: (span.links.iter())
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                    status_code: span.status.map_or(0, |s| s.code),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
    let reply = ExportTraceServiceResponse::default().encode_to_vec();
    ([(header::CONTENT_TYPE, "application/x-protobuf")], reply).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, Value> {
    (list.iter())
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, json)))
        .collect()
}

fn json(value: &AnyValue) -> Value {
    use any_value::Value as V;
    match &value.value {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::from(s.clone()),
        Some(V::BoolValue(b)) => Value::from(*b),
        Some(V::IntValue(i)) => Value::from(*i),
        Some(V::DoubleValue(d)) => Value::from(*d),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(json).collect()),
        Some(V::KvlistValue(list)) => Value::Object(attributes(&list.values).into_iter().collect()),
        Some(V::BytesValue(b)) => Value::from(hex(b)),
    }
}
