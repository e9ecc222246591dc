//! Configuration: compiled-in defaults (`config/default.toml`), an optional file, then
//! `PAYFLEET__SECTION__KEY` environment variables. Secrets come only from the
//! environment, so no file in the repo or the image can hold one.

use serde::Deserialize;
use std::net::SocketAddr;

mod load;
mod nodes;
mod rate_limit;
mod reconnect;
mod redis_settings;
mod secrets;

pub use load::Needs;
pub use nodes::AmqpNodes;
pub use rate_limit::{Limit, RateLimitSettings};
pub use reconnect::{ReconnectSettings, redacted};
pub use redis_settings::{RedisSettings, RedisUrls};
pub use secrets::Secrets;

pub const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "PAYFLEET";
const LIST_KEYS: [&str; 1] = ["worker.retry_delays_ms"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration: {setting} is not set (set the environment variable {env})")]
    MissingSecret { setting: &'static str, env: String },
    #[error("configuration: {}", .0.join("; "))]
    Several(Vec<String>),
}

impl ConfigError {
    /// The error without the `configuration:` prefix, to be listed with others.
    pub(super) fn message(self) -> String {
        match self {
            ConfigError::Invalid(why) => why,
            ConfigError::MissingSecret { setting, env } => {
                format!("{setting} is not set (set the environment variable {env})")
            }
            ConfigError::Several(many) => many.join("; "),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub amqp: AmqpSettings,
    pub redis: RedisSettings,
    pub reconnect: ReconnectSettings,
    pub worker: WorkerSettings,
    pub breaker: BreakerSettings,
    pub reconciler: ReconcilerSettings,
    pub gateway: GatewaySettings,
    pub ecommpay: EcommpaySettings,
    pub epay: EpaySettings,
    /// The provider simulator's section (its own crate reads it): skipped here, so that
    /// one file and one environment (`PAYFLEET__SANDBOX__*`) serve every process.
    #[serde(default, rename = "sandbox")]
    _sandbox: serde::de::IgnoredAny,
    pub telemetry: TelemetrySettings,
    pub rate_limit: RateLimitSettings,
    #[serde(skip)]
    pub secrets: Secrets,
}

impl Settings {
    /// Whether this fleet pays through `provider`.
    pub fn enabled(&self, provider: crate::contract::ProviderName) -> bool {
        match provider {
            crate::contract::ProviderName::Ecommpay => self.ecommpay.enabled,
            crate::contract::ProviderName::Epay => self.epay.enabled,
        }
    }

    /// Every secret of the enabled providers, each missing one named, all at once (what
    /// [`Needs::ProviderSecrets`] checks at load).
    pub fn require_provider_secrets(&self) -> Result<(), ConfigError> {
        let accounts = self.ecommpay.accounts.keys().cloned().collect();
        let problems = self
            .secrets
            .problems(self.ecommpay.enabled, self.epay.enabled, accounts);
        match problems.is_empty() {
            true => Ok(()),
            false => Err(ConfigError::Several(problems)),
        }
    }

    /// The key of the HMAC over card data in command fingerprints (see
    /// [`Secrets::fingerprint`]).
    pub fn fingerprint_key(&self) -> Result<secrecy::SecretString, ConfigError> {
        self.secrets.fingerprint(self.epay.enabled)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: AmqpNodes,
    pub namespace: String,
    pub declare_events_queue: bool,
    pub events_queue_max_length: u64,
    pub events_queue_max_bytes: u64,
    pub prefetch: u16,
    pub delivery_limit: u32,
    /// Replicas of each quorum queue payfleet creates (0: the broker's default).
    pub quorum_group_size: u16,
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
    pub hold_ms: u64,
    pub holds_refresh_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    pub enabled: bool,
    pub window_ms: u64,
    pub min_requests: u32,
    pub max_fault_ratio: f64,
    pub probe_every_ms: u64,
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
    /// Providers' callbacks only.
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz` and `/readyz`, apart from the public callback port.
    pub ops_listen: SocketAddr,
    pub header_read_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_connections: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcommpaySettings {
    /// Whether this fleet pays through ECommPay (see config/default.toml).
    pub enabled: bool,
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
    /// Whether this fleet pays through Halyk epay (see config/default.toml).
    pub enabled: bool,
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
    pub otlp_endpoint: String,
}
