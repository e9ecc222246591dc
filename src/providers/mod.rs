//! Payment providers behind one trait. Each provider lives in its own folder with one
//! file per method; its quirks (signatures, decimal amounts, codes) stay there.

pub mod callback;
mod clients;
pub mod ecommpay;
pub mod epay;
pub mod exchanges;

pub use callback::CallbackVerdict;
pub use clients::{Providers, not_enabled};

use crate::contract::{Command, IdempotencyKey, Method, Operation};
use crate::state::{Outcome, State, StateStore};
use crate::telemetry::label::{RequestResult, RetryReason};
use futures::future::BoxFuture;
use std::time::Duration;

/// What the provider said to a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Submission {
    /// Accepted for processing; the outcome comes later (callback or status query).
    Accepted,
    /// The outcome is already known.
    Final { state: State, outcome: Outcome },
    /// The customer must act first (redirect, 3-D Secure).
    ActionRequired(Outcome),
}

/// What the provider knows of a payment, asked by its id.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The provider has never seen this payment id: it is safe to submit it.
    NotFound,
    /// Known and still in progress.
    Pending,
    ActionRequired(Outcome),
    Final {
        state: State,
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The request certainly did not reach the provider: retry as if new.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have been processed: ask for the status before sending again.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The provider refused the request itself (bad parameters, bad signature, ...).
    #[error("refused by the provider: {code} {message}")]
    Refused { code: String, message: String },
    /// The provider already has a payment with this id: ask for its status.
    #[error("the provider already knows this payment id")]
    AlreadyExists,
    /// The provider throttled us.
    #[error("throttled by the provider")]
    Throttled { retry_after: Option<Duration> },
}

impl ProviderError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::NotSent(_) | ProviderError::Unknown(_) | ProviderError::Throttled { .. }
        )
    }

    /// Whether the request may have reached the provider and been processed.
    pub fn may_have_reached_provider(&self) -> bool {
        matches!(
            self,
            ProviderError::Unknown(_) | ProviderError::AlreadyExists
        )
    }

    /// Whether it says the provider is failing (no answer, a 5xx, an unreadable one),
    /// rather than answering: what the breaker counts.
    pub fn is_fault(&self) -> bool {
        matches!(self, ProviderError::NotSent(_) | ProviderError::Unknown(_))
    }

    /// Bounded label for metrics.
    pub fn class(&self) -> RequestResult {
        match self {
            ProviderError::NotSent(_) => RequestResult::NotSent,
            ProviderError::Unknown(_) => RequestResult::Unknown,
            ProviderError::Refused { .. } => RequestResult::Refused,
            ProviderError::AlreadyExists => RequestResult::AlreadyExists,
            ProviderError::Throttled { .. } => RequestResult::Throttled,
        }
    }

    /// Why a command this error stopped is parked for a later attempt.
    pub fn retry_reason(&self) -> RetryReason {
        match self {
            ProviderError::NotSent(_) => RetryReason::NotSent,
            ProviderError::Unknown(_) => RetryReason::Unknown,
            ProviderError::Refused { .. } => RetryReason::Refused,
            ProviderError::AlreadyExists => RetryReason::AlreadyExists,
            ProviderError::Throttled { .. } => RetryReason::Throttled,
        }
    }
}

/// Reads a provider's HTTP answer: 429 is throttling (with its `Retry-After`), 5xx an
/// unknown outcome (it may have been processed); otherwise the status and the body.
pub async fn http_answer(
    response: reqwest::Response,
    provider: &str,
) -> Result<(u16, Vec<u8>), ProviderError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response.bytes().await.map_err(|e| {
        exchanges::failed(&e);
        ProviderError::Unknown(format!("reading {provider}'s answer: {e}"))
    })?;
    exchanges::note(crate::telemetry::label::HttpClass::of_status(status));
    if status == 429 {
        return Err(ProviderError::Throttled { retry_after });
    }
    if status >= 500 {
        return Err(ProviderError::Unknown(format!(
            "{provider} answered HTTP {status}"
        )));
    }
    Ok((status, bytes.to_vec()))
}

