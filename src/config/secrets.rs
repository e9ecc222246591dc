//! Secrets: from the environment only, each asked for by the process that needs it.

use super::{ConfigError, ENV_PREFIX};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

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
    pub(super) const ECOMMPAY: (&'static str, &'static str) =
        ("ecommpay.secret_key", "ECOMMPAY__SECRET_KEY");

    pub(super) const EPAY: (&'static str, &'static str) =
        ("epay.client_secret", "EPAY__CLIENT_SECRET");
    pub(super) const EPAY_FINGERPRINT: (&'static str, &'static str) =
        ("epay.fingerprint_key", "EPAY__FINGERPRINT_KEY");

    pub(super) fn env_name(suffix: &str) -> String {
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

    /// The key of the HMAC that stands in for card data in command fingerprints: the
    /// fleet's `epay.fingerprint_key`. A fleet without epay may leave it unset: its
    /// key is then derived from the ECommPay secret key, the same on every worker of
    /// the fleet. Card data belongs to epay's commands, so on such a fleet only a
    /// misplaced card (rejected whatever its fingerprint) is ever keyed with it.
    pub fn fingerprint(&self, epay_enabled: bool) -> Result<SecretString, ConfigError> {
        if epay_enabled || self.epay_fingerprint_key.is_some() {
            return self.epay_fingerprint();
        }
        let ecommpay = self.ecommpay()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(ecommpay.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"payfleet command fingerprint key");
        let derived = crate::contract::hex(&mac.finalize().into_bytes());
        Ok(SecretString::from(derived))
    }

    /// Every secret the enabled providers need that is not set, each naming its
    /// environment variable; `accounts`: the further ECommPay accounts configured.
    pub(super) fn problems(
        &self,
        ecommpay: bool,
        epay: bool,
        accounts: Vec<String>,
    ) -> Vec<String> {
        let mut checks = Vec::new();
        if ecommpay {
            checks.push(self.ecommpay());
            checks.extend(accounts.iter().map(|a| self.ecommpay_account(a)));
        }
        if epay {
            checks.extend([self.epay(), self.epay_fingerprint()]);
        }
        let mut problems: Vec<String> = checks
            .into_iter()
            .filter_map(|c| c.err().map(ConfigError::message))
            .collect();
        if !ecommpay && !epay {
            problems.push(
                "no provider is enabled: set ecommpay.enabled or epay.enabled to true".into(),
            );
        }
        problems
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

/// The account named by `PAYFLEET__ECOMMPAY__ACCOUNTS__<NAME>__SECRET_KEY`, lowercased
/// as every other environment key is.
pub(super) fn account_secret(key: &str) -> Option<String> {
    let name = key
        .strip_prefix(&format!("{ENV_PREFIX}__ECOMMPAY__ACCOUNTS__"))?
        .strip_suffix("__SECRET_KEY")?;
    (!name.is_empty()).then(|| name.to_lowercase())
}
