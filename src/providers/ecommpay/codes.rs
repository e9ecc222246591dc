//! ECommPay codes payfleet relies on.
//!
//! Codes `0`, `20000`, `20602` and `3283` are from the provider documents, and `3061`
//! "Transaction not found" is Gate's answer to a status request for a payment it never
//! registered. The documents give no code for a payment id already used, so payfleet
//! never learns from a refusal's code that Gate has a payment: a status answer says so.

pub const SUCCESS: &str = "0";
/// General decline (Banks of India document).
pub const GENERAL_DECLINE: &str = "20000";
/// HomeBank: the customer did not cash out in time (HomeBank document).
pub const TIME_OUT: &str = "20602";
/// Refund larger than the purchase (Banks of India document).
pub const REFUND_TOO_LARGE: &str = "3283";

/// "Transaction not found": no payment with this `payment_id` in the project (status
/// request), whatever the HTTP status and whether signed or not.
pub const NOT_FOUND: &str = "3061";
