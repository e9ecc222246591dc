//! What a provider does with a merchant account that sends too much: the sandbox
//! counts every provider request per account and Unix second (`GET /sandbox/stats`,
//! `per_account_per_second`) and, when told to, answers HTTP 429 with Retry-After over
//! an account's limit.
//!
//! `PUT /sandbox/limits` takes `{"<account>": {"per_second": N, "burst": B}}` (an
//! ECommPay account is its project id); `GET` shows the limits in force.

use super::Sandbox;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use payfleet::ratelimit::Limit;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// The limits by account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Limits(pub BTreeMap<String, LimitDoc>);

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitDoc {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Default)]
pub struct AccountLimits {
    inner: RwLock<(Limits, HashMap<String, Arc<DefaultDirectRateLimiter>>)>,
}

impl AccountLimits {
    pub fn get(&self) -> Limits {
        self.inner.read().expect("limits lock").0.clone()
    }

    /// Replaces every limit (and starts their buckets full).
    pub fn set(&self, limits: Limits) {
        let limiters = limits
            .0
            .iter()
            .filter_map(|(account, l)| {
                let limit = Limit {
                    per_second: l.per_second,
                    burst: l.burst,
                };
                let period = Duration::from_secs(1).checked_div(limit.per_second)?;
                let quota = Quota::with_period(period)?
                    .allow_burst(NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN));
                Some((account.clone(), Arc::new(RateLimiter::direct(quota))))
            })
            .collect();
        *self.inner.write().expect("limits lock") = (limits, limiters);
    }

    /// `Some(wait)` when the account is over its limit.
    fn over(&self, account: &str) -> Option<Duration> {
        let limiter = self
            .inner
            .read()
            .expect("limits lock")
            .1
            .get(account)?
            .clone();
        limiter
            .check()
            .err()
            .map(|n| n.wait_time_from(DefaultClock::default().now()))
    }
}

/// The account a provider request is for: ECommPay's `general.project_id`.
fn account_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["general"]["project_id"].as_u64())
        .map_or_else(|| "unknown".to_owned(), |id| id.to_string())
}

/// Middleware in front of the simulated provider endpoints (and of fault injection).
pub async fn count_and_limit(
    State(sandbox): State<Arc<Sandbox>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let account = account_of(&bytes);
    let second = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    sandbox
        .stats
        .lock()
        .expect("stats lock")
        .account_request(&account, second);
    if let Some(wait) = sandbox.limits.over(&account) {
        *sandbox
            .stats
            .lock()
            .expect("stats lock")
            .throttled
            .entry(account)
            .or_default() += 1;
        // Retry-After is in whole seconds: round up, so the advice is never too early.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds.max(1).to_string())],
            "Too Many Requests",
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
