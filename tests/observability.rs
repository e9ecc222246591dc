//! What operators see: every long-running process serves Prometheus text that promtool
//! accepts, with every known series present from the start; and one command's W3C
//! trace is carried from its publisher through the worker and the provider's callback
//! to its result events.

mod observe;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use observe::{ProcessFleet, payout, promtool_passes};
use std::collections::HashMap;
use std::time::Duration;

/// Series that must exist in a process's output before any event of their kind.
const WORKER_SERIES: &[&str] = &[
    "payfleet_build_info{",
    "payfleet_commands_received_total{provider=\"ecommpay\"}",
    "payfleet_commands_finished_total{method=\"homebank\",operation=\"payout\",outcome=\"declined\",provider=\"ecommpay\"}",
    "payfleet_commands_finished_total{method=\"homebank\",operation=\"payout\",outcome=\"deferred\",provider=\"ecommpay\"}",
    "payfleet_stage_duration_seconds_bucket{stage=\"rate_limit\",le=\"0.005\"}",
    "payfleet_stage_duration_seconds_bucket{stage=\"token\",le=\"0.005\"}",
    "payfleet_stage_duration_seconds_count{stage=\"queue_wait\"}",
    "payfleet_command_duration_seconds_count{operation=\"payout\",provider=\"ecommpay\"}",
    "payfleet_provider_requests_total{method=\"homebank\",provider=\"ecommpay\",request=\"submit\",result=\"unknown\"}",
    "payfleet_provider_http_requests_total{class=\"timeout\",method=\"homebank\",provider=\"ecommpay\",request=\"submit\"}",
    "payfleet_dead_letters_total{reason=\"undecodable\"}",
    "payfleet_retries_total{provider=\"ecommpay\",reason=\"throttled\"}",
    "payfleet_reconnects_total{service=\"amqp\"}",
    "payfleet_rate_limit_decisions_total{decision=\"waited\",provider=\"ecommpay\"}",
    "payfleet_rate_limit_wait_seconds_count{provider=\"ecommpay\"}",
    "payfleet_commands_in_flight ",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_process_serves_metrics_that_promtool_accepts() {
    let fleet = ProcessFleet::start("t-metrics").await;
    let bodies = [
        payout("metrics-ok-1", "1"),
        payout("metrics-decl-1", "decline-1"),
    ];
    fleet.publish(&bodies, &[]).await;
    // Wait for the worker to finish both, so real observations are in the output too.
    fleet.wait_finished(2.0).await;
    for target in &fleet.targets {
        let text = fleet.scrape(target).await;
        let build = format!("payfleet_build_info{{process=\"{}\"", target.process);
        assert!(text.contains(&build), "{}: no {build}", target.process);
        promtool_passes(&["check", "metrics"], Some(&text));
        let expected: &[&str] = match target.process {
            "worker" => WORKER_SERIES,
            "gateway" => &[
                "payfleet_callbacks_received_total{provider=\"ecommpay\"}",
                "payfleet_callbacks_total{provider=\"ecommpay\",result=\"refused_signature\"}",
                "payfleet_callback_lag_seconds_count{provider=\"ecommpay\",since=\"provider_time\"}",
            ],
            "reconciler" => &[
                "payfleet_reconciler_actions_total{action=\"settled\"}",
                "payfleet_payments_open ",
            ],
            _ => &[],
        };
        for series in expected {
            assert!(
                text.contains(series),
                "{}: no {series} in\n{text}",
                target.process
            );
        }
    }
    let value_in = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    // Gate answered both submissions over HTTP 200: counted by HTTP class as well.
    let worker = fleet.scrape(&fleet.targets[0]).await;
    let ok = "payfleet_provider_http_requests_total{class=\"2xx\",method=\"homebank\",provider=\"ecommpay\",request=\"submit\"}";
    assert_eq!(value_in(&worker, ok), 2.0, "{ok}");
    // The gateway saw the two callbacks and measured how late they came.
    let gateway = fleet.scrape(&fleet.targets[1]).await;
    let value = |name: &str| value_in(&gateway, name);
    assert!(value("payfleet_callbacks_received_total{provider=\"ecommpay\"}") >= 2.0);
    assert!(value("payfleet_callbacks_verified_total{provider=\"ecommpay\"}") >= 2.0);
    for since in ["submitted", "provider_time"] {
        let count = format!(
            "payfleet_callback_lag_seconds_count{{provider=\"ecommpay\",since=\"{since}\"}}"
        );
        assert!(value(&count) >= 2.0, "{count}");
    }
    fleet.stop().await;
}

#[test]
fn promtool_refuses_broken_exposition() {
    // The check above can fail: a counter without _total and a bad line are refused.
    let out = observe::promtool()
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(
                b"# HELP x_requests A count.\n# TYPE x_requests counter\nx_requests 1\n",
            )?;
            c.wait_with_output()
        })
        .expect("promtool runs");
    assert!(
        !out.status.success(),
        "promtool accepted a counter without _total"
    );
}

