//! Settings: the `[sandbox]` section of payfleet's layered configuration (built-in
//! defaults, then an optional file, then `PAYFLEET__SANDBOX__*`), and the two secrets,
//! which come from the environment only.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

/// The built-in defaults: payfleet's `config/default.toml`, the one file that documents
/// every process's settings (only its `[sandbox]` section is read here).
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// The environment variable holding the key ECommPay requests and callbacks are
/// signed with.
pub const ECOMMPAY_SECRET_VAR: &str = "PAYFLEET__SANDBOX__ECOMMPAY_SECRET_KEY";
/// The environment variable holding the `client_secret` the token endpoint accepts.
pub const EPAY_SECRET_VAR: &str = "PAYFLEET__SANDBOX__EPAY_CLIENT_SECRET";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    pub listen: SocketAddr,
    pub ecommpay_project_id: u64,
    pub ecommpay_callback_url: String,
    pub callback_delay_ms: u64,
    pub callback_retry_ms: Vec<u64>,
    pub callback_max_attempts: u32,
    pub epay_client_id: String,
    pub epay_terminal_id: String,
    pub epay_token_ttl_s: u64,
    pub clock_offset_ms: i64,
    pub india_sale_threshold_ms: u64,
    pub record_arrivals: bool,
    /// Further projects the simulator accepts (same secret), e.g. for rate-limit tests.
    #[serde(default)]
    pub ecommpay_extra_project_ids: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// A setting of the wrong shape, named by its key (`sandbox.listen`).
    #[error("configuration: sandbox.{0}")]
    Shape(#[from] serde_path_to_error::Error<serde_json::Error>),
    #[error("the environment variable {0} is not set")]
    MissingSecret(&'static str),
}

impl SimSettings {
    /// The built-in defaults only.
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::load(None)
    }

    /// Defaults, then `file` (if any; only its `[sandbox]` section is read), then the
    /// environment (`PAYFLEET__SANDBOX__*`; lists comma-separated).
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with(file, None)
    }

    /// `load`, with `env` standing in for the process environment when given.
    fn load_with(
        file: Option<&Path>,
        env: Option<config::Map<String, String>>,
    ) -> Result<Self, SettingsError> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).required(true));
        }
        let env = Environment::with_prefix("PAYFLEET")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("sandbox.callback_retry_ms")
            .with_list_parse_key("sandbox.ecommpay_extra_project_ids")
            .try_parsing(true)
            .source(env);
        let cfg = builder.add_source(env).build()?;
        let mut table: serde_json::Map<String, serde_json::Value> = cfg.get("sandbox")?;
        // The secrets share the prefix but are not settings.
        table.remove("ecommpay_secret_key");
        table.remove("epay_client_secret");
        // A list from the environment keeps its items as text ("200,1000"), and one
        // item alone arrives as a number; the lists are of numbers.
        for key in ["callback_retry_ms", "ecommpay_extra_project_ids"] {
            let Some(value) = table.get_mut(key) else {
                continue;
            };
            if !value.is_array() {
                *value = serde_json::Value::Array(vec![value.take()]);
            }
            for item in value.as_array_mut().into_iter().flatten() {
                if let Some(n) = item.as_str().and_then(|t| t.trim().parse::<u64>().ok()) {
                    *item = n.into();
                }
            }
        }
        // `try_parsing` turns an all-digit string into a number; the ids are text.
        for key in ["epay_client_id", "epay_terminal_id"] {
            if let Some(v) = table.get_mut(key).filter(|v| v.is_number()) {
                *v = serde_json::Value::String(v.to_string());
            }
        }
        Ok(serde_path_to_error::deserialize(
            serde_json::Value::Object(table),
        )?)
    }
}

/// Reads a secret from the environment, naming the variable when it is missing.
pub fn secret_from_env(var: &'static str) -> Result<SecretString, SettingsError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => Err(SettingsError::MissingSecret(var)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load() {
        let s = SimSettings::defaults().expect("defaults load");
        assert_eq!(s.ecommpay_project_id, 198);
        assert_eq!(s.callback_retry_ms, vec![1000, 2000, 5000, 10000]);
        assert!(s.ecommpay_extra_project_ids.is_empty());
    }

    #[test]
    fn lists_read_from_the_environment_are_numbers() {
        let env = [
            ("PAYFLEET__SANDBOX__CALLBACK_RETRY_MS", "500,1000,2000"),
            ("PAYFLEET__SANDBOX__ECOMMPAY_EXTRA_PROJECT_IDS", "7,8"),
        ];
        let env = env.map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let s = SimSettings::load_with(None, Some(env)).expect("loads");
        assert_eq!(s.callback_retry_ms, vec![500, 1000, 2000]);
        assert_eq!(s.ecommpay_extra_project_ids, vec![7, 8]);
    }

    #[test]
    fn a_missing_secret_names_its_variable() {
        let e = secret_from_env("PAYFLEET__SANDBOX__SURELY_UNSET_FOR_TESTS").unwrap_err();
        assert!(
            e.to_string()
                .contains("PAYFLEET__SANDBOX__SURELY_UNSET_FOR_TESTS")
        );
    }
}
