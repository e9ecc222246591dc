//! `payfleet bench` works and reports sane numbers (not a timing assertion): the real
//! binary, a real fleet of processes on the local RabbitMQ and Redis, its own namespace.

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_payfleet-tools"))
        .arg("bench")
        .args(args)
        .env("PAYFLEET__TELEMETRY__LOG_LEVEL", "warn")
        .output()
        .expect("payfleet runs")
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} is missing or not a number in {v}"))
}

fn ordered_percentiles(run: &Value, which: &str, samples: f64) {
    let p = |q: &str| f(run, &format!("/{which}/{q}"));
    assert_eq!(p("samples"), samples, "{which} samples");
    let (p50, p95, p99, max) = (p("p50_ms"), p("p95_ms"), p("p99_ms"), p("max_ms"));
    assert!(
        0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
        "{which}: {p50} {p95} {p99} {max}"
    );
}

#[test]
fn bench_reports_sane_numbers() {
    let out = bench(&["--commands", "200", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}); stderr: {stderr}"));
    assert_eq!(report["ok"], true);
    let ceiling = f(&report, "/ceiling/messages_per_second");
    assert!(ceiling > 0.0 && f(&report, "/ceiling/messages") == 200.0);
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(f(run, "/workers"), 1.0);
    assert_eq!(f(run, "/terminal"), 200.0);
    assert_eq!(f(run, "/terminal_by_status/succeeded"), 200.0, "{run}");
    let rate = f(run, "/commands_per_second");
    assert!(rate > 0.0);
    let ratio = f(run, "/ratio_to_ceiling");
    assert!(ratio > 0.0 && ratio <= 2.0, "fleet ÷ ceiling = {ratio}");
    assert!((ratio - rate / ceiling).abs() < 1e-9);
    ordered_percentiles(&report["ceiling"], "latency", 200.0);
    ordered_percentiles(run, "latency", 200.0);
    ordered_percentiles(run, "overhead", 200.0);
    // The provider is reached before the terminal event.
    assert!(f(run, "/overhead/max_ms") <= f(run, "/latency/max_ms"));
    assert!(f(run, "/provider_peak_concurrent") >= 1.0);
    assert!(f(run, "/worker_cpu_us_per_command") > 0.0);
    assert!(f(run, "/gateway_cpu_us_per_callback") > 0.0);
    assert!(f(run, "/callbacks") >= 200.0);
    assert!(f(run, "/worker_peak_rss_mib") > 0.0);
    // The load generator's own CPU is reported, for the ceiling and the fleet alike.
    assert!(f(&report, "/ceiling/bench_cpu_ms") > 0.0);
    assert!(f(run, "/bench_cpu_ms") > 0.0);
    let processes = run["processes"].as_array().expect("processes");
    let roles: Vec<&str> = processes
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["sandbox", "gateway", "worker-0"]);
    for p in processes {
        assert!(f(p, "/peak_rss_mib") > 1.0, "{p}");
    }
    // The run cleans up after itself: its namespace (the logs folder's name) has no
    // Redis keys left.
    let logs = std::path::PathBuf::from(run["logs"].as_str().expect("logs"));
    let namespace = logs.file_name().unwrap().to_str().unwrap();
    let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    let mut conn = client.get_connection().expect("Redis on 127.0.0.1:6379");
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query(&mut conn)
        .unwrap();
    assert!(
        left.is_empty(),
        "{} keys left, e.g. {:?}",
        left.len(),
        left.first()
    );
}

#[test]
fn an_unknown_method_in_the_mix_is_refused_by_name() {
    let out = bench(&["--commands", "10", "--mix", "homebank-payout,india-sale"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown method \"india-sale\"") && stderr.contains("homebank-payout"),
        "{stderr}"
    );
}

#[test]
fn in_process_services_open_loop_provider_latency_a_mix_and_a_scaling_curve() {
    let out = bench(&[
        "--commands",
        "100",
        "--scaling",
        "1,2",
        "--services",
        "in-process",
        "--rate",
        "200",
        "--provider-latency",
        "100",
        "--in-flight",
        "50",
        "--prefetch",
        "50",
        "--mix",
        "homebank-payout,india-payout",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["pacing"]["open"]["per_second"], 200.0);
    assert_eq!(
        report["options"]["mix"],
        serde_json::json!(["homebank-payout", "india-payout"])
    );
    let runs = report["runs"].as_array().expect("runs");
    let workers: Vec<f64> = runs.iter().map(|r| f(r, "/workers")).collect();
    assert_eq!(workers, [1.0, 2.0]);
    for run in runs {
        assert_eq!(f(run, "/terminal"), 100.0, "{run}");
        // Banks of India payouts go at once: the bench's clocks are in working hours.
        assert_eq!(f(run, "/terminal_by_status/succeeded"), 100.0, "{run}");
        ordered_percentiles(run, "latency", 100.0);
        ordered_percentiles(run, "overhead", 100.0);
        // Every provider answer waits 100 ms, and the terminal event comes after it.
        assert!(f(run, "/latency/p50_ms") >= 100.0, "{run}");
        let bound = f(run, "/ratio_to_in_flight_bound");
        assert!(bound > 0.0 && bound <= 1.0, "{run}");
        // The gateway runs in the bench process: no figure rather than a wrong one.
        assert!(run["gateway_cpu_us_per_callback"].is_null());
        let roles: Vec<&str> = run["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["role"].as_str().unwrap())
            .collect();
        assert!(roles.iter().all(|r| r.starts_with("worker-")), "{roles:?}");
        assert_eq!(roles.len() as f64, f(run, "/workers"));
    }
}
