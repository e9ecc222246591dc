//! The tokens the simulated OAuth server issued and the transactions epay knows.

use std::collections::HashMap;
use std::time::Instant;

/// A token: "an original token must be obtained and used for each transaction" (Google
/// Pay document), so a payment token is bound to its invoiceID, amount and currency.
#[derive(Debug, Clone)]
pub struct Grant {
    pub scope: String,
    /// `None` for a token asked without invoiceID (check-status).
    pub invoice_id: Option<String>,
    pub amount_minor: Option<u64>,
    pub currency: Option<String>,
    /// The terminal the token was asked for (`None` when absent: check-status 104).
    pub terminal: Option<String>,
    pub secret_hash: String,
    pub expires: Instant,
    /// Refused after its first use (configured answer).
    pub single_use: bool,
    pub used: bool,
}

/// Which document's API made the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Google Pay (`/payment/cryptopay`).
    Payment,
    /// P2P transfer (`/p2p/transfer`).
    P2p,
}

#[derive(Debug, Clone)]
pub struct Txn {
    pub id: String,
    pub invoice_id: String,
    pub kind: Kind,
    pub amount_minor: u64,
    pub currency: String,
    pub description: String,
    pub account_id: String,
    /// statusName: `NEW` (waiting for 3-D Secure), `AUTH`, `FAILED` or `3D`.
    pub status: &'static str,
    pub reason_code: i64,
    pub reason: String,
    pub card_mask: String,
    pub secret_hash: String,
    pub post_link: String,
    pub failure_post_link: String,
    /// The 3-D Secure session (`md`) while one is pending.
    pub md: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
    /// check-status finds it from then on (configured lag).
    pub visible_from: Instant,
}

#[derive(Default)]
pub struct Book {
    pub tokens: HashMap<String, Grant>,
    pub txns: HashMap<String, Txn>,
}
