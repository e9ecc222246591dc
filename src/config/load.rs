//! Loading and checking the settings: defaults, an optional file, the environment.

use super::secrets::account_secret;
use super::{
    AmqpSettings, BreakerSettings, ConfigError, DEFAULTS, ENV_PREFIX, EcommpaySettings,
    EpaySettings, GatewaySettings, LIST_KEYS, RateLimitSettings, ReconcilerSettings,
    ReconnectSettings, RedisSettings, Secrets, Settings, TelemetrySettings, WorkerSettings,
};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;

/// What a process needs of the configuration besides valid settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The settings alone (`payfleet publish`, the tools, which bring their own).
    Settings,
    /// The secrets of every enabled provider too (worker, gateway, reconciler).
    ProviderSecrets,
}

impl Settings {
    /// Loads from the process environment.
    pub fn load(file: Option<&Path>, needs: Needs) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars().collect(), needs)
    }

    /// Loads with an explicit environment (tests use this). Every problem is reported
    /// at once, in one error: a start names everything there is to fix.
    pub fn load_from(
        file: Option<&Path>,
        env: HashMap<String, String>,
        needs: Needs,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path));
        }
        let secret_suffixes = [
            Secrets::ECOMMPAY.1,
            Secrets::EPAY.1,
            Secrets::EPAY_FINGERPRINT.1,
        ];
        let plain_env: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| {
                k.starts_with(&format!("{ENV_PREFIX}__"))
                    && !secret_suffixes.iter().any(|s| *k == &Secrets::env_name(s))
                    && account_secret(k).is_none()
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut env_source = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .try_parsing(true)
            .source(Some(plain_env));
        for key in LIST_KEYS {
            env_source = env_source.with_list_parse_key(key);
        }
        let built = builder
            .add_source(env_source)
            .build()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let secret = |suffix: &str| {
            env.get(&Secrets::env_name(suffix))
                .filter(|v| !v.is_empty())
                .map(|v| SecretString::from(v.clone()))
        };
        let secrets = Secrets {
            ecommpay_secret_key: secret(Secrets::ECOMMPAY.1),
            epay_client_secret: secret(Secrets::EPAY.1),
            epay_fingerprint_key: secret(Secrets::EPAY_FINGERPRINT.1),
            ecommpay_accounts: env
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .filter_map(|(k, v)| account_secret(k).map(|a| (a, SecretString::from(v.clone()))))
                .collect(),
        };
        let (settings, mut problems) = match built.clone().try_deserialize::<Settings>() {
            Ok(settings) => {
                let problems = settings.problems();
                (Some(settings), problems)
            }
            Err(whole) => (None, section_problems(&built, whole)),
        };
        if needs == Needs::ProviderSecrets {
            // From the merged layers, so that the secrets are named even when some
            // other setting did not parse (that one is reported above).
            let enabled = |provider: &str| {
                built
                    .get_bool(&format!("{provider}.enabled"))
                    .unwrap_or(true)
            };
            let accounts = settings
                .as_ref()
                .map(|s| s.ecommpay.accounts.keys().cloned().collect())
                .unwrap_or_default();
            problems.extend(secrets.problems(enabled("ecommpay"), enabled("epay"), accounts));
        }
        match (settings, problems.is_empty()) {
            (Some(mut settings), true) => {
                settings.secrets = secrets;
                Ok(settings)
            }
            _ => Err(ConfigError::Several(problems)),
        }
    }

    /// Every problem of the settings, each naming its setting.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut at_least_1 = |setting: &str, value: u64| {
            if value == 0 {
                out.push(format!("{setting} must be at least 1"));
            }
        };
        let g = &self.gateway;
        for (setting, value) in [
            ("amqp.prefetch", u64::from(self.amqp.prefetch)),
            ("worker.hold_ms", self.worker.hold_ms),
            ("worker.holds_refresh_ms", self.worker.holds_refresh_ms),
            ("reconnect.min_ms", self.reconnect.min_ms),
            ("worker.max_in_flight", self.worker.max_in_flight as u64),
            ("worker.max_attempts", u64::from(self.worker.max_attempts)),
            ("gateway.header_read_timeout_ms", g.header_read_timeout_ms),
            ("gateway.body_timeout_ms", g.body_timeout_ms),
            ("gateway.idle_timeout_ms", g.idle_timeout_ms),
            ("gateway.max_body_bytes", g.max_body_bytes as u64),
        ] {
            at_least_1(setting, value);
        }
        let b = &self.breaker;
        if b.window_ms < 1000 || b.probe_every_ms == 0 || b.min_requests == 0 {
            out.push(
                "breaker: window_ms must be at least 1000, probe_every_ms and min_requests at least 1"
                    .into(),
            );
        }
        if !(b.max_fault_ratio > 0.0 && b.max_fault_ratio <= 1.0) {
            out.push("breaker.max_fault_ratio must be above 0 and at most 1".into());
        }
        if self.worker.retry_delays_ms.is_empty() || self.worker.retry_delays_ms.contains(&0) {
            out.push("worker.retry_delays_ms must list at least one delay, none of them 0".into());
        }
        if self.reconciler.time_scale.is_nan() || self.reconciler.time_scale <= 0.0 {
            out.push("reconciler.time_scale must be greater than 0".into());
        }
        // The cap is a semaphore's permits, all taken back at shutdown at once.
        if !(1..=1_000_000).contains(&g.max_connections) {
            out.push("gateway.max_connections must be between 1 and 1000000".into());
        }
        self.rate_limit.problems(&mut out);
        for name in self.ecommpay.accounts.keys() {
            if !crate::contract::valid_account(name) || name == crate::contract::DEFAULT_ACCOUNT {
                out.push(format!(
                    "ecommpay.accounts.{name} must be named with a-z, 0-9, _ and - (and not `default`, which is ecommpay.project_id)"
                ));
            }
        }
        for (setting, url) in [
            ("ecommpay.base_url", &self.ecommpay.base_url),
            ("epay.oauth_url", &self.epay.oauth_url),
            ("epay.api_url", &self.epay.api_url),
            ("epay.status_url", &self.epay.status_url),
            ("epay.post_link_url", &self.epay.post_link_url),
            (
                "epay.failure_post_link_url",
                &self.epay.failure_post_link_url,
            ),
            ("epay.term_url", &self.epay.term_url),
        ] {
            if reqwest::Url::parse(url).is_err() {
                out.push(format!("{setting} is not a URL: {url:?}"));
            }
        }
        out
    }
}

