//! What the simulator saw, at `GET /sandbox/stats`. `executed` is the ground truth for
//! "paid twice" checks: it counts money actually moved, per payment id / invoice id.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Requests per endpoint (`POST /v2/...`), including refused ones.
    pub requests: BTreeMap<String, u64>,
    /// How many times each payment id (ECommPay) or invoice id (epay) moved money.
    /// Must never exceed 1.
    pub executed: BTreeMap<String, u64>,
    /// Ids executed more than once (always empty unless something is badly wrong).
    pub executed_more_than_once: Vec<String>,
    /// Submissions refused because their payment id / invoice id already existed.
    pub duplicate_submissions_refused: u64,
    /// Requests refused for a bad signature or bad fields.
    pub invalid_requests_refused: u64,
    pub callbacks: CallbackStats,
    /// epay tokens issued, and token requests or token uses refused.
    #[serde(default)]
    pub epay_tokens_issued: u64,
    #[serde(default)]
    pub epay_tokens_refused: u64,
    /// Faults and configured answers injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Every provider request by account (ECommPay's `general.project_id`, or
    /// `unknown`) and Unix second, refused ones included.
    #[serde(default)]
    pub per_account_per_second: BTreeMap<String, BTreeMap<u64, u64>>,
    /// Requests answered 429 by the simulator's own limits, by account.
    #[serde(default)]
    pub throttled: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallbackStats {
    /// Callbacks scheduled (one per outcome, postLinks included).
    pub scheduled: u64,
    /// HTTP attempts made, resends included.
    pub attempts: u64,
    /// Callbacks answered with HTTP 200.
    pub delivered: u64,
    /// Callbacks abandoned after the last attempt.
    pub abandoned: u64,
}

impl Stats {
    pub fn request(&mut self, endpoint: &str) {
        *self.requests.entry(endpoint.to_owned()).or_default() += 1;
    }

    pub fn account_request(&mut self, account: &str, unix_second: u64) {
        *self
            .per_account_per_second
            .entry(account.to_owned())
            .or_default()
            .entry(unix_second)
            .or_default() += 1;
    }

    pub fn fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_owned()).or_default() += 1;
    }

    pub fn executed(&mut self, id: &str) {
        let n = self.executed.entry(id.to_owned()).or_default();
        *n += 1;
        if *n == 2 {
            self.executed_more_than_once.push(id.to_owned());
        }
    }
}
