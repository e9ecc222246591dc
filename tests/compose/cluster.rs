//! The `cluster` profile: three RabbitMQ nodes that form one cluster, a Redis Cluster of
//! six nodes made once by a one-shot init, and a fleet whose settings name every node,
//! all started in an order that works on a first start and on a restart. The
//! single-node services stay outside every profile, so `docker compose up` is unchanged.

use super::{BIND, compose, env, repo, services, subcommand};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

const PROFILE: &str = "cluster";

fn profiles(service: &Value) -> Vec<&str> {
    service["profiles"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| p.as_str().expect("profile name"))
        .collect()
}

/// The services of the cluster profile, by name.
fn cluster_services() -> BTreeMap<String, Value> {
    services(&compose())
        .into_iter()
        .filter(|(_, s)| profiles(s).contains(&PROFILE))
        .collect()
}

/// The profile's services whose name starts with `prefix` and a node number.
fn nodes(prefix: &str) -> BTreeMap<String, Value> {
    cluster_services()
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(prefix)
                .is_some_and(|n| n.parse::<u8>().is_ok())
        })
        .collect()
}

fn yaml_text(v: &Value) -> String {
    serde_yaml::to_string(v).expect("YAML")
}

/// A service's command as one text: its words joined by spaces.
fn command(service: &Value) -> String {
    match &service["command"] {
        Value::String(s) => s.clone(),
        Value::Sequence(words) => words
            .iter()
            .map(|w| w.as_str().expect("command word"))
            .collect::<Vec<_>>()
            .join(" "),
        other => panic!("unexpected command {other:?}"),
    }
}

