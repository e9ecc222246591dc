//! Command contract v1: what other services publish onto `payfleet.commands`.
//!
//! Parsing happens in stages so that every failure gets the most useful answer: a body
//! that is not JSON or has no valid `idempotency_key` cannot be answered on the bus and
//! goes to the dead-letter queue; anything else that is wrong becomes a `rejected` event
//! for its key.

use super::card::FingerprintKey;
use super::methods::{
    Confirm3ds, GooglePay, HomebankPayout, IndiaPayout, IndiaRefund, IndiaSale, P2pTransfer,
};
use super::{
    Fingerprint, IdempotencyKey, Method, Money, Operation, ProviderName, reason, valid_account,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::fmt;

pub const CONTRACT_VERSION: u32 = 1;

/// The method's own fields, typed and validated.
#[derive(Debug, Clone)]
pub enum Details {
    HomebankPayout(HomebankPayout),
    EpayGooglePay(GooglePay),
    EpayP2pTransfer(P2pTransfer),
    EpayConfirm3ds(Confirm3ds),
    IndiaSale(IndiaSale),
    IndiaPayout(IndiaPayout),
    IndiaRefund(IndiaRefund),
}

/// A command that passed every check: safe to act on.
#[derive(Debug, Clone)]
pub struct Command {
    pub key: IdempotencyKey,
    pub method: Method,
    pub operation: Operation,
    pub amount: Money,
    pub deadline: Option<DateTime<Utc>>,
    pub details: Details,
    pub fingerprint: Fingerprint,
    /// The provider account to use (`ecommpay.accounts.<name>`); `None`: the default.
    pub account: Option<String>,
}

impl Command {
    pub fn provider(&self) -> ProviderName {
        self.method.provider()
    }

    pub fn routing_key(&self) -> String {
        routing_key(self.method, self.operation)
    }
}

pub fn routing_key(method: Method, operation: Operation) -> String {
    format!("{}.{}", method.provider().as_str(), operation.as_str())
}

/// The routing key a command body asks for (`<provider>.<operation>`), read from its
/// `method` and `operation` without validating the rest: publishers use it.
pub fn routing_key_of(body: &serde_json::Value) -> Result<String, String> {
    let method = body
        .get("method")
        .ok_or("method is missing")
        .and_then(|m| Method::deserialize(m).map_err(|_| "method is unknown"))?;
    let operation = body
        .get("operation")
        .ok_or("operation is missing")
        .and_then(|o| Operation::deserialize(o).map_err(|_| "operation is unknown"))?;
    Ok(routing_key(method, operation))
}

/// Why a command delivered under routing key `delivered` must not be acted on: the key
/// chose its queue (so the worker, the provider's limits and the metrics), its body
/// chooses what is paid, and when the two disagree the publisher made a mistake that
/// no guess can safely repair. `None`: they agree. The delivered key is the
/// publisher's text, so it is quoted only when it is a command routing key.
pub fn misrouted(delivered: &str, method: Method, operation: Operation) -> Option<String> {
    let expected = routing_key(method, operation);
    if delivered == expected {
        return None;
    }
    let shown = if is_command_key(delivered) {
        delivered
    } else {
        "(not a command routing key)"
    };
    Some(format!(
        "routing key {shown} does not match the command: method {} operation {} route to {expected}",
        method.as_str(),
        operation.as_str()
    ))
}

/// Whether `key` is `<provider>.<operation>` of names payfleet knows.
fn is_command_key(key: &str) -> bool {
    key.split_once('.').is_some_and(|(provider, operation)| {
        ProviderName::ALL.iter().any(|p| p.as_str() == provider)
            && Operation::ALL.iter().any(|o| o.as_str() == operation)
    })
}

/// What the bus gave us, after decoding.
#[derive(Debug)]
pub enum Decoded {
    Valid(Box<Command>),
    /// Has a usable key, so it is answered with a `rejected` event.
    Invalid(Invalid),
    /// Not JSON, or no usable key: only the dead-letter queue can hold it.
    Undecodable(String),
}

#[derive(Debug, Clone)]
pub struct Invalid {
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    pub method: Option<Method>,
    pub operation: Option<Operation>,
    pub amount: Option<Money>,
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command {} is invalid: {}", self.key, self.reason)
    }
}

