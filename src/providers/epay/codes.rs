//! epay codes payfleet relies on.
//!
//! `487` comes from the P2P document, `488` "Invoice already exists" is epay's refusal of
//! an invoice id it already has; the check-status `resultCode`s and `statusName`s from
//! the status document. The documents list no codes for token, locked-card or 3-D
//! Secure failures: the ones marked "sandbox" are the simulator's, and payfleet keys
//! its handling on the kind of answer (HTTP status, `secure3D`), never on them alone,
//! except [`DUPLICATE_INVOICE`].

/// A successful payment answer.
pub const SUCCESS: i64 = 0;
/// "Not permitted to merchant" (P2P document).
pub const NOT_PERMITTED: i64 = 487;
/// The card is locked (sandbox; the P2P document's locked test cards).
pub const CARD_LOCKED: i64 = 454;
/// Card data does not match the card (sandbox).
pub const CARD_DATA_INVALID: i64 = 455;
/// 3-D Secure verification failed (sandbox).
pub const SECURE3D_FAILED: i64 = 456;
/// The bearer token is missing, expired, or issued for another invoice (sandbox).
pub const TOKEN_INVALID: i64 = 1500;
/// "Invoice already exists": epay has a payment with this invoice id, so its outcome
/// comes from check-status and the postLink, never from this refusal.
pub const DUPLICATE_INVOICE: i64 = 488;
/// A required field is missing or malformed (sandbox).
pub const INVALID_REQUEST: i64 = 1502;

/// check-status `resultCode`s (status document; 105 and 109 are not described there).
pub mod result {
    pub const SUCCESS: &str = "100";
    pub const REJECT: &str = "101";
    pub const NOT_FOUND: &str = "102";
    pub const TRY_AGAIN: &str = "103";
    pub const NO_TERMINAL_IN_TOKEN: &str = "104";
    pub const UNDESCRIBED_105: &str = "105";
    pub const WRONG_TERMINAL: &str = "106";
    pub const IN_PROGRESS: &str = "107";
    pub const UNDESCRIBED_109: &str = "109";
}

/// The long scope the Google Pay and status documents ask for.
pub const SCOPE_PAYMENT: &str =
    "webapi usermanagement email_send verification statement statistics payment";
/// The P2P document's scope.
pub const SCOPE_TRANSFER: &str = "transfer";