/// An event's status, traceparent and tracestate headers ("" if absent).
type Traced = (String, String, String);

/// Events of a namespace with their trace headers, by idempotency key.
async fn events_with_traces(
    fleet: &ProcessFleet,
    keys: &[&str],
    terminal: &[&str],
) -> HashMap<String, Vec<Traced>> {
    let conn = payfleet::bus::connect(&observe::amqp_url(), "observe-events")
        .await
        .expect("RabbitMQ");
    let ch = conn.create_channel().await.expect("channel");
    let mut consumer = ch
        .basic_consume(
            fleet.names().events_queue().into(),
            "observe-events".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume the events queue");
    let mut seen: HashMap<String, Vec<Traced>> = HashMap::new();
    let done = |seen: &HashMap<String, Vec<Traced>>| {
        keys.iter().all(|k| {
            seen.get(*k)
                .is_some_and(|v| v.iter().any(|(s, ..)| terminal.contains(&s.as_str())))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&seen) {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("no terminal event for every key in 30 s: {seen:?}"))
            .expect("consumer open")
            .expect("delivery");
        let event: serde_json::Value = serde_json::from_slice(&next.data).expect("event JSON");
        let header = |name: &str| {
            next.properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get(name).cloned())
                .map(|v| match v {
                    AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default()
        };
        let (tp, ts) = (
            header(payfleet::bus::headers::TRACEPARENT),
            header(payfleet::bus::headers::TRACESTATE),
        );
        seen.entry(
            event["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
        .or_default()
        .push((
            event["status"].as_str().unwrap_or_default().to_owned(),
            tp,
            ts,
        ));
        next.ack(BasicAckOptions::default()).await.expect("ack");
    }
    let _ = conn.close(200, "bye".into()).await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commands_trace_reaches_its_events_through_the_callback() {
    let fleet = ProcessFleet::start("t-trace").await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let parent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let traced = [
        (payfleet::bus::headers::TRACEPARENT, parent.as_str()),
        (payfleet::bus::headers::TRACESTATE, state),
    ];
    fleet.publish(&[payout("trace-ok-1", "1")], &traced).await;
    // One published with no traceparent still gets a trace of its own, end to end; the
    // tracestate it came with belongs to no trace of payfleet's and is dropped.
    let state_only = [(payfleet::bus::headers::TRACESTATE, state)];
    fleet
        .publish(&[payout("trace-none-1", "1")], &state_only)
        .await;
    let seen = events_with_traces(&fleet, &["trace-ok-1", "trace-none-1"], &["succeeded"]).await;

    let traced = &seen["trace-ok-1"];
    let statuses: Vec<&str> = traced.iter().map(|(s, ..)| s.as_str()).collect();
    assert!(
        statuses.contains(&"accepted") && statuses.contains(&"succeeded"),
        "expected accepted (worker) and succeeded (callback): {traced:?}"
    );
    for (status, tp, ts) in traced {
        let p = payfleet::telemetry::trace::parse(tp)
            .unwrap_or_else(|| panic!("{status} event has no valid traceparent: {tp:?}"));
        // Carried unchanged, through the worker and through the gateway's callback.
        assert_eq!(ts, state, "{status} event's tracestate");
        assert_eq!(p.trace_id, trace_id, "{status} event left the trace: {tp}");
        assert_ne!(
            p.parent_id, "00f067aa0ba902b7",
            "{status} event reuses the publisher's span"
        );
    }

    // The logs follow it too: the worker's command span and the gateway's callback span
    // carry the trace id and the idempotency key.
    for process in ["worker", "gateway"] {
        let logs = fleet.logs(process);
        let traced_lines = logs
            .iter()
            .filter(|l| l["span"]["trace_id"] == trace_id.as_str())
            .collect::<Vec<_>>();
        assert!(
            traced_lines
                .iter()
                .any(|l| l["span"]["key"] == "trace-ok-1"),
            "no {process} log line of trace {trace_id} with its key in {} lines: {:?}",
            logs.len(),
            logs.iter().rev().take(5).collect::<Vec<_>>()
        );
    }

    let untraced = &seen["trace-none-1"];
    let ids: Vec<&str> = untraced
        .iter()
        .map(|(_, tp, _)| payfleet::telemetry::trace::trace_id(tp).expect("a valid traceparent"))
        .collect();
    assert!(
        untraced.iter().all(|(.., ts)| ts.is_empty()),
        "a tracestate without its traceparent was kept: {untraced:?}"
    );
    assert!(
        ids.len() >= 2 && ids.iter().all(|id| *id == ids[0]),
        "one trace per command: {untraced:?}"
    );
    assert_ne!(ids[0], trace_id);
    fleet.stop().await;
}

#[tokio::test]
async fn a_records_trace_is_its_first_claimers_and_settling_reads_it_back() {
    use payfleet::contract::{Fingerprint, IdempotencyKey};
    use payfleet::state::{Claim, Meta, Outcome, Settle, State};
    let run = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let conn = payfleet::state::RedisConn::open(&observe::settings().redis).unwrap();
    let store = payfleet::state::StateStore::new(conn, &format!("t-trace-rec-{run}"), 60_000);
    let (first, second) = (
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-11111111111111111111111111111111-2222222222222222-01",
    );
    let fp = Fingerprint::from_stored("f".into());
    let store = &store;
    let settle = |key| async move {
        let outcome = Outcome::default();
        match store
            .settle(key, State::Succeeded, &outcome)
            .await
            .expect("settle")
        {
            Some(
                Settle::Applied { context, .. }
                | Settle::Duplicate { context, .. }
                | Settle::Moved { context, .. },
            ) => context,
            None => panic!("no record to settle"),
        }
    };

    // A callback for a record Redis lost creates none.
    let lost = IdempotencyKey::parse("trace-lost").unwrap();
    assert!(
        store
            .settle(&lost, State::Succeeded, &Outcome::default())
            .await
            .unwrap()
            .is_none()
    );

    // A second claim (the first one's lease ran out) keeps the first trace.
    let key = IdempotencyKey::parse("trace-kept").unwrap();
    for tp in [first, second] {
        let claim = store
            .claim(&key, &fp, 50, "p", &Meta::default(), Some(tp))
            .await
            .expect("claim");
        assert!(matches!(claim, Claim::Claimed { .. }), "{claim:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ctx = settle(&key).await;
    assert_eq!(ctx.traceparent.as_deref(), Some(first));
    let age = ctx
        .sent_at
        .expect("submission time")
        .elapsed()
        .unwrap_or_default();
    assert!(age < std::time::Duration::from_secs(60), "{age:?}");
}
