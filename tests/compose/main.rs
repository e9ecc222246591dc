//! docker-compose.yml agrees with the configuration it runs (no Docker engine here, so
//! this is a static check): every PAYFLEET__SECTION__KEY is a setting of
//! config/default.toml (or one of the secrets it documents), every payfleet service
//! listens where its ports say, workers can be scaled, and Prometheus' scrape targets
//! and Grafana's provisioning point at the services that serve them. The `cluster`
//! profile is checked in cluster.rs.

mod cluster;

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

fn repo(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn yaml(path: &str) -> Value {
    let mut v: Value = serde_yaml::from_str(&repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    // One pass merges one level: a merged mapping's own `<<` (a service merging an
    // anchored service that merges another) is left for the next pass.
    loop {
        let before = v.clone();
        v.apply_merge().expect("YAML merge keys");
        if v == before {
            return v;
        }
    }
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

fn services(c: &Value) -> BTreeMap<String, Value> {
    c["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_owned(), v.clone()))
        .collect()
}

/// A service's environment, in map or list form.
fn env(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .expect("YAML")
                        .trim()
                        .to_owned(),
                };
                (k.as_str().expect("env name").to_owned(), value)
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn defaults() -> toml::Table {
    repo("config/default.toml")
        .parse()
        .expect("config/default.toml")
}

/// Secrets are environment-only: config/default.toml names them in its header.
fn documented_secrets() -> BTreeSet<String> {
    // The variables listed in the comment block that starts "Secrets are never read".
    repo("config/default.toml")
        .lines()
        .skip_while(|l| !l.contains("Secrets are never read"))
        .take_while(|l| l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.starts_with("PAYFLEET__"))
        .map(str::to_owned)
        .collect()
}

/// The payfleet subcommand a service runs, if it runs payfleet.
fn subcommand(service: &Value) -> Option<String> {
    if service["build"].is_null() {
        return None;
    }
    service["command"][0].as_str().map(str::to_owned)
}

/// The setting that holds the address a payfleet process serves /metrics on.
fn listen_setting(subcommand: &str) -> (&'static str, &'static str) {
    match subcommand {
        "sandbox" => ("sandbox", "listen"),
        "gateway" => ("gateway", "ops_listen"),
        "worker" => ("worker", "ops_listen"),
        "reconciler" => ("reconciler", "ops_listen"),
        other => panic!("compose runs `payfleet {other}`, which serves no /metrics"),
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr} has no port"))
}

/// The address a payfleet service serves /metrics on: its environment, else the default.
fn listen_of(service: &Value, sub: &str) -> String {
    let (section, key) = listen_setting(sub);
    setting_of(service, section, key)
}

/// A service's address setting: its environment, else the default.
fn setting_of(service: &Value, section: &str, key: &str) -> String {
    let var = format!(
        "PAYFLEET__{}__{}",
        section.to_uppercase(),
        key.to_uppercase()
    );
    env(service).get(&var).cloned().unwrap_or_else(|| {
        defaults()[section][key]
            .as_str()
            .expect("listen setting is a string")
            .to_owned()
    })
}

/// Container ports a service publishes (`ports`) or exposes (`expose`).
fn container_ports(service: &Value) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for field in ["ports", "expose"] {
        for p in service[field].as_sequence().into_iter().flatten() {
            let text = match p {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("unexpected port entry {other:?}"),
            };
            out.insert(port_of(&text));
        }
    }
    out
}

#[test]
fn every_payfleet_env_var_is_a_setting() {
    let c = compose();
    let settings = defaults();
    let secrets = documented_secrets();
    assert!(
        !secrets.is_empty(),
        "config/default.toml documents no secrets"
    );
    let mut checked = 0;
    for (name, service) in services(&c) {
        for var in env(&service).keys().filter(|k| k.starts_with("PAYFLEET")) {
            checked += 1;
            if secrets.contains(var) {
                continue;
            }
            let parts: Vec<&str> = var.split("__").collect();
            assert!(
                parts.len() == 3 && parts[0] == "PAYFLEET",
                "{name}: {var} is not PAYFLEET__SECTION__KEY"
            );
            let (section, key) = (parts[1].to_lowercase(), parts[2].to_lowercase());
            assert!(
                settings
                    .get(&section)
                    .and_then(|s| s.as_table())
                    .is_some_and(|s| s.contains_key(&key)),
                "{name}: {var} is no setting: config/default.toml has no [{section}] {key}"
            );
        }
    }
    assert!(checked > 10, "only {checked} PAYFLEET variables found");
}

#[test]
fn every_payfleet_service_listens_where_its_ports_say() {
    let c = compose();
    let mut seen = BTreeSet::new();
    for (name, service) in services(&c) {
        let Some(sub) = subcommand(&service) else {
            continue;
        };
        seen.insert(sub.clone());
        let listen = listen_of(&service, &sub);
        assert!(
            listen.starts_with("0.0.0.0:"),
            "{name}: listens on {listen}, unreachable from other containers"
        );
        let ports = container_ports(&service);
        assert!(
            ports.contains(&port_of(&listen)),
            "{name}: listens on {listen} but publishes/exposes {ports:?}"
        );
        // The same port as the default, so the documentation and the image agree.
        let (section, key) = listen_setting(&sub);
        let default = defaults()[section][key]
            .as_str()
            .expect("string")
            .to_owned();
        assert_eq!(
            port_of(&listen),
            port_of(&default),
            "{name}: port differs from {section}.{key}"
        );
    }
    let all: BTreeSet<String> = ["sandbox", "gateway", "worker", "reconciler"]
        .map(String::from)
        .into();
    assert_eq!(seen, all, "compose must run every long-running process");
}

/// Host ports a service publishes (`ports: ["host:container"]`), by container port.
fn published_ports(service: &Value) -> BTreeSet<u16> {
    service["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| port_of(p.as_str().expect("port mapping as a string")))
        .collect()
}

#[test]
fn the_gateway_publishes_its_callback_port_and_keeps_its_ops_port_inside() {
    let c = compose();
    let gateway = &services(&c)["gateway"];
    let callbacks = setting_of(gateway, "gateway", "listen");
    let ops = setting_of(gateway, "gateway", "ops_listen");
    assert!(
        callbacks.starts_with("0.0.0.0:"),
        "callbacks on {callbacks}"
    );
    assert_ne!(port_of(&callbacks), port_of(&ops), "one port for both");
    let published = published_ports(gateway);
    assert!(published.contains(&port_of(&callbacks)), "{published:?}");
    assert!(
        !published.contains(&port_of(&ops)),
        "the gateway's ops port is published on the host: {published:?}"
    );
    assert_eq!(
        port_of(&callbacks),
        port_of(defaults()["gateway"]["listen"].as_str().expect("string")),
        "gateway.listen's port differs from the default"
    );
}

#[test]
fn workers_scale() {
    let c = compose();
    let worker = &services(&c)["worker"];
    assert!(
        worker["ports"].is_null(),
        "a fixed host port stops --scale worker=3"
    );
    assert!(
        worker["container_name"].is_null(),
        "a container name stops --scale"
    );
    assert_eq!(subcommand(worker).as_deref(), Some("worker"));
}

#[test]
fn the_stack_has_its_backing_services_configured() {
    let c = compose();
    let s = services(&c);
    let rabbit = serde_yaml::to_string(&s["rabbitmq"]).expect("YAML");
    assert!(
        rabbit.contains("rabbitmq_prometheus"),
        "RabbitMQ without its prometheus plugin"
    );
    assert!(
        rabbit.contains("-management"),
        "RabbitMQ without the management plugin"
    );
    let redis = serde_yaml::to_string(&s["redis"]["command"]).expect("YAML");
    assert!(
        redis.contains("--appendonly") && redis.contains("yes"),
        "Redis without AOF"
    );
    // The payfleet URLs point at those services.
    let gateway_env = env(&s["gateway"]);
    assert!(gateway_env["PAYFLEET__AMQP__URL"].contains("@rabbitmq:5672/"));
    assert!(gateway_env["PAYFLEET__REDIS__URL"].contains("//redis:6379/"));
    let sandbox_env = env(&s["sandbox"]);
    let callback = &sandbox_env["PAYFLEET__SANDBOX__ECOMMPAY_CALLBACK_URL"];
    let gateway_port = port_of(&setting_of(&s["gateway"], "gateway", "listen"));
    assert!(
        callback.starts_with(&format!("http://gateway:{gateway_port}/")),
        "sandbox calls back to {callback}"
    );
    let base = &env(&s["worker"])["PAYFLEET__ECOMMPAY__BASE_URL"];
    let sandbox_port = port_of(&listen_of(&s["sandbox"], "sandbox"));
    assert_eq!(base, &format!("http://sandbox:{sandbox_port}"));
}

/// (job, host, port) of every scrape target in prometheus/prometheus.yml.
fn scrape_targets() -> Vec<(String, String, u16)> {
    let p = yaml("prometheus/prometheus.yml");
    let mut out = Vec::new();
    for job in p["scrape_configs"].as_sequence().expect("scrape_configs") {
        let name = job["job_name"].as_str().expect("job_name").to_owned();
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            for t in sc["targets"].as_sequence().expect("targets") {
                let (host, port) = t
                    .as_str()
                    .expect("target")
                    .rsplit_once(':')
                    .expect("host:port");
                out.push((name.clone(), host.to_owned(), port.parse().expect("port")));
            }
        }
        for dns in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            let port = dns["port"].as_u64().expect("dns_sd port") as u16;
            for n in dns["names"].as_sequence().expect("names") {
                out.push((name.clone(), n.as_str().expect("name").to_owned(), port));
            }
        }
    }
    out
}

#[test]
fn prometheus_scrapes_every_process_where_it_listens() {
    let c = compose();
    let s = services(&c);
    let targets = scrape_targets();
    let mut scraped = BTreeSet::new();
    for (job, host, port) in &targets {
        let service = s
            .get(host)
            .unwrap_or_else(|| panic!("job {job} scrapes {host}, which is no compose service"));
        match subcommand(service) {
            Some(sub) => {
                assert_eq!(
                    job,
                    &format!("payfleet-{sub}"),
                    "dashboards select job=payfleet-<process>"
                );
                assert_eq!(
                    *port,
                    port_of(&listen_of(service, &sub)),
                    "job {job} scrapes {host}:{port}, not where it listens"
                );
                scraped.insert(sub);
            }
            None => {
                assert_eq!(host, "rabbitmq", "job {job}");
                assert_eq!(*port, 15692, "RabbitMQ's prometheus plugin port");
            }
        }
    }
    assert_eq!(
        scraped.len(),
        4,
        "every payfleet process is scraped: {targets:?}"
    );
    // Scaled workers are found by DNS, not a fixed list.
    let p = yaml("prometheus/prometheus.yml");
    let worker_job = p["scrape_configs"]
        .as_sequence()
        .expect("jobs")
        .iter()
        .find(|j| j["job_name"] == "payfleet-worker")
        .expect("worker job");
    assert!(worker_job["dns_sd_configs"].is_sequence(), "workers by DNS");
}

#[test]
fn prometheus_and_grafana_get_their_files() {
    let c = compose();
    let s = services(&c);
    let prometheus = &s["prometheus"];
    let volumes = serde_yaml::to_string(&prometheus["volumes"]).expect("YAML");
    assert!(
        volumes.contains("./prometheus:/etc/prometheus/payfleet"),
        "{volumes}"
    );
    let command = serde_yaml::to_string(&prometheus["command"]).expect("YAML");
    assert!(command.contains("--config.file=/etc/prometheus/payfleet/prometheus.yml"));
    let prom_port = container_ports(prometheus);

    let grafana = serde_yaml::to_string(&s["grafana"]["volumes"]).expect("YAML");
    assert!(
        grafana.contains("./grafana/provisioning:/etc/grafana/provisioning"),
        "{grafana}"
    );
    let dashboards = yaml("grafana/provisioning/dashboards/payfleet.yml");
    let path = dashboards["providers"][0]["options"]["path"]
        .as_str()
        .expect("dashboards path");
    assert!(
        grafana.contains(&format!("./grafana/dashboards:{path}")),
        "Grafana loads dashboards from {path}, compose mounts: {grafana}"
    );
    let datasources = yaml("grafana/provisioning/datasources/prometheus.yml");
    let url = datasources["datasources"][0]["url"].as_str().expect("url");
    let uid = datasources["datasources"][0]["uid"].as_str().expect("uid");
    assert!(url.starts_with("http://prometheus:"), "{url}");
    assert!(
        prom_port.contains(&port_of(url)),
        "datasource {url}, Prometheus on {prom_port:?}"
    );
    // The dashboards use that datasource.
    for file in [
        "grafana/dashboards/fleet.json",
        "grafana/dashboards/providers.json",
    ] {
        let text = repo(file);
        let d: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
        for panel in d["panels"].as_array().expect("panels") {
            if panel["type"] != "row" {
                assert_eq!(
                    panel["datasource"]["uid"], uid,
                    "{file}: {}",
                    panel["title"]
                );
            }
        }
    }
}

/// What a published port is bound to unless the user says otherwise.
const BIND: &str = "${PAYFLEET_BIND:-127.0.0.1}:";

#[test]
fn published_ports_listen_on_localhost_unless_the_user_says_otherwise() {
    let c = compose();
    let mut published = 0;
    for (name, service) in services(&c) {
        for p in service["ports"].as_sequence().into_iter().flatten() {
            let p = p.as_str().expect("port mapping as a string");
            assert!(
                p.starts_with(BIND),
                "{name}: {p} is published on every interface"
            );
            published += 1;
        }
    }
    assert!(published >= 8, "only {published} published ports found");
    assert!(repo("docker-compose.yml").contains("PAYFLEET_BIND=0.0.0.0"));
}

#[test]
fn every_payfleet_service_is_checked_by_payfleet_health_on_its_ops_port() {
    let c = compose();
    for (name, service) in services(&c) {
        let Some(sub) = subcommand(&service) else {
            continue;
        };
        let test: Vec<&str> = service["healthcheck"]["test"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name}: no healthcheck"))
            .iter()
            .map(|v| v.as_str().expect("healthcheck word"))
            .collect();
        let port = port_of(&listen_of(&service, &sub)).to_string();
        assert_eq!(test, ["CMD", "payfleet", "health", &port], "{name}");
    }
    // The image has what the healthchecks run, and nothing else to run them with.
    let dockerfile = repo("Dockerfile");
    assert!(dockerfile.contains(r#"ENTRYPOINT ["payfleet"]"#));
    assert!(!dockerfile.contains("curl") && !dockerfile.contains("wget"));
    let s = services(&c);
    for dependent in ["worker", "reconciler"] {
        assert_eq!(
            s[dependent]["depends_on"]["sandbox"]["condition"], "service_healthy",
            "{dependent}"
        );
    }
}

#[test]
fn prometheus_sends_its_alerts_to_the_alertmanager_service() {
    let c = compose();
    let s = services(&c);
    let p = yaml("prometheus/prometheus.yml");
    let targets: Vec<&str> = p["alerting"]["alertmanagers"]
        .as_sequence()
        .expect("alerting.alertmanagers")
        .iter()
        .flat_map(|a| a["static_configs"].as_sequence().expect("static_configs"))
        .flat_map(|sc| sc["targets"].as_sequence().expect("targets"))
        .map(|t| t.as_str().expect("target"))
        .collect();
    assert_eq!(targets, ["alertmanager:9093"]);
    let alertmanager = &s["alertmanager"];
    assert!(container_ports(alertmanager).contains(&9093));
    let volumes = serde_yaml::to_string(&alertmanager["volumes"]).expect("YAML");
    let command = serde_yaml::to_string(&alertmanager["command"]).expect("YAML");
    let mounted = "./prometheus/alertmanager.yml:/etc/alertmanager/payfleet/alertmanager.yml";
    assert!(volumes.contains(mounted), "{volumes}");
    assert!(
        command.contains("--config.file=/etc/alertmanager/payfleet/alertmanager.yml"),
        "{command}"
    );
    // Its route ends at a receiver it defines, which the user replaces.
    let config = yaml("prometheus/alertmanager.yml");
    let receiver = config["route"]["receiver"]
        .as_str()
        .expect("route.receiver");
    let receivers: Vec<&str> = config["receivers"]
        .as_sequence()
        .expect("receivers")
        .iter()
        .map(|r| r["name"].as_str().expect("receiver name"))
        .collect();
    assert!(
        receivers.contains(&receiver),
        "{receiver} not in {receivers:?}"
    );
}

#[test]
fn the_header_exports_every_variable_compose_requires() {
    let text = repo("docker-compose.yml");
    let required: BTreeSet<&str> = text
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once(":?").map(|(name, _)| name))
        .filter(|name| !name.contains('}'))
        .collect();
    assert!(required.contains("ECOMMPAY_SECRET_KEY"), "{required:?}");
    let exported: BTreeSet<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("export "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|assignment| assignment.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(required, exported, "the header's export line");
}
