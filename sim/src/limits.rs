//! What a provider does with a merchant account that sends too much: every provider
//! request is counted per account and Unix second (`per_account_per_second` in the
//! stats) and, when told to, answered HTTP 429 with Retry-After over the account's
//! limit.
//!
//! `PUT /sandbox/limits` takes `{"<account>": {"per_second": N, "burst": B}}` (an
//! ECommPay account is its project id); `GET` shows the limits in force.

use crate::Sandbox;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

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

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(l: LimitDoc) -> Option<Self> {
        (l.per_second > 0).then(|| Bucket {
            rate: f64::from(l.per_second),
            capacity: f64::from(l.burst.max(1)),
            tokens: f64::from(l.burst.max(1)),
            at: Instant::now(),
        })
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Each limited account's bucket.
type Buckets = HashMap<String, Arc<Mutex<Bucket>>>;

#[derive(Default)]
pub struct AccountLimits {
    inner: RwLock<(Limits, Buckets)>,
}

impl AccountLimits {
    pub fn get(&self) -> Limits {
        self.inner.read().expect("limits lock").0.clone()
    }

    /// Replaces every limit (and starts their buckets full).
    pub fn set(&self, limits: Limits) {
        let buckets = limits
            .0
            .iter()
            .filter_map(|(account, l)| {
                Some((account.clone(), Arc::new(Mutex::new(Bucket::new(*l)?))))
            })
            .collect();
        *self.inner.write().expect("limits lock") = (limits, buckets);
    }

    /// `Some(wait)` when the account is over its limit.
    pub fn over(&self, account: &str) -> Option<Duration> {
        let bucket = self
            .inner
            .read()
            .expect("limits lock")
            .1
            .get(account)?
            .clone();
        let mut bucket = bucket.lock().expect("bucket lock");
        bucket.take(Instant::now()).err()
    }
}

/// The account a provider request is for: ECommPay's `general.project_id`.
fn account_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["general"]["project_id"].as_u64())
        .map_or_else(|| "unknown".to_owned(), |id| id.to_string())
}

/// Middleware in front of the provider endpoints (and of fault injection).
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
    sandbox.with_stats(|s| s.account_request(&account, second));
    if let Some(wait) = sandbox.limits.over(&account) {
        sandbox.with_stats(|s| *s.throttled.entry(account).or_default() += 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_asks_to_wait() {
        let limits = AccountLimits::default();
        let doc = LimitDoc {
            per_second: 2,
            burst: 3,
        };
        limits.set(Limits([("198".to_owned(), doc)].into()));
        assert!((0..3).all(|_| limits.over("198").is_none()));
        let wait = limits.over("198").expect("over the limit");
        assert!(wait <= Duration::from_millis(500));
        assert!(limits.over("other").is_none());
    }
}
