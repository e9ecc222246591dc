//! What a provider makes of one callback request: each provider proves and reads its
//! own callbacks (a signature, a secret_hash, a status query to confirm) into one
//! [`CallbackVerdict`], which the gateway applies and answers the same way for all.

use crate::contract::IdempotencyKey;
use crate::state::{Meta, Outcome, State};

#[derive(Debug, Clone, PartialEq)]
pub enum CallbackVerdict {
    /// Not proven to come from the provider.
    Refused(Refusal),
    /// It could not be checked now (our own store failed): the provider must send it
    /// again.
    Unchecked(String),
    /// Proven to come from the provider.
    Authentic(Authentic),
}

/// Why a callback not proven authentic is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, or without what proving it takes; says what is missing.
    Malformed(&'static str),
    /// Its signature is not the provider's.
    BadSignature,
    /// Its secret_hash is not the one its transaction was given.
    WrongSecret,
    /// It names a payment payfleet never made, so nothing can prove it.
    UnknownPayment,
}

/// What an authentic callback says.
#[derive(Debug, Clone, PartialEq)]
pub enum Authentic {
    /// An outcome to apply to its command's record.
    Settle(Settlement),
    /// The payment is still in progress at the provider: nothing to record yet.
    InProgress,
    /// About a payment payfleet did not make: nothing to do, and no point in having the
    /// provider send it again.
    NotOurs,
    /// It lacks what reading its outcome takes; says what is missing.
    Malformed(&'static str),
    /// Its outcome could not be confirmed now (the status query failed): the provider
    /// must send it again.
    Unconfirmed(String),
}

/// An outcome an authentic callback reports (final, or asking for the customer's
/// action), ready to apply to its command's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub key: IdempotencyKey,
    pub state: State,
    pub outcome: Outcome,
    /// The id the provider knows the payment by.
    pub payment_id: String,
    /// What the callback tells of the command: recorded only where Redis lost the
    /// record.
    pub meta: Meta,
    /// When the provider says the payment reached this state, for the delivery lag.
    pub reported_at: Option<chrono::DateTime<chrono::Utc>>,
}
