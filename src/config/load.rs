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
        self.redis.problems(&mut out);
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
#[path = "load_tests.rs"]
mod tests;
