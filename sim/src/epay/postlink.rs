//! postLink / failurePostLink: "Link for sending the authorization result to the
//! store"; "Notification of unsuccessful payment, if not filled in, the information
//! will be sent to the address specified in postLink" (P2P document). postLinks carry
//! no signature; they echo the token's `secret_hash` (ARCHITECTURE.md). Resent until
//! HTTP 200; a configured answer replays a finished one later.

use super::answer::reference;
use super::book::Txn;
use crate::callbacks::{deliver, deliver_after};
use crate::faults::roll;
use crate::{Sandbox, money};
use serde_json::{Value, json};
use std::sync::Arc;

/// The postLink body of a finished transaction.
pub fn body(sandbox: &Sandbox, t: &Txn) -> Value {
    let ok = t.status == "AUTH";
    json!({
        "id": t.id,
        "invoiceId": t.invoice_id,
        "amount": money::epay_json(t.amount_minor, &t.currency),
        "currency": t.currency,
        "description": t.description,
        "accountId": t.account_id,
        "cardMask": t.card_mask,
        "code": if ok { "ok" } else { "error" },
        "reason": t.reason,
        "reasonCode": t.reason_code,
        "reference": if ok { reference(t) } else { String::new() },
        "terminal": sandbox.settings.epay_terminal_id,
        "secret_hash": t.secret_hash,
        "dateTime": chrono::Utc::now().to_rfc3339(),
    })
}

/// Where the outcome of `t` is sent; `None` when the request named no link.
pub fn target(t: &Txn) -> Option<String> {
    let url = if t.status == "AUTH" || t.failure_post_link.is_empty() {
        &t.post_link
    } else {
        &t.failure_post_link
    };
    (!url.is_empty()).then(|| url.clone())
}

/// Sends the postLink of a finished transaction (and, when configured, its replay).
pub fn send(sandbox: &Arc<Sandbox>, t: &Txn) {
    let Some(url) = target(t) else {
        return;
    };
    let body = body(sandbox, t);
    let answers = sandbox.answers();
    if roll(answers.epay_postlink_replay_rate) {
        sandbox.with_stats(|s| s.fault("postlink_replay"));
        deliver_after(
            sandbox.clone(),
            url.clone(),
            body.clone(),
            answers.epay_replay_ms,
        );
    }
    deliver(sandbox.clone(), url, body);
}
