//! Fleet-wide request limits per provider account and operation class.
//!
//! ```text
//! command ─▶ local (governor, this worker) ─▶ global (Redis GCRA, the whole fleet) ─▶ provider
//!              │ over the limit on its own        │ slot within max_wait: sleep, send
//!              │                                  │ slot further away: defer (delay queue)
//!              └──── Redis unreachable: fallback (governor, limit ÷ expected workers)
//! ```
//!
//! - [`global`]: one Lua script per decision, Redis server time, one key per limit.
//! - [`local`]: the per-worker limiters in front of it.
//!
//! A limit is keyed by (provider, account, class): an account is what the provider
//! throttles (an ECommPay project, an epay terminal), a class a kind of request
//! (`payment`, `status`; a provider's auxiliary requests, such as an epay token, count
//! as the class of the request they serve). A class without a limit of its own counts
//! against the account's `all` limit.

mod global;
mod local;

pub use global::{Answer, Global};

pub use crate::config::{Limit, RateLimitSettings};
use crate::contract::{DEFAULT_ACCOUNT, ProviderName};
use crate::telemetry::Metrics;
use crate::telemetry::label::{RateLimitDecision, Stage};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The class a limit falls back to when a class has none of its own.
pub const ALL: &str = "all";
/// Payment requests: sale, payout, refund.
pub const PAYMENT: &str = "payment";
/// Status queries.
pub const STATUS: &str = "status";

/// How often a request that woke too late for its slot asks for another one before
/// its command is parked.
const LATE_RETRIES: usize = 3;

/// The limit a request counts against, and the class it is kept under.
fn limit_for(settings: &RateLimitSettings, key: &RateKey) -> Option<(&'static str, Limit)> {
    let classes = settings
        .limits
        .get(key.provider.as_str())?
        .get(&key.account)?;
    if let Some(l) = classes.get(key.class) {
        return Some((key.class, *l));
    }
    classes.get(ALL).map(|l| (ALL, *l))
}

/// What a limit is kept for: one provider account and one class of request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub provider: ProviderName,
    pub account: String,
    pub class: &'static str,
}

impl RateKey {
    pub fn new(provider: ProviderName, account: Option<&str>, class: &'static str) -> Self {
        RateKey {
            provider,
            account: account.unwrap_or(DEFAULT_ACCOUNT).to_owned(),
            class,
        }
    }
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it now (after `waited`).
    Go { waited: Duration },
    /// Its slot is too far away: park the command for about `after`, then ask again
    /// with the `ticket` (its place in the queue), if any.
    Defer {
        after: Duration,
        ticket: Option<u64>,
    },
}

impl Decision {
    fn defer(after: Duration) -> Self {
        Decision::Defer {
            after,
            ticket: None,
        }
    }
}

