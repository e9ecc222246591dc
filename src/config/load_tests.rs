use super::*;
use secrecy::ExposeSecret;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_load_and_environment_overrides() {
    let s = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__AMQP__PREFETCH", "64"),
            ("PAYFLEET__WORKER__RETRY_DELAYS_MS", "10,20"),
            ("PAYFLEET__ECOMMPAY__SECRET_KEY", "k"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert_eq!(s.amqp.prefetch, 64);
    assert_eq!(s.worker.retry_delays_ms, vec![10, 20]);
    assert_eq!(s.secrets.ecommpay().unwrap().expose_secret(), "k");
}

#[test]
fn rate_limits_and_accounts_come_from_the_environment() {
    let s = Settings::load_from(
        None,
        env(&[
            (
                "PAYFLEET__RATE_LIMIT__LIMITS__ECOMMPAY__DEFAULT__ALL__PER_SECOND",
                "50",
            ),
            (
                "PAYFLEET__RATE_LIMIT__LIMITS__ECOMMPAY__DEFAULT__ALL__BURST",
                "5",
            ),
            ("PAYFLEET__ECOMMPAY__ACCOUNTS__KZ_2__PROJECT_ID", "199"),
            ("PAYFLEET__ECOMMPAY__ACCOUNTS__KZ_2__SECRET_KEY", "k2"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    let limit = s.rate_limit.limits["ecommpay"]["default"]["all"];
    assert_eq!((limit.per_second, limit.burst), (50, 5));
    assert_eq!(s.ecommpay.accounts["kz_2"].project_id, 199);
    let key = s.secrets.ecommpay_account("kz_2").unwrap();
    assert_eq!(key.expose_secret(), "k2");
    let e = s.secrets.ecommpay_account("other").unwrap_err().to_string();
    assert!(
        e.contains("PAYFLEET__ECOMMPAY__ACCOUNTS__OTHER__SECRET_KEY"),
        "{e}"
    );
    let e = Settings::load_from(
        None,
        env(&[
            (
                "PAYFLEET__RATE_LIMIT__LIMITS__ECOMMPAY__DEFAULT__ALL__PER_SECOND",
                "0",
            ),
            (
                "PAYFLEET__RATE_LIMIT__LIMITS__ECOMMPAY__DEFAULT__ALL__BURST",
                "5",
            ),
        ]),
        Needs::Settings,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("rate_limit.limits.ecommpay.default.all"), "{e}");
}

#[test]
fn a_malformed_setting_is_named() {
    let e = Settings::load_from(
        None,
        env(&[("PAYFLEET__AMQP__PREFETCH", "lots")]),
        Needs::Settings,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("amqp.prefetch"), "{e}");
}

#[test]
fn gateway_limits_come_from_the_environment_and_zero_is_refused() {
    let s = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__GATEWAY__OPS_LISTEN", "0.0.0.0:9101"),
            ("PAYFLEET__GATEWAY__MAX_CONNECTIONS", "2000"),
            ("PAYFLEET__GATEWAY__HEADER_READ_TIMEOUT_MS", "2500"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert_eq!(s.gateway.ops_listen.to_string(), "0.0.0.0:9101");
    assert_eq!(s.gateway.max_connections, 2000);
    assert_eq!(s.gateway.header_read_timeout_ms, 2500);
    for (var, setting) in [
        (
            "PAYFLEET__GATEWAY__MAX_CONNECTIONS",
            "gateway.max_connections",
        ),
        (
            "PAYFLEET__GATEWAY__IDLE_TIMEOUT_MS",
            "gateway.idle_timeout_ms",
        ),
        (
            "PAYFLEET__GATEWAY__BODY_TIMEOUT_MS",
            "gateway.body_timeout_ms",
        ),
    ] {
        let e = Settings::load_from(None, env(&[(var, "0")]), Needs::Settings)
            .unwrap_err()
            .to_string();
        assert!(e.contains(setting), "{e}");
    }
}

#[test]
fn a_missing_secret_names_its_variable() {
    let s = Settings::load_from(None, HashMap::new(), Needs::Settings).unwrap();
    let e = s.secrets.ecommpay().unwrap_err().to_string();
    assert!(e.contains("PAYFLEET__ECOMMPAY__SECRET_KEY"), "{e}");
}

#[test]
fn epay_secrets_come_only_from_the_environment() {
    let s = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__EPAY__CLIENT_SECRET", "cs"),
            ("PAYFLEET__EPAY__TERMINAL_ID", "t-1"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert_eq!(s.secrets.epay().unwrap().expose_secret(), "cs");
    assert_eq!(s.epay.terminal_id, "t-1");
    let e = s.secrets.epay_fingerprint().unwrap_err().to_string();
    assert!(e.contains("PAYFLEET__EPAY__FINGERPRINT_KEY"), "{e}");
}

#[test]
fn every_problem_is_named_at_once() {
    let e = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__AMQP__PREFETCH", "lots"),
            ("PAYFLEET__WORKER__LEASE_MS", "soon"),
            ("PAYFLEET__EPAY__ENABLED", "maybe"),
            ("PAYFLEET__ECOMMPAY__ACCOUNTS__KZ_2__PROJECT_ID", "199"),
        ]),
        Needs::ProviderSecrets,
    )
    .unwrap_err()
    .to_string();
    for named in [
        "amqp.prefetch: ",
        "worker.lease_ms: ",
        "epay.enabled: ",
        "PAYFLEET__ECOMMPAY__SECRET_KEY",
        "PAYFLEET__EPAY__CLIENT_SECRET",
        "PAYFLEET__EPAY__FINGERPRINT_KEY",
    ] {
        assert!(e.contains(named), "{named} in {e}");
    }
    // Parsed, but wrong: each check is named too, with the secrets.
    let e = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__AMQP__PREFETCH", "0"),
            ("PAYFLEET__GATEWAY__MAX_CONNECTIONS", "0"),
            ("PAYFLEET__EPAY__TERM_URL", "nope"),
            ("PAYFLEET__ECOMMPAY__ACCOUNTS__KZ_2__PROJECT_ID", "199"),
            ("PAYFLEET__EPAY__CLIENT_SECRET", "cs"),
        ]),
        Needs::ProviderSecrets,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "configuration: amqp.prefetch must be at least 1; \
             gateway.max_connections must be between 1 and 1000000; \
             epay.term_url is not a URL: \"nope\"; \
             ecommpay.secret_key is not set (set the environment variable PAYFLEET__ECOMMPAY__SECRET_KEY); \
             the secret key of ecommpay.accounts.kz_2 is not set (set the environment variable PAYFLEET__ECOMMPAY__ACCOUNTS__KZ_2__SECRET_KEY); \
             epay.fingerprint_key is not set (set the environment variable PAYFLEET__EPAY__FINGERPRINT_KEY)"
    );
}

#[test]
fn a_disabled_provider_needs_no_secret() {
    let ecommpay_only = env(&[
        ("PAYFLEET__EPAY__ENABLED", "false"),
        ("PAYFLEET__ECOMMPAY__SECRET_KEY", "k"),
    ]);
    let s = Settings::load_from(None, ecommpay_only, Needs::ProviderSecrets).unwrap();
    assert!(!s.epay.enabled && s.ecommpay.enabled);
    // Without epay the fingerprint key comes from the ECommPay key: the same on
    // every worker, another for another key, never the key itself.
    let key = s.fingerprint_key().unwrap();
    let again = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__EPAY__ENABLED", "false"),
            ("PAYFLEET__ECOMMPAY__SECRET_KEY", "k"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert_eq!(
        again.fingerprint_key().unwrap().expose_secret(),
        key.expose_secret()
    );
    assert_ne!(key.expose_secret(), "k");
    let other = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__EPAY__ENABLED", "false"),
            ("PAYFLEET__ECOMMPAY__SECRET_KEY", "k2"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert_ne!(
        other.fingerprint_key().unwrap().expose_secret(),
        key.expose_secret()
    );
    // A fingerprint key that is set is used, epay or not.
    let set = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__EPAY__ENABLED", "false"),
            ("PAYFLEET__EPAY__FINGERPRINT_KEY", "fp"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert_eq!(set.fingerprint_key().unwrap().expose_secret(), "fp");
    let epay_only = env(&[
        ("PAYFLEET__ECOMMPAY__ENABLED", "false"),
        ("PAYFLEET__EPAY__CLIENT_SECRET", "cs"),
        ("PAYFLEET__EPAY__FINGERPRINT_KEY", "fp"),
    ]);
    assert!(Settings::load_from(None, epay_only, Needs::ProviderSecrets).is_ok());
    let none = env(&[
        ("PAYFLEET__ECOMMPAY__ENABLED", "false"),
        ("PAYFLEET__EPAY__ENABLED", "false"),
    ]);
    let e = Settings::load_from(None, none, Needs::ProviderSecrets)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no provider is enabled"), "{e}");
}

#[test]
fn settings_alone_need_no_secret() {
    assert!(Settings::load_from(None, HashMap::new(), Needs::Settings).is_ok());
}

#[test]
fn a_bad_url_is_named() {
    let e = Settings::load_from(
        None,
        env(&[("PAYFLEET__ECOMMPAY__BASE_URL", "nope")]),
        Needs::Settings,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ecommpay.base_url"), "{e}");
}

#[test]
fn redis_takes_one_url_or_a_clusters_nodes_and_never_shows_a_password() {
    let s = Settings::load_from(None, HashMap::new(), Needs::Settings).unwrap();
    assert_eq!(s.redis.url.expose(), ["redis://127.0.0.1:6379/0"]);
    assert!(!s.redis.cluster, "one Redis by default");
    let nodes = "redis://:pw1@h1:7001,redis://:pw1@h2:7002";
    let s = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__REDIS__URL", nodes),
            ("PAYFLEET__REDIS__CLUSTER", "true"),
        ]),
        Needs::Settings,
    )
    .unwrap();
    assert!(s.redis.cluster);
    assert_eq!(s.redis.url.expose().len(), 2);
    assert!(!format!("{:?} {}", s.redis, s.redis.url).contains("pw1"));
    // Several without `cluster = true`: named with the other problems.
    let e = Settings::load_from(
        None,
        env(&[
            ("PAYFLEET__REDIS__URL", nodes),
            ("PAYFLEET__AMQP__PREFETCH", "0"),
        ]),
        Needs::Settings,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("amqp.prefetch must be at least 1"), "{e}");
    assert!(e.contains("redis.url lists 2 URLs") && e.contains("redis.cluster = true"));
    assert!(!e.contains("pw1"), "{e}");
    let e = Settings::load_from(
        None,
        env(&[("PAYFLEET__REDIS__URL", "redis://:pw1@h:port")]),
        Needs::Settings,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("redis.url") && e.contains("not a Redis URL"),
        "{e}"
    );
    assert!(!e.contains("pw1"), "{e}");
    // A file may list them as an array.
    let file = std::env::temp_dir().join(format!("pf-redis-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        "[redis]\nurl = [\"redis://h1:7001\", \"redis://h2:7002\"]\ncluster = true\n",
    )
    .unwrap();
    let s = Settings::load_from(Some(&file), HashMap::new(), Needs::Settings);
    std::fs::remove_file(&file).unwrap();
    let urls = s.unwrap().redis.url;
    assert_eq!(urls.expose(), ["redis://h1:7001", "redis://h2:7002"]);
}
