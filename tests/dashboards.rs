//! The real check of the dashboards and alerts: Prometheus (Debian's package binary,
//! its own data dir and port, 1 s scrapes) scrapes a short run of real payfleet
//! processes and RabbitMQ's prometheus plugin, with prometheus/prometheus.yml's jobs
//! (only the targets replaced); then every dashboard panel query, every template
//! variable and every alert expression is evaluated through the HTTP API. A query that
//! errors or returns no series fails the test: every panel has data, including those
//! whose data only a failure brings (their counters start at zero).

mod observe;

use observe::{ProcessFleet, free_port, payout, repo_path};
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const RABBITMQ_PROMETHEUS: &str = "127.0.0.1:15692";

/// A Prometheus server on a free port, stopped and its data removed on drop.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Prometheus {
    fn start(fleet: &ProcessFleet) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "payfleet-dashboards-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let config = local_config(fleet);
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = observe::prometheus_tool("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Evaluates an instant query; Err with Prometheus' error when it fails.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| format!("request: {e}"))?;
        let body: Value = r.json().await.map_err(|e| format!("answer: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/-/ready", self.url)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `expr` returns series (what the scrapes must have brought in).
    async fn wait_for_series(&self, expr: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.query(expr).await.is_ok_and(|r| !r.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no series for {expr} in {secs} s; targets: {}",
                self.targets().await
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn targets(&self) -> String {
        match reqwest::get(format!("{}/api/v1/targets", self.url)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// prometheus/prometheus.yml with each job's targets pointed at the local fleet, 1 s
/// scrapes and evaluations, and the rules file by absolute path.
fn local_config(fleet: &ProcessFleet) -> String {
    let text = std::fs::read_to_string(repo_path("prometheus/prometheus.yml")).expect("config");
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text).expect("config YAML");
    config["global"]["scrape_interval"] = "1s".into();
    config["global"]["evaluation_interval"] = "1s".into();
    config["rule_files"] = vec![serde_yaml::Value::from(repo_path("prometheus/alerts.yml"))].into();
    let port_of = |process: &str| {
        fleet
            .targets
            .iter()
            .find(|t| t.process == process)
            .map(|t| format!("127.0.0.1:{}", t.port))
            .expect("a fleet process")
    };
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs");
    for job in jobs.iter_mut() {
        let name = job["job_name"].as_str().expect("job_name").to_owned();
        let target = match name.as_str() {
            "rabbitmq" | "rabbitmq-queues" => RABBITMQ_PROMETHEUS.to_owned(),
            other => match other.strip_prefix("payfleet-") {
                Some(process) => port_of(process),
                None => panic!("job {other} in prometheus.yml is unknown to this test"),
            },
        };
        let map = job.as_mapping_mut().expect("job mapping");
        map.remove("dns_sd_configs");
        map.insert(
            "static_configs".into(),
            serde_yaml::from_str(&format!("[{{targets: [\"{target}\"]}}]")).expect("YAML"),
        );
        map.insert("scrape_interval".into(), "1s".into());
    }
    serde_yaml::to_string(&config).expect("YAML")
}

/// Grafana's variables, as the dashboards would substitute them for this fleet.
fn substitute(expr: &str, namespace: &str) -> String {
    expr.replace("$__rate_interval", "10s")
        .replace("$namespace", namespace)
        .replace("$provider", "ecommpay")
        .replace("$method", "homebank")
}

/// Every query of a dashboard: (where, expression).
fn dashboard_queries(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_path(file)).expect("dashboard file");
    let d: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = Vec::new();
    for panel in d["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(
            !targets.is_empty(),
            "{file}: panel {} has no query",
            panel["title"]
        );
        for t in targets {
            out.push((
                format!("{file} panel {} {}", panel["title"], t["refId"]),
                t["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    // Query variables: label_values(<selector>, <label>) needs series of the selector.
    for v in d["templating"]["list"].as_array().expect("templating") {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().expect("variable query");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.rsplit_once(','))
                .map(|(selector, _)| selector.to_owned())
                .unwrap_or_else(|| panic!("{file}: variable query {q} is not label_values"));
            out.push((format!("{file} variable {}", v["name"]), inner));
        }
    }
    out
}

/// An alert expression with every comparison made a `bool` one, so that it returns its
/// series whether or not it fires (the rules use only comparisons and `and`).
fn as_bool(expr: &str) -> String {
    let mut out = expr.to_owned();
    for op in [" >= ", " <= ", " == ", " != ", " > ", " < "] {
        out = out.replace(op, &format!("{}bool ", op));
    }
    out
}

fn alert_expressions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_path("prometheus/alerts.yml")).expect("alerts");
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).expect("alerts YAML");
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert rules only").to_owned();
            let expr = rule["expr"].as_str().expect("expr").to_owned();
            out.push((format!("alert {name}"), expr));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_panel_and_alert_has_data_from_a_real_fleet() {
    let fleet = ProcessFleet::start("t-dash").await;
    let prometheus = Prometheus::start(&fleet);
    prometheus.wait_ready().await;
    let ns = fleet.namespace.clone();

    // A short real run: payouts that succeed and that are declined, spread over a few
    // seconds of scrapes.
    for round in 0..5 {
        let bodies: Vec<String> = (0..4)
            .map(|i| payout(&format!("dash-{round}-{i}"), "1"))
            .chain([payout(&format!("dash-{round}-decl"), "decline-1")])
            .collect();
        fleet.publish(&bodies, &[]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The detailed per-queue metrics appear once RabbitMQ emits queue statistics
    // (every 5 s by default).
    prometheus
        .wait_for_series(
            &format!(r#"rabbitmq_detailed_queue_consumers{{queue="{ns}.commands.ecommpay"}}"#),
            60,
        )
        .await;
    prometheus
        .wait_for_series(
            &format!(r#"rabbitmq_detailed_queue_messages{{queue="{ns}.dead"}}"#),
            60,
        )
        .await;
    prometheus
        .wait_for_series(
            r#"payfleet_payment_events_total{status="succeeded", job="payfleet-gateway"} > 0"#,
            30,
        )
        .await;
    for job in [
        "payfleet-worker",
        "payfleet-gateway",
        "payfleet-reconciler",
        "payfleet-sandbox",
        "rabbitmq",
        "rabbitmq-queues",
    ] {
        prometheus
            .wait_for_series(&format!(r#"up{{job="{job}"}} == 1"#), 30)
            .await;
    }
    // Enough samples after the run for every rate window.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut queries = dashboard_queries("grafana/dashboards/fleet.json");
    queries.extend(dashboard_queries("grafana/dashboards/providers.json"));
    let alerts = alert_expressions();
    assert!(
        queries.len() > 30,
        "fewer queries than the dashboards have: {}",
        queries.len()
    );
    assert!(alerts.len() >= 7, "alerts: {alerts:?}");

    let mut failures = Vec::new();
    for (place, expr) in &queries {
        let expr = substitute(expr, &ns);
        assert!(!expr.contains('$'), "{place}: unknown variable in {expr}");
        match prometheus.query(&expr).await {
            Ok(r) if r.is_empty() => failures.push(format!("{place}: no series for {expr}")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{place}: {e} in {expr}")),
        }
    }
    for (place, expr) in &alerts {
        if let Err(e) = prometheus.query(expr).await {
            failures.push(format!("{place}: {e} in {expr}"));
        }
        let series = as_bool(expr);
        match prometheus.query(&series).await {
            Ok(r) if r.is_empty() => failures.push(format!("{place}: no series for {series}")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{place}: {e} in {series}")),
        }
    }
    // The rules were loaded by the server too (same file as production).
    let rules: Value = reqwest::get(format!("{}/api/v1/rules", prometheus.url))
        .await
        .expect("rules API")
        .json()
        .await
        .expect("rules JSON");
    let loaded = rules["data"]["groups"][0]["rules"]
        .as_array()
        .map_or(0, Vec::len);
    if loaded != alerts.len() {
        failures.push(format!(
            "prometheus loaded {loaded} rules of {}",
            alerts.len()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}\nprometheus log:\n{}",
        failures.len(),
        queries.len() + 2 * alerts.len(),
        failures.join("\n"),
        prometheus.log()
    );
    drop(prometheus);
    fleet.stop().await;
}

#[test]
fn as_bool_keeps_every_comparison_but_returns_its_series() {
    assert_eq!(
        as_bool("max(a) > 0 and on () sum(b) == 0"),
        "max(a) > bool 0 and on () sum(b) == bool 0"
    );
    assert_eq!(as_bool("x >= 1"), "x >= bool 1");
}