/// What failed to parse, section by section: serde stops at the first problem of the
/// whole, and a start should name every one. `whole` when no section fails alone (an
/// unknown section).
fn section_problems(built: &config::Config, whole: config::ConfigError) -> Vec<String> {
    fn parse<T: DeserializeOwned>(built: &config::Config, section: &str) -> Option<String> {
        let value = match built.get::<config::Value>(section) {
            Ok(value) => value,
            Err(e) => return Some(format!("{section}: {e}")),
        };
        let e = serde_path_to_error::deserialize::<_, T>(value).err()?;
        Some(format!("{section}.{}: {}", e.path(), e.inner()))
    }
    type Check = fn(&config::Config, &str) -> Option<String>;
    let sections: [(&str, Check); 11] = [
        ("amqp", parse::<AmqpSettings>),
        ("redis", parse::<RedisSettings>),
        ("reconnect", parse::<ReconnectSettings>),
        ("worker", parse::<WorkerSettings>),
        ("breaker", parse::<BreakerSettings>),
        ("reconciler", parse::<ReconcilerSettings>),
        ("gateway", parse::<GatewaySettings>),
        ("ecommpay", parse::<EcommpaySettings>),
        ("epay", parse::<EpaySettings>),
        ("telemetry", parse::<TelemetrySettings>),
        ("rate_limit", parse::<RateLimitSettings>),
    ];
    let mut problems: Vec<String> = sections
        .iter()
        .filter_map(|(section, parse)| parse(built, section))
        .collect();
    if problems.is_empty() {
        problems.push(whole.to_string());
    }
    problems
}

#[cfg(test)]
mod tests {
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
}
