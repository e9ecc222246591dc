//! Configuration: compiled-in defaults (`config/default.toml`), an optional file, then
//! `PAYFLEET__SECTION__KEY` environment variables. Secrets come only from the
//! environment, so no file in the repo or the image can hold one.

use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

pub const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "PAYFLEET";
const LIST_KEYS: [&str; 1] = ["worker.retry_delays_ms"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration: {setting} is not set (set the environment variable {env})")]
    MissingSecret { setting: &'static str, env: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub amqp: AmqpSettings,
    pub redis: RedisSettings,
    pub worker: WorkerSettings,
    pub reconciler: ReconcilerSettings,
    pub gateway: GatewaySettings,
    pub ecommpay: EcommpaySettings,
    pub epay: EpaySettings,
    /// The provider simulator's section (its own crate reads it): skipped here, so that
    /// one file and one environment (`PAYFLEET__SANDBOX__*`) serve every process.
    #[serde(default, rename = "sandbox")]
    _sandbox: serde::de::IgnoredAny,
    pub telemetry: TelemetrySettings,
    pub rate_limit: crate::ratelimit::RateLimitSettings,
    #[serde(skip)]
    pub secrets: Secrets,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: String,
    pub namespace: String,
    pub declare_events_queue: bool,
    pub prefetch: u16,
    pub delivery_limit: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
    pub retention_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub max_in_flight: usize,
    pub lease_ms: u64,
    pub retry_delays_ms: Vec<u64>,
    pub max_attempts: u32,
    pub check_back: bool,
    pub ops_listen: SocketAddr,
    pub shutdown_grace_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcilerSettings {
    pub embedded: bool,
    pub interval_ms: u64,
    pub batch: usize,
    pub time_scale: f64,
    pub ops_listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcommpaySettings {
    pub base_url: String,
    pub project_id: u64,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub bank_list_ttl_ms: u64,
    pub clock_offset_ms: i64,
    /// Further ECommPay projects by account name; `project_id` is the `default` account.
    #[serde(default)]
    pub accounts: std::collections::BTreeMap<String, EcommpayAccount>,
}

/// Another ECommPay project the fleet serves; its secret comes from the environment
/// (`PAYFLEET__ECOMMPAY__ACCOUNTS__<NAME>__SECRET_KEY`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcommpayAccount {
    pub project_id: u64,
}

/// Halyk epay: every base URL is configuration (the documents' test and production
/// hosts differ in shape, e.g. `/epay2` and `/api` prefixes on the test hosts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpaySettings {
    pub oauth_url: String,
    pub api_url: String,
    pub status_url: String,
    /// The P2P counterpart of check-status's payment path (see config/default.toml).
    pub p2p_status_path: String,
    pub client_id: String,
    pub terminal_id: String,
    pub post_link_url: String,
    pub failure_post_link_url: String,
    pub term_url: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_level: String,
}

/// Secrets, read from the environment only. Each is optional here; the process that
/// needs one asks for it and gets an error naming the variable.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub ecommpay_secret_key: Option<SecretString>,
    pub epay_client_secret: Option<SecretString>,
    pub epay_fingerprint_key: Option<SecretString>,
    /// Secret keys of the further ECommPay accounts, by account name.
    pub ecommpay_accounts: std::collections::BTreeMap<String, SecretString>,
}

impl Secrets {
    const ECOMMPAY: (&'static str, &'static str) = ("ecommpay.secret_key", "ECOMMPAY__SECRET_KEY");

    const EPAY: (&'static str, &'static str) = ("epay.client_secret", "EPAY__CLIENT_SECRET");
    const EPAY_FINGERPRINT: (&'static str, &'static str) =
        ("epay.fingerprint_key", "EPAY__FINGERPRINT_KEY");

    fn env_name(suffix: &str) -> String {
        format!("{ENV_PREFIX}__{suffix}")
    }

    fn require(
        value: &Option<SecretString>,
        (setting, suffix): (&'static str, &'static str),
    ) -> Result<SecretString, ConfigError> {
        value.clone().ok_or_else(|| ConfigError::MissingSecret {
            setting,
            env: Self::env_name(suffix),
        })
    }

    pub fn ecommpay(&self) -> Result<SecretString, ConfigError> {
        Self::require(&self.ecommpay_secret_key, Self::ECOMMPAY)
    }

    pub fn epay(&self) -> Result<SecretString, ConfigError> {
        Self::require(&self.epay_client_secret, Self::EPAY)
    }

    /// Keys the HMAC that stands in for card data in command fingerprints.
    pub fn epay_fingerprint(&self) -> Result<SecretString, ConfigError> {
        Self::require(&self.epay_fingerprint_key, Self::EPAY_FINGERPRINT)
    }

    /// The environment variable holding an ECommPay account's secret key.
    fn ecommpay_account_env(account: &str) -> String {
        Self::env_name(&format!(
            "ECOMMPAY__ACCOUNTS__{}__SECRET_KEY",
            account.to_uppercase()
        ))
    }

    /// The secret key of a further ECommPay account (`ecommpay.accounts.<name>`).
    pub fn ecommpay_account(&self, account: &str) -> Result<SecretString, ConfigError> {
        self.ecommpay_accounts.get(account).cloned().ok_or_else(|| {
            ConfigError::Invalid(format!(
                "the secret key of ecommpay.accounts.{account} is not set (set the environment variable {})",
                Self::ecommpay_account_env(account)
            ))
        })
    }
}

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
        self.rate_limit.validate()?;
        for name in self.ecommpay.accounts.keys() {
            if !crate::contract::command::valid_account(name)
                || name == crate::ratelimit::DEFAULT_ACCOUNT
            {
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

/// The account named by `PAYFLEET__ECOMMPAY__ACCOUNTS__<NAME>__SECRET_KEY`, lowercased
/// as every other environment key is.
fn account_secret(key: &str) -> Option<String> {
    let name = key
        .strip_prefix(&format!("{ENV_PREFIX}__ECOMMPAY__ACCOUNTS__"))?
        .strip_suffix("__SECRET_KEY")?;
    (!name.is_empty()).then(|| name.to_lowercase())
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