/// How long a method's payments usually take and at most may take (the providers'
/// "basic" and "threshold" times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// After this without a result, ask the provider for the status.
    pub basic: Duration,
    /// After this the provider settles the payment itself (ECommPay declines it).
    pub threshold: Duration,
    /// Whether the provider's document says it declines what is unfinished at the
    /// threshold; otherwise past it the payment stays open, asked about, for an operator.
    pub declines_at_threshold: bool,
    /// The provider answers status requests only this long after the payment request.
    pub status_not_before: Duration,
    /// Whether the provider's document makes its "not found" proof that it never
    /// received the payment (ECommPay's 3061, asked `status_not_before` after the
    /// request). Otherwise (epay's 102 "try again later") a not-found proves nothing:
    /// the payment stays open.
    pub not_found_final: bool,
    /// After a request that may have reached the provider, how long its "not found" is
    /// no proof that the request never arrived: the command is sent again only once the
    /// last request is this old (zero where `not_found_final`).
    pub resend_after: Duration,
}

pub trait Provider: Send + Sync {
    /// The id the provider will know this command's payment by: the same on every attempt.
    /// A future, because some providers (epay) allocate it in Redis on first use;
    /// `carried`, the id a parked copy of the command carries, is what such a provider
    /// takes back should Redis have lost the allocation (only what its own
    /// [`Provider::carry`] sealed for this command).
    fn payment_id<'a>(
        &'a self,
        command: &'a Command,
        carried: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// What a parked copy of the command carries for [`Provider::payment_id`] to take
    /// back should Redis lose its allocation: only a provider whose ids are allocated
    /// there needs it, and only it can vouch for what it reads back.
    fn carry(&self, _command: &Command, _payment_id: &str) -> Option<String> {
        None
    }

    /// Sends the command's payment as `payment_id`, what [`Provider::payment_id`] gave.
    fn submit<'a>(
        &'a self,
        command: &'a Command,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<Submission, ProviderError>>;

    /// What the provider knows of command `key`'s payment, from what its record keeps
    /// (so the reconciler can ask without the command). A refund is known by its
    /// purchase's id: only the operation carrying `key` is this refund.
    fn status<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        payment_id: &'a str,
        method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>>;

    /// What the provider knows of a payment, asked in the account its record names
    /// (`None`: as [`Provider::status`] asks).
    fn status_in<'a>(
        &'a self,
        _account: Option<&'a str>,
        key: &'a IdempotencyKey,
        payment_id: &'a str,
        method: Method,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        self.status(key, payment_id, method, operation)
    }

    fn timing(&self, method: Method, operation: Operation) -> Timing;

    /// The breaker's probe: a status query in `account` for a payment id no command
    /// uses, never a payment. Any answer (found, not found, refused) shows the provider
    /// is back; a timeout, a 5xx or a refused connection that it is not.
    fn probe<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Status, ProviderError>>;

    /// Proves and reads a callback the provider sent to the gateway; `records` tells
    /// what is already recorded, for a provider whose callbacks cost requests to confirm.
    fn callback<'a>(
        &'a self,
        body: &'a [u8],
        records: &'a StateStore,
    ) -> BoxFuture<'a, CallbackVerdict>;

    /// The HTTP requests one call (submission or status query) makes to the provider:
    /// each counts against the account's rate limit.
    fn requests_per_call(&self) -> u32 {
        1
    }

    /// Checks the command against what only the provider knows (its bank list, ...);
    /// `Err(reason)` rejects it before anything is sent.
    fn check<'a>(&'a self, _command: &'a Command) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// How long the command must be held before it may be sent (the provider's working
    /// hours); `None` to send it now.
    fn hold(&self, _command: &Command) -> Option<Duration> {
        None
    }

    /// Whether this provider is configured with the account a command names (`None`:
    /// its default account).
    fn has_account(&self, account: Option<&str>) -> bool {
        account.is_none()
    }

    /// What the provider knows of a command's payment, asked in the command's account.
    fn status_of<'a>(
        &'a self,
        command: &'a Command,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        self.status(&command.key, payment_id, command.method, command.operation)
    }
}