/// One process's view of every limit: the Redis GCRA plus its local limiters.
pub struct RateLimiter {
    settings: RateLimitSettings,
    global: Global,
    locals: std::sync::Mutex<HashMap<RateKey, Arc<local::Local>>>,
    /// Until when (ms since this limiter started) Redis is left alone after a failure.
    redis_down_until: AtomicU64,
    /// When (ms since this limiter started) Redis last answered.
    redis_ok_at: AtomicU64,
    started: Instant,
    metrics: Arc<Metrics>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, global: Global, metrics: Arc<Metrics>) -> Self {
        RateLimiter {
            settings,
            global,
            locals: Default::default(),
            redis_down_until: AtomicU64::new(0),
            redis_ok_at: AtomicU64::new(0),
            started: Instant::now(),
            metrics,
        }
    }

    /// The limiter of a process (a worker, the reconciler) from its settings.
    pub fn from_settings(
        settings: &crate::config::Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, redis::RedisError> {
        let conn = crate::state::RedisConn::open(&settings.redis)?;
        let global = Global::new(conn, &settings.redis.key_prefix);
        Ok(Self::new(settings.rate_limit.clone(), global, metrics))
    }

    fn max_wait(&self) -> Duration {
        Duration::from_millis(self.settings.max_wait_ms)
    }

    fn local(&self, key: &RateKey, limit: Limit) -> Arc<local::Local> {
        let mut locals = self.locals.lock().expect("limiter lock");
        locals
            .entry(key.clone())
            .or_insert_with(|| Arc::new(local::Local::new(limit, self.settings.expected_workers)))
            .clone()
    }

    fn since_start_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Waits for a slot for `requests` requests made together (an epay token and the
    /// request it serves), or says how long to park the command. Records the decision
    /// in the metrics. A request without a configured limit goes at once. `ticket`:
    /// what the previous deferral of this request handed out.
    pub async fn acquire(&self, key: &RateKey, requests: u32, ticket: Option<u64>) -> Decision {
        let Some((class, limit)) = limit_for(&self.settings, key) else {
            return Decision::Go {
                waited: Duration::ZERO,
            };
        };
        let key = RateKey {
            class,
            ..key.clone()
        };
        let started = Instant::now();
        let (decision, label) = self.decide(&key, limit, requests, ticket).await;
        let seconds = match decision {
            Decision::Go { waited } => waited.as_secs_f64(),
            Decision::Defer { after, .. } => after.as_secs_f64(),
        };
        let provider = key.provider.as_str();
        self.metrics.rate_limit(provider, label, seconds);
        self.metrics
            .stage(Stage::RateLimit, started.elapsed().as_secs_f64());
        decision
    }

    /// Waits for a slot however far away it is, as long as the whole wait stays within
    /// `patience`: for a request a person waits for (`payfleet payments resolve`), which
    /// has no delay queue to park in. `Err(after)`: the next slot is further than that.
    pub async fn wait_for_slot(
        &self,
        key: &RateKey,
        requests: u32,
        patience: Duration,
    ) -> Result<Duration, Duration> {
        let started = Instant::now();
        let mut ticket = None;
        loop {
            match self.acquire(key, requests, ticket).await {
                Decision::Go { .. } => return Ok(started.elapsed()),
                Decision::Defer { after, .. } if started.elapsed() + after > patience => {
                    return Err(after);
                }
                Decision::Defer { after, ticket: t } => {
                    tokio::time::sleep(after).await;
                    ticket = t;
                }
            }
        }
    }

    async fn decide(
        &self,
        key: &RateKey,
        limit: Limit,
        requests: u32,
        ticket: Option<u64>,
    ) -> (Decision, RateLimitDecision) {
        let local = self.local(key, limit);
        let max_wait = self.max_wait();
        // In front: this worker alone already sends at the fleet's limit, so Redis
        // cannot have a slot sooner than the local one.
        let mut waited = Duration::ZERO;
        if let Some(wait) = local.front_wait(requests) {
            if wait > max_wait {
                let after = wait;
                return (
                    Decision::Defer { after, ticket },
                    RateLimitDecision::Deferred,
                );
            }
            tokio::time::sleep(wait).await;
            waited = wait;
        }
        if self.since_start_ms() >= self.redis_down_until.load(Ordering::Relaxed)
            && let Some(decided) = self.ask_redis(key, limit, requests, ticket, waited).await
        {
            return decided;
        }
        // Redis is away: this worker's own share, never more.
        match local
            .fallback(max_wait.saturating_sub(waited), requests)
            .await
        {
            Some(more) => (
                Decision::Go {
                    waited: waited + more,
                },
                RateLimitDecision::Fallback,
            ),
            None => (
                Decision::defer(local.fallback_period().max(max_wait)),
                RateLimitDecision::Deferred,
            ),
        }
    }

    /// The fleet-wide decision. `None`: Redis is away, the local share decides.
    async fn ask_redis(
        &self,
        key: &RateKey,
        limit: Limit,
        requests: u32,
        mut ticket: Option<u64>,
        waited: Duration,
    ) -> Option<(Decision, RateLimitDecision)> {
        let max_wait = self.max_wait();
        let timeout = Duration::from_millis(self.settings.redis_timeout_ms);
        // A slot is a moment: a request that wakes much later than its slot (the
        // process was starved) would reach the provider together with the next ones,
        // so it asks for a new slot instead. Half the burst absorbs smaller delays.
        let late = Duration::from_secs(1) * limit.burst / (2 * limit.per_second.max(1));
        for _ in 0..LATE_RETRIES {
            let asked = Instant::now();
            let call = self.global.reserve(key, limit, requests, max_wait, ticket);
            let error = match tokio::time::timeout(timeout, call).await {
                Ok(Ok(Answer::Reserved(wait))) => {
                    self.redis_answered();
                    // Redis set the slot somewhere within the round trip: count from
                    // its middle, so a slow answer is not taken for a late wake.
                    let slot = wait + asked.elapsed() / 2;
                    tokio::time::sleep(wait).await;
                    if asked.elapsed() > slot + late {
                        ticket = None;
                        continue;
                    }
                    let waited = waited + asked.elapsed();
                    let label = if wait.is_zero() {
                        RateLimitDecision::Allowed
                    } else {
                        RateLimitDecision::Waited
                    };
                    return Some((Decision::Go { waited }, label));
                }
                Ok(Ok(Answer::Defer { after, ticket })) => {
                    self.redis_answered();
                    let ticket = Some(ticket);
                    return Some((
                        Decision::Defer { after, ticket },
                        RateLimitDecision::Deferred,
                    ));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the limiter call timed out".to_owned(),
            };
            // A slow or lost answer may still have taken a slot, and the other workers
            // may still reach Redis: until Redis has been silent for the grace period,
            // nothing goes on the local share; the command is parked.
            let silent = self.since_start_ms() - self.redis_ok_at.load(Ordering::Relaxed);
            if silent < self.settings.redis_grace_ms {
                tracing::debug!(error, "rate limiter: no answer from Redis; deferring");
                return Some((Decision::defer(max_wait), RateLimitDecision::Deferred));
            }
            self.redis_failed(&error);
            return None;
        }
        Some((Decision::defer(max_wait), RateLimitDecision::Deferred))
    }

    fn redis_answered(&self) {
        self.redis_ok_at
            .fetch_max(self.since_start_ms(), Ordering::Relaxed);
    }

    fn redis_failed(&self, error: &str) {
        let until = self.since_start_ms() + self.settings.redis_retry_ms;
        if self.redis_down_until.swap(until, Ordering::Relaxed) <= self.since_start_ms() {
            tracing::warn!(
                error,
                "rate limiter: Redis unreachable; using the local fallback share"
            );
        }
    }
}
