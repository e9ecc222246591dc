//! Optional OTLP export of traces: a worker configured with `telemetry.otlp_endpoint`
//! sends its spans over OTLP/HTTP (protobuf) to the collector, the `command` span in the
//! trace of the command's traceparent; while the collector is down, commands are paid
//! all the same.

mod observe;

use axum::body::Bytes;
use axum::extract::State;
use observe::{ProcessFleet, free_port, payout};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use payfleet::bus::headers::{TRACEPARENT, TRACESTATE};
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace_id: String,
    parent_span_id: String,
    trace_state: String,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The collector's OTLP/HTTP traces endpoint: decodes each export, keeps its spans.
async fn receive(
    State(spans): State<Spans>,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut kept = spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            kept.extend(scope.spans.into_iter().map(|s| Received {
                name: s.name,
                trace_id: hex(&s.trace_id),
                parent_span_id: hex(&s.parent_span_id),
                trace_state: s.trace_state,
            }));
        }
    }
    // An empty ExportTraceServiceResponse: every span accepted.
    ([("content-type", "application/x-protobuf")], Vec::new())
}

async fn start_collector(port: u16, spans: Spans) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive))
        .with_state(spans);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the collector's port is still free");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("collector serves");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workers_command_span_reaches_the_collector_in_the_commands_trace() {
    let port = free_port();
    let fleet = ProcessFleet::start_with(
        "t-otlp",
        &[
            (
                "PAYFLEET__TELEMETRY__OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
            // Batches every 100 ms rather than 5 s, to keep the test short.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ],
    )
    .await;
    let parent_span = "00f067aa0ba902b7";
    let state = "rojo=00f067aa0ba902b7";
    let traced = |trace_id: &str| format!("00-{trace_id}-{parent_span}-01");

    // The collector is down: the command is paid all the same.
    let down = uuid::Uuid::new_v4().simple().to_string();
    let tp = traced(&down);
    fleet
        .publish(&[payout("otlp-down-1", "1")], &[(TRACEPARENT, tp.as_str())])
        .await;
    fleet.wait_finished(1.0).await;

    let spans = Spans::default();
    let collector = start_collector(port, spans.clone()).await;
    let up = uuid::Uuid::new_v4().simple().to_string();
    let tp = traced(&up);
    fleet
        .publish(
            &[payout("otlp-up-1", "1")],
            &[(TRACEPARENT, tp.as_str()), (TRACESTATE, state)],
        )
        .await;
    fleet.wait_finished(2.0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let command = loop {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.trace_id == up && s.name == "command")
            .cloned();
        if let Some(span) = found {
            break span;
        }
        assert!(
            Instant::now() < deadline,
            "no command span of trace {up} reached the collector in 30 s; received: {:?}",
            spans.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A child of the publisher's span, with the tracestate the command came with.
    assert_eq!(command.parent_span_id, parent_span);
    assert_eq!(command.trace_state, state);
    fleet.stop().await;
    collector.abort();
}
