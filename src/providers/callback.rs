//! What a provider makes of one callback request: each provider proves and reads its
//! own callbacks (a signature, a secret_hash, a status query to confirm) into one
//! [`CallbackVerdict`], which the gateway applies and answers the same way for all.

use crate::contract::{IdempotencyKey, Money};
use crate::state::{Outcome, State};

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
    /// The money the callback names, if it names any: it must be the command's.
    pub sum: Option<Sum>,
    /// When the provider says the payment reached this state, for the delivery lag.
    pub reported_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Money as a callback names it: minor units and a currency code, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub minor: u64,
    pub currency: String,
}

impl Sum {
    /// Whether this is other money than the command's (`command`).
    pub fn contradicts(&self, command: &Money) -> bool {
        self.minor != command.minor.minor() || self.currency != command.currency.code()
    }
}

impl std::fmt::Display for Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} minor units of {}", self.minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Amount, Currency};

    #[test]
    fn a_sum_contradicts_the_command_by_amount_or_currency() {
        let command = Money {
            minor: Amount::parse(20_000_000).unwrap(),
            currency: Currency::KZT,
        };
        let sum = |minor, currency: &str| Sum {
            minor,
            currency: currency.to_owned(),
        };
        assert!(!sum(20_000_000, "KZT").contradicts(&command));
        assert!(sum(100, "KZT").contradicts(&command));
        assert!(sum(20_000_000, "USD").contradicts(&command));
    }
}
