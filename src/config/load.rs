//! Loading and checking the settings: defaults, an optional file, the environment.

use super::secrets::account_secret;
use super::{ConfigError, DEFAULTS, ENV_PREFIX, LIST_KEYS, Secrets, Settings};
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::Path;

impl Settings {
    /// Loads from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars().collect())
    }

    /// Loads with an explicit environment (tests use this).
    pub fn load_from(
        file: Option<&Path>,
        env: HashMap<String, String>,
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
        let mut settings: Settings = built
            .try_deserialize()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let secret = |suffix: &str| {
            env.get(&Secrets::env_name(suffix))
                .filter(|v| !v.is_empty())
                .map(|v| SecretString::from(v.clone()))
        };
        settings.secrets = Secrets {
            ecommpay_secret_key: secret(Secrets::ECOMMPAY.1),
            epay_client_secret: secret(Secrets::EPAY.1),
            epay_fingerprint_key: secret(Secrets::EPAY_FINGERPRINT.1),
            ecommpay_accounts: env
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .filter_map(|(k, v)| account_secret(k).map(|a| (a, SecretString::from(v.clone()))))
                .collect(),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting: &str, why: &str| Err(ConfigError::Invalid(format!("{setting} {why}")));
        if self.amqp.prefetch == 0 {
            return fail("amqp.prefetch", "must be at least 1");
        }
        if self.worker.hold_ms == 0 {
            return fail("worker.hold_ms", "must be at least 1");
        }
        if self.worker.holds_refresh_ms == 0 {
            return fail("worker.holds_refresh_ms", "must be at least 1");
        }
        let b = &self.breaker;
        if b.window_ms < 1000 || b.probe_every_ms == 0 || b.min_requests == 0 {
            return fail(
                "breaker",
                "window_ms must be at least 1000, probe_every_ms and min_requests at least 1",
            );
        }
        if !(b.max_fault_ratio > 0.0 && b.max_fault_ratio <= 1.0) {
            return fail("breaker.max_fault_ratio", "must be above 0 and at most 1");
        }
        if self.reconnect.min_ms == 0 {
            return fail("reconnect.min_ms", "must be at least 1");
        }
        if self.worker.max_in_flight == 0 {
            return fail("worker.max_in_flight", "must be at least 1");
        }
        if self.worker.retry_delays_ms.is_empty() || self.worker.retry_delays_ms.contains(&0) {
            return fail(
                "worker.retry_delays_ms",
                "must list at least one delay, none of them 0",
            );
        }
        if self.reconciler.time_scale.is_nan() || self.reconciler.time_scale <= 0.0 {
            return fail("reconciler.time_scale", "must be greater than 0");
        }
        if self.worker.max_attempts == 0 {
            return fail("worker.max_attempts", "must be at least 1");
        }
        let g = &self.gateway;
        for (setting, value) in [
            ("gateway.header_read_timeout_ms", g.header_read_timeout_ms),
            ("gateway.body_timeout_ms", g.body_timeout_ms),
            ("gateway.idle_timeout_ms", g.idle_timeout_ms),
            ("gateway.max_body_bytes", g.max_body_bytes as u64),
        ] {
            if value == 0 {
                return fail(setting, "must be at least 1");
            }
        }
        // The cap is a semaphore's permits, all taken back at shutdown at once.
        if !(1..=1_000_000).contains(&g.max_connections) {
            return fail("gateway.max_connections", "must be between 1 and 1000000");
        }
        self.rate_limit.validate()?;
        for name in self.ecommpay.accounts.keys() {
            if !crate::contract::valid_account(name) || name == crate::contract::DEFAULT_ACCOUNT {
                return fail(
                    &format!("ecommpay.accounts.{name}"),
                    "must be named with a-z, 0-9, _ and - (and not `default`, which is ecommpay.project_id)",
                );
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
                return fail(setting, &format!("is not a URL: {url:?}"));
            }
        }
        Ok(())
    }
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
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rate_limit.limits.ecommpay.default.all"), "{e}");
    }

    #[test]
    fn a_malformed_setting_is_named() {
        let e = Settings::load_from(None, env(&[("PAYFLEET__AMQP__PREFETCH", "lots")]))
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
            let e = Settings::load_from(None, env(&[(var, "0")]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(setting), "{e}");
        }
    }

    #[test]
    fn a_missing_secret_names_its_variable() {
        let s = Settings::load_from(None, HashMap::new()).unwrap();
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
        )
        .unwrap();
        assert_eq!(s.secrets.epay().unwrap().expose_secret(), "cs");
        assert_eq!(s.epay.terminal_id, "t-1");
        let e = s.secrets.epay_fingerprint().unwrap_err().to_string();
        assert!(e.contains("PAYFLEET__EPAY__FINGERPRINT_KEY"), "{e}");
    }

    #[test]
    fn a_bad_url_is_named() {
        let e = Settings::load_from(None, env(&[("PAYFLEET__ECOMMPAY__BASE_URL", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ecommpay.base_url"), "{e}");
    }
}
