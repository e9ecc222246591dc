//! `rate_limit`: fleet-wide request limits per provider account and class (used by
//! `ratelimit`).

use crate::contract::ProviderName;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub max_wait_ms: u64,
    pub expected_workers: u32,
    pub redis_timeout_ms: u64,
    pub redis_grace_ms: u64,
    pub redis_retry_ms: u64,
    /// provider → account → class → limit.
    #[serde(default)]
    pub limits: BTreeMap<String, BTreeMap<String, BTreeMap<String, Limit>>>,
}

/// `burst` requests may go at once, then `per_second` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimitSettings {
    /// Every problem of these settings, as messages naming the setting.
    pub(super) fn problems(&self, out: &mut Vec<String>) {
        if self.expected_workers == 0 {
            out.push("rate_limit.expected_workers must be at least 1".into());
        }
        if self.redis_timeout_ms == 0 {
            out.push("rate_limit.redis_timeout_ms must be at least 1".into());
        }
        for (provider, accounts) in &self.limits {
            if !ProviderName::ALL.iter().any(|p| p.as_str() == provider) {
                out.push(format!("rate_limit.limits.{provider}: unknown provider"));
                continue;
            }
            for (account, classes) in accounts {
                for (class, limit) in classes {
                    if limit.per_second == 0 || limit.burst == 0 {
                        out.push(format!(
                            "rate_limit.limits.{provider}.{account}.{class}: per_second and burst must be at least 1"
                        ));
                    }
                }
            }
        }
    }
}
