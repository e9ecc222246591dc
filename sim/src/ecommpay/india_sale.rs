//! `POST /v2/payment/banks/india/sale` (Banks of India, "Purchase by using Gate"):
//! `general`, `payment` (amount "in minor units", currency), `customer` (id,
//! ip_address), `return_url.success`. Gate accepts, then "sends the callback with the
//! redirection data" (`redirect_data`: url, method, body): to the bank's page when the
//! request names a bank (`account.bank_id`), else to the bank selection page
//! ([`super::india_pages`]). The customer's result comes by a second callback; "a
//! payment is automatically declined, if its waiting time exceeds the threshold time"
//! (60 minutes: `india_sale_threshold_ms`).
//!
//! Test rules: `customer.id` starting with `decline` → declined at once, 20000, no
//! redirect; at the bank, `result=success` pays, `result=decline` declines (20000).

use super::book::{self, OpStatus, Payment, Sale};
use super::{callbacks, codes, gate, india_banks, india_pages, india_payout};
use crate::{Sandbox, money};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

pub const PATH: &str = "/v2/payment/banks/india/sale";

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let req = match gate::accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let amount = money::gate_minor(&req.body["payment"]["amount"]);
    let Some(amount) = amount.filter(|_| req.text("payment", "currency") == Some("INR")) else {
        return req.invalid(
            &sandbox,
            "payment.amount and payment.currency INR are required",
        );
    };
    if let Err(a) = req.require(&sandbox, "customer", &["id", "ip_address"]) {
        return a;
    }
    if let Err(a) = req.require(&sandbox, "return_url", &["success"]) {
        return a;
    }
    let bank_id = match &req.body["account"]["bank_id"] {
        Value::Null => None,
        v => match india_banks::listed(v) {
            Some(id) => Some(id),
            None => return req.invalid(&sandbox, "account.bank_id is not a supported bank"),
        },
    };
    let customer_id = req.text("customer", "id").unwrap_or_default();
    let declined = customer_id.starts_with("decline");
    let mut op = book::operation("sale", amount, "INR", &req.request_id);
    if declined {
        (op.status, op.code, op.message) = (OpStatus::Decline, codes::GENERAL_DECLINE, "decline");
    }
    // The pages are served by this simulator, at the address the request came to.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let sale = Sale {
        return_url: req
            .text("return_url", "success")
            .unwrap_or_default()
            .to_owned(),
        bank_id,
        redirect_url: india_pages::url(host, &req.payment_id, bank_id.is_some()),
    };
    let payment = Payment {
        payment_id: req.payment_id.clone(),
        project_id: req.project_id,
        payment_type: "purchase",
        method: india_payout::METHOD,
        description: req
            .text("payment", "description")
            .unwrap_or_default()
            .to_owned(),
        customer: json!({ "id": customer_id }),
        account: None,
        op,
        sale: Some(sale),
        refund: None,
    };
    let Some(payment) = book::register(&sandbox, payment) else {
        return req.duplicate(&sandbox);
    };
    callbacks::call_back(&sandbox, &payment);
    if !declined {
        expire_later(sandbox.clone(), req.payment_id.clone());
    }
    req.accepted()
}

/// Declines a purchase whose customer has not come back within the threshold time.
fn expire_later(sandbox: Arc<Sandbox>, payment_id: String) {
    tokio::spawn(async move {
        let threshold = sandbox.settings.india_sale_threshold_ms;
        tokio::time::sleep(std::time::Duration::from_millis(threshold)).await;
        let expired = (OpStatus::Decline, codes::GENERAL_DECLINE, "decline");
        india_pages::finish(&sandbox, &payment_id, None, expired);
    });
}

/// Plays the customer: follows an `action_required` event's redirect (`url`) to the
/// simulator's bank (or bank selection) page and pays there (`result` `success`) or
/// declines. On the selection page it picks `bank_id`. Returns the page's HTTP status.
pub async fn act_as_customer(
    http: &reqwest::Client,
    action: &Value,
    result: &str,
    bank_id: u32,
) -> Result<u16, reqwest::Error> {
    let url = action["url"].as_str().unwrap_or_default();
    let page = http.get(url).send().await?;
    if !page.status().is_success() {
        return Ok(page.status().as_u16());
    }
    let bank = bank_id.to_string();
    let mut form = vec![("result", result)];
    if url.contains(india_pages::SELECT_MARK) {
        form.push(("bank_id", &bank));
    }
    Ok(http.post(url).form(&form).send().await?.status().as_u16())
}
