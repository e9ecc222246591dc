//! ECommPay codes. From the documents: `0` "Success", `20000` "General decline" /
//! "decline" (Banks of India callbacks), `20602` "Time-out" (HomeBank declined payout
//! callback), `3283` "Refund amount more than init amount" (Banks of India declined
//! refund callback). The documents list no request-level codes; the rest are marked.

pub const SUCCESS: &str = "0";
pub const GENERAL_DECLINE: &str = "20000";
pub const TIME_OUT: &str = "20602";
pub const REFUND_TOO_LARGE: &str = "3283";

/// Gate's "Transaction not found" (the brief's code; the documents give none): a status
/// or refund request for a payment Gate never registered.
pub const NOT_FOUND: &str = "3061";
pub const NOT_FOUND_MESSAGE: &str = "Transaction not found";
/// A payment id the project already used (simulator's code: the documents give none).
pub const DUPLICATE: &str = "3057";
pub const DUPLICATE_MESSAGE: &str = "Payment with such payment_id already exists";
/// Wrong signature (simulator's code, as payfleet's sandbox had it).
pub const INVALID_SIGNATURE: &str = "1201";
/// A required parameter missing or malformed (simulator's code, as payfleet's sandbox
/// had it).
pub const INVALID_PARAMETERS: &str = "1202";
/// A Banks of India payout outside the provider's working hours (simulator's code).
pub const OUTSIDE_WORKING_HOURS: &str = "3400";
