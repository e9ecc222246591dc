//! ECommPay codes payfleet and its sandbox both rely on.
//!
//! Codes `0`, `20000`, `20602` and `3283` are from the provider documents. The documents
//! do not list the request-level error codes, so the ones below are the sandbox's and
//! payfleet keys its handling on the kind of refusal, not on those numbers alone.

pub const SUCCESS: &str = "0";
/// General decline (Banks of India document).
pub const GENERAL_DECLINE: &str = "20000";
/// HomeBank: the customer did not cash out in time (HomeBank document).
pub const TIME_OUT: &str = "20602";
/// Refund larger than the purchase (Banks of India document).
pub const REFUND_TOO_LARGE: &str = "3283";

/// A payment with this `payment_id` already exists in the project.
pub const DUPLICATE_PAYMENT_ID: &str = "3061";
/// No payment with this `payment_id` in the project (status request).
pub const PAYMENT_NOT_FOUND: &str = "3062";
/// The request's signature is wrong.
pub const INVALID_SIGNATURE: &str = "1201";
/// A required parameter is missing or malformed.
pub const INVALID_PARAMETERS: &str = "1202";
/// Banks of India payouts outside the provider's working hours (the sandbox's code).
pub const OUTSIDE_WORKING_HOURS: &str = "3400";