/// A command: what to pay, how, and the key that makes it unique. `method` and
/// `operation` choose the shape of `details` and route the command as
/// `<provider>.<operation>`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Command")]
pub(super) struct Envelope {
    /// The contract version.
    #[schemars(extend("const" = CONTRACT_VERSION))]
    version: u32,
    #[allow(dead_code)] // parsed once before the envelope; kept so deny_unknown_fields allows it
    idempotency_key: IdempotencyKey,
    method: Method,
    operation: Operation,
    amount: Money,
    /// After this instant the command is not sent to the provider; it is answered
    /// `failed` instead (RFC 3339).
    #[serde(default)]
    deadline: Option<DateTime<Utc>>,
    /// The method's own fields: their shape depends on `method` and `operation`.
    details: serde_json::Value,
    /// The provider account to use (configured under the provider's `accounts`); the
    /// default account when absent.
    #[serde(default)]
    #[schemars(pattern(super::ACCOUNT_PATTERN))]
    account: Option<String>,
}

/// The largest body a command may have: commands are a few KB at most, and a body is
/// parsed whole in memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Decodes and validates one message body; `key` keys the card data in its fingerprint.
/// Reasons name fields and what they expect, never the values given (see
/// [`super::reason`]).
pub fn decode(body: &[u8], fingerprint_key: &FingerprintKey) -> Decoded {
    if body.len() > MAX_BODY_BYTES {
        return Decoded::Undecodable(format!(
            "body is {} bytes; a command has at most {MAX_BODY_BYTES}",
            body.len()
        ));
    }
    let (value, out_of_range) = match reason::lenient_json(body) {
        Ok((v @ serde_json::Value::Object(_), out_of_range)) => (v, out_of_range),
        Ok(_) => return Decoded::Undecodable("body is JSON but not an object".into()),
        Err(e) => {
            return Decoded::Undecodable(format!(
                "body is not JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ));
        }
    };
    let key = match value.get("idempotency_key") {
        Some(serde_json::Value::String(s)) => match IdempotencyKey::parse(s.as_str()) {
            Ok(k) => k,
            Err(e) => return Decoded::Undecodable(e),
        },
        Some(_) => return Decoded::Undecodable("idempotency_key must be a string".into()),
        None => return Decoded::Undecodable("idempotency_key is missing".into()),
    };
    let fingerprint = Fingerprint::of(&value, fingerprint_key);
    let invalid = |reason: String| {
        let method = value
            .get("method")
            .and_then(|m| Method::deserialize(m).ok());
        let operation = value
            .get("operation")
            .and_then(|o| Operation::deserialize(o).ok());
        let amount = value.get("amount").and_then(|a| Money::deserialize(a).ok());
        Decoded::Invalid(Invalid {
            key: key.clone(),
            fingerprint: fingerprint.clone(),
            method,
            operation,
            amount,
            reason,
        })
    };
    if let Some(path) = out_of_range {
        return invalid(format!("{path}: a number out of range"));
    }
    let env: Envelope = match reason::parse(&value, "") {
        Ok(env) => env,
        Err(reason) => return invalid(reason),
    };
    if env.version != CONTRACT_VERSION {
        return invalid(format!("version must be {CONTRACT_VERSION}"));
    }
    if let Some(account) = &env.account
        && !valid_account(account)
    {
        return invalid("account is not an account name (1 to 64 of a-z, 0-9, _, -)".into());
    }
    let details = match (env.method, env.operation) {
        (Method::Homebank, Operation::Payout) => {
            HomebankPayout::parse(env.details, env.amount).map(Details::HomebankPayout)
        }
        (Method::GooglePay, Operation::Payment) => {
            GooglePay::parse(env.details, env.amount).map(Details::EpayGooglePay)
        }
        (Method::P2p, Operation::Transfer) => {
            P2pTransfer::parse(env.details, env.amount).map(Details::EpayP2pTransfer)
        }
        (Method::P2p, Operation::Confirm3ds) => {
            Confirm3ds::parse(env.details).map(Details::EpayConfirm3ds)
        }
        (Method::BanksOfIndia, Operation::Sale) => {
            IndiaSale::parse(env.details, env.amount).map(Details::IndiaSale)
        }
        (Method::BanksOfIndia, Operation::Payout) => {
            IndiaPayout::parse(env.details, env.amount).map(Details::IndiaPayout)
        }
        (Method::BanksOfIndia, Operation::Refund) => {
            IndiaRefund::parse(env.details, env.amount).map(Details::IndiaRefund)
        }
        (method, operation) => Err(format!(
            "method {} has no operation {}",
            method.as_str(),
            operation.as_str()
        )),
    };
    match details {
        Ok(details) => Decoded::Valid(Box::new(Command {
            key,
            method: env.method,
            operation: env.operation,
            amount: env.amount,
            deadline: env.deadline,
            details,
            fingerprint,
            account: env.account,
        })),
        Err(reason) => invalid(reason),
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