fn depends_on(service: &Value, on: &str) -> String {
    service["depends_on"][on]["condition"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The host of every URL in a comma-separated list, with its port.
fn hosts(urls: &str) -> BTreeSet<(String, u16)> {
    urls.split(',')
        .map(|url| {
            let rest = url.split_once("://").expect("scheme").1;
            let authority = rest.split('/').next().expect("authority");
            let host_port = authority.rsplit('@').next().expect("host");
            let (host, port) = host_port.rsplit_once(':').expect("host:port");
            (host.to_owned(), port.parse().expect("port"))
        })
        .collect()
}

#[test]
fn the_profile_adds_three_rabbitmq_nodes_six_redis_nodes_and_a_fleet_on_them() {
    let all = services(&compose());
    let cluster: BTreeSet<String> = cluster_services().into_keys().collect();
    let expected: BTreeSet<String> = [
        "rabbitmq-1",
        "rabbitmq-2",
        "rabbitmq-3",
        "redis-1",
        "redis-2",
        "redis-3",
        "redis-4",
        "redis-5",
        "redis-6",
        "redis-cluster-init",
        "sandbox-cluster",
        "gateway-cluster",
        "worker-cluster",
        "reconciler-cluster",
    ]
    .map(String::from)
    .into();
    assert_eq!(cluster, expected);
    // Everything else is the single-node stack, which `docker compose up` starts: no
    // other profile, and none of it waits for a cluster service.
    for (name, service) in &all {
        if cluster.contains(name) {
            assert_eq!(profiles(service), [PROFILE], "{name}");
            continue;
        }
        assert!(profiles(service).is_empty(), "{name} is in a profile");
        for dep in service["depends_on"].as_mapping().into_iter().flatten() {
            let dep = dep.0.as_str().expect("dependency");
            assert!(!cluster.contains(dep), "{name} depends on {dep}");
        }
    }
    // The same engines as the single-node services.
    for (name, node) in nodes("rabbitmq-") {
        assert_eq!(node["image"], all["rabbitmq"]["image"], "{name}");
    }
    for (name, node) in nodes("redis-") {
        assert_eq!(node["image"], all["redis"]["image"], "{name}");
    }
    assert_eq!(
        cluster_services()["redis-cluster-init"]["image"],
        all["redis"]["image"]
    );
}

#[test]
fn rabbitmq_nodes_form_one_cluster_with_a_cookie_from_the_environment() {
    let rabbits = nodes("rabbitmq-");
    assert_eq!(rabbits.len(), 3);
    let conf = repo("rabbitmq/cluster.conf");
    assert!(conf.contains("peer_discovery_backend = rabbit_peer_discovery_classic_config"));
    assert!(conf.contains("cluster_partition_handling = pause_minority"));
    let listed: BTreeSet<&str> = conf
        .lines()
        .filter(|l| l.starts_with("cluster_formation.classic_config.nodes."))
        .map(|l| l.split_once('=').expect("key = value").1.trim())
        .collect();
    let mut volumes = BTreeSet::new();
    for (name, node) in &rabbits {
        // The node name is rabbit@<hostname>: fixed, listed, and reachable by DNS.
        assert_eq!(node["hostname"].as_str(), Some(name.as_str()));
        assert!(listed.contains(format!("rabbit@{name}").as_str()), "{name}");
        let mounts: Vec<&str> = node["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .map(|v| v.as_str().expect("volume"))
            .collect();
        assert!(
            mounts.contains(&"./rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro"),
            "{name}: {mounts:?}"
        );
        let data = mounts
            .iter()
            .find(|m| m.ends_with(":/var/lib/rabbitmq"))
            .unwrap_or_else(|| panic!("{name} has no data volume"));
        assert!(volumes.insert(data.to_owned()), "{name} shares {data}");
        let test = yaml_text(&node["healthcheck"]["test"]);
        assert!(test.contains("rabbitmq-diagnostics") && test.contains("ping"));
        // The cookie comes from the user's environment, never from this repository.
        assert_eq!(
            env(node)["ERLANG_COOKIE"],
            "${RABBITMQ_ERLANG_COOKIE:-}",
            "{name}"
        );
        let script = command(node);
        assert!(
            script.contains(r#"-z "$$ERLANG_COOKIE""#) && script.contains("exit 78"),
            "{name} starts without a cookie"
        );
        assert!(
            script.contains("/var/lib/rabbitmq/.erlang.cookie") && script.contains("chmod 400"),
            "{name}: {script}"
        );
        assert!(script.contains("exec docker-entrypoint.sh rabbitmq-server"));
    }
    assert_eq!(listed.len(), rabbits.len(), "{listed:?}");
    // The others start once rabbitmq-1 answers, so they join it on a first start.
    for name in ["rabbitmq-2", "rabbitmq-3"] {
        assert_eq!(depends_on(&rabbits[name], "rabbitmq-1"), "service_healthy");
    }
    assert!(rabbits["rabbitmq-1"]["depends_on"].is_null());
    assert!(repo("docker-compose.yml").contains("export RABBITMQ_ERLANG_COOKIE="));
}

#[test]
fn redis_nodes_announce_their_names_and_keep_their_data() {
    let redis = nodes("redis-");
    assert_eq!(redis.len(), 6);
    let mut volumes = BTreeSet::new();
    for (name, node) in &redis {
        assert_eq!(node["hostname"].as_str(), Some(name.as_str()));
        let script = command(node);
        for flag in [
            "--cluster-enabled yes",
            r#"--cluster-announce-hostname "$$HOSTNAME""#,
            "--cluster-preferred-endpoint-type hostname",
            "--appendonly yes",
            "exec docker-entrypoint.sh redis-server",
        ] {
            assert!(script.contains(flag), "{name} lacks {flag}: {script}");
        }
        let data = yaml_text(&node["volumes"]);
        assert!(data.contains(":/data"), "{name}");
        assert!(volumes.insert(data.clone()), "{name} shares {data}");
        assert!(
            node["ports"].is_null(),
            "{name}: its announced name is not the host's"
        );
        let test = yaml_text(&node["healthcheck"]["test"]);
        assert!(
            test.contains("redis-cli") && test.contains("ping"),
            "{name}"
        );
    }
}

#[test]
fn the_redis_cluster_is_created_once_by_a_one_shot_init() {
    let init = &cluster_services()["redis-cluster-init"];
    assert_eq!(init["restart"].as_str(), Some("no"), "one-shot");
    assert!(init["ports"].is_null() && init["healthcheck"].is_null());
    let script = command(init);
    for (name, _) in nodes("redis-") {
        assert_eq!(depends_on(init, &name), "service_healthy", "{name}");
        assert!(
            script.contains(&format!(" {name}")),
            "{name} not in the create"
        );
    }
    for part in [
        "--cluster create",
        "--cluster-replicas 1",
        "--cluster-yes",
        // Idempotent: a node that knows others is in a cluster already, whose nodes
        // are only introduced again at their current addresses.
        r#"if [ "$$known" = 1 ]"#,
        r#"cluster meet "$$ip" 6379"#,
        // Done only once the slots are served.
        "cluster_state:ok' && exit 0",
        "exit 1",
    ] {
        assert!(script.contains(part), "{part}: {script}");
    }
}

#[test]
fn the_cluster_fleet_names_every_node_and_its_own_sandbox_and_gateway() {
    let cluster = cluster_services();
    let rabbits: BTreeSet<(String, u16)> =
        nodes("rabbitmq-").into_keys().map(|n| (n, 5672)).collect();
    let redis: BTreeSet<(String, u16)> = nodes("redis-").into_keys().map(|n| (n, 6379)).collect();
    let single = ["rabbitmq", "redis", "sandbox", "gateway"];
    let mut fleet = BTreeSet::new();
    for (name, service) in &cluster {
        let Some(sub) = subcommand(service) else {
            continue;
        };
        fleet.insert(sub.clone());
        assert_eq!(name, &format!("{sub}-cluster"));
        let vars = env(service);
        for value in vars.values() {
            for host in single {
                assert!(
                    !value.contains(&format!("//{host}:")) && !value.contains(&format!("@{host}:")),
                    "{name} reaches the single-node {host}: {value}"
                );
            }
        }
        if sub == "sandbox" {
            let callback = &vars["PAYFLEET__SANDBOX__ECOMMPAY_CALLBACK_URL"];
            assert!(
                callback.starts_with("http://gateway-cluster:8080/"),
                "{callback}"
            );
            continue;
        }
        assert_eq!(hosts(&vars["PAYFLEET__AMQP__URL"]), rabbits, "{name}");
        assert_eq!(hosts(&vars["PAYFLEET__REDIS__URL"]), redis, "{name}");
        assert_eq!(vars["PAYFLEET__REDIS__CLUSTER"], "true", "{name}");
        assert_eq!(
            vars["PAYFLEET__AMQP__QUORUM_GROUP_SIZE"],
            rabbits.len().to_string(),
            "{name}"
        );
        assert_eq!(
            vars["PAYFLEET__ECOMMPAY__BASE_URL"],
            "http://sandbox-cluster:8090"
        );
        // It starts on a formed cluster, whose slots are all served.
        for (node, _) in &rabbits {
            assert_eq!(depends_on(service, node), "service_healthy", "{name}");
        }
        assert_eq!(
            depends_on(service, "redis-cluster-init"),
            "service_completed_successfully",
            "{name}"
        );
        if sub != "gateway" {
            assert_eq!(depends_on(service, "sandbox-cluster"), "service_healthy");
        }
    }
    let all: BTreeSet<String> = ["sandbox", "gateway", "worker", "reconciler"]
        .map(String::from)
        .into();
    assert_eq!(fleet, all, "the cluster runs every long-running process");
    let worker = &cluster["worker-cluster"];
    assert!(worker["ports"].is_null() && worker["container_name"].is_null());
    assert_eq!(env(worker)["PAYFLEET__RECONCILER__EMBEDDED"], "false");
}

#[test]
fn every_host_port_is_on_localhost_and_used_once() {
    let mut seen = BTreeMap::new();
    let mut cluster_ports = 0;
    for (name, service) in services(&compose()) {
        for p in service["ports"].as_sequence().into_iter().flatten() {
            let p = p.as_str().expect("port mapping as a string");
            let mapping = p
                .strip_prefix(BIND)
                .unwrap_or_else(|| panic!("{name}: {p} is published on every interface"));
            let (host, _container) = mapping.split_once(':').expect("host:container");
            if let Some(other) = seen.insert(host.to_owned(), name.clone()) {
                panic!("{name} and {other} both publish host port {host}");
            }
            if profiles(&service).contains(&PROFILE) {
                cluster_ports += 1;
            }
        }
    }
    assert!(cluster_ports >= 8, "only {cluster_ports} cluster ports");
}

#[test]
fn no_secret_is_written_in_the_file() {
    for (name, service) in cluster_services() {
        for (var, value) in env(&service) {
            let secret = ["SECRET", "KEY", "COOKIE", "PASSWORD"]
                .iter()
                .any(|w| var.contains(w));
            if secret {
                assert!(
                    value.starts_with("${") && value.ends_with('}'),
                    "{name}: {var} is written in the file"
                );
            }
        }
    }
    assert!(!repo("rabbitmq/cluster.conf").contains("cookie"));
}
