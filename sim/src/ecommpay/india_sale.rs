//! `POST /v2/payment/banks/india/sale` and the "bank" the customer is sent to.
//!
//! Gate accepts the purchase, then calls back with `redirect_data`: the bank's page
//! when the request named a bank (`account.bank_id`), otherwise the provider's bank
//! selection page. A test, the demo or a person opens that page and pays or declines
//! there (`POST` to the same URL with `result=success|decline`, plus `bank_id` on the
//! selection page); the sandbox then sends the final callback.
//!
//! Test rules (deterministic, documented in the README):
//! - `customer.id` starting with `decline` → declined at once, code 20000, no redirect;
//! - the customer choosing `decline` at the bank → declined, code 20000 "decline";
//! - paying at the bank → success, code 0;
//! - no customer within `sandbox.india_sale_threshold_ms` (the document's 60 minutes)
//!   → declined, code 20000.

use super::{
    Answer, Payment, accept, call_back, india_banks, invalid, lookup, register, signed_report,
};
use crate::Sandbox;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use payfleet::providers::ecommpay::{codes, india, india_sale};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub const PATH: &str = india_sale::PATH;
/// The bank's payment page, and the provider's bank selection page.
pub const BANK_PAGE: &str = "/sandbox/ecommpay/india/bank/{payment_id}";
pub const SELECT_PAGE: &str = "/sandbox/ecommpay/india/select/{payment_id}";

const AWAITING: &str = "awaiting redirect result";

/// What the simulated Gate keeps of a Banks of India purchase beyond its payment.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub return_url: String,
    pub bank_id: Option<u32>,
    /// Where the customer is sent.
    pub redirect_url: String,
    pub refund: Option<super::india_refund::Refund>,
}

#[derive(Default)]
pub struct Purchases {
    pub by_id: HashMap<String, Purchase>,
}

/// The request's amount when it is a positive number of INR minor units.
pub fn inr_amount(body: &Value) -> Option<u64> {
    let amount = body["payment"]["amount"].as_u64().filter(|a| *a > 0)?;
    (body["payment"]["currency"].as_str() == Some("INR")).then_some(amount)
}

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, raw: Bytes) -> Answer {
    let req = match accept(&sandbox, &format!("POST {PATH}"), &raw) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let b = &req.body;
    let Some(amount) = inr_amount(b) else {
        return invalid(
            &sandbox,
            &req,
            "payment.amount and payment.currency INR are required",
        );
    };
    for field in ["id", "ip_address"] {
        if b["customer"][field].as_str().is_none_or(str::is_empty) {
            return invalid(&sandbox, &req, &format!("customer.{field} is required"));
        }
    }
    let Some(return_url) = b["return_url"]["success"]
        .as_str()
        .filter(|u| !u.is_empty())
    else {
        return invalid(&sandbox, &req, "return_url.success is required");
    };
    let bank_id = match &b["account"]["bank_id"] {
        Value::Null => None,
        v => match v.as_u64().and_then(|id| u32::try_from(id).ok()) {
            Some(id) if india_banks::name(id).is_some() => Some(id),
            _ => return invalid(&sandbox, &req, "account.bank_id is not a supported bank"),
        },
    };
    let declined = b["customer"]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("decline"));
    let (status, code, message) = if declined {
        ("decline", codes::GENERAL_DECLINE, "decline")
    } else {
        (AWAITING, codes::SUCCESS, "Awaiting redirect result")
    };
    let payment = Payment {
        payment_type: "purchase",
        operation_type: "sale",
        method: india::METHOD_NAME,
        operation_id: 0,
        amount,
        currency: "INR".to_owned(),
        customer: json!({ "id": b["customer"]["id"] }),
        status,
        code,
        message,
    };
    let project_id = sandbox.settings.ecommpay_project_id;
    let payment = match register(&sandbox, &req, payment) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    // The pages are served by this sandbox, at the address the request came to.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let page = if bank_id.is_some() {
        BANK_PAGE
    } else {
        SELECT_PAGE
    };
    let purchase = Purchase {
        return_url: return_url.to_owned(),
        bank_id,
        redirect_url: format!(
            "http://{host}{}",
            page.replace("{payment_id}", &req.payment_id)
        ),
        refund: None,
    };
    let callback = report(&sandbox, &req.payment_id, &payment, &purchase, false);
    sandbox
        .india
        .lock()
        .expect("india lock")
        .by_id
        .insert(req.payment_id.clone(), purchase);
    call_back(&sandbox, callback);
    if !declined {
        expire_later(sandbox.clone(), req.payment_id.clone());
    }
    req.accepted(project_id)
}

/// A callback or status answer about a purchase: with `redirect_data` while the
/// customer has not come back, with the refund after one was asked for.
pub fn report(
    sandbox: &Sandbox,
    payment_id: &str,
    payment: &Payment,
    purchase: &Purchase,
    operations_list: bool,
) -> Value {
    if let Some(refund) = &purchase.refund {
        return super::india_refund::report(sandbox, payment_id, payment, refund, operations_list);
    }
    let mut body = signed_report(sandbox, payment_id, payment, operations_list);
    if payment.status == AWAITING {
        body["redirect_data"] = json!({
            "url": purchase.redirect_url,
            "method": "GET",
            "body": {},
        });
        super::sign(sandbox, &mut body);
    }
    body
}

/// The status answer for a Banks of India purchase; `None` for other payments.
pub fn status_answer(sandbox: &Sandbox, payment_id: &str, payment: &Payment) -> Option<Value> {
    let purchase = purchase(sandbox, payment_id)?;
    Some(report(sandbox, payment_id, payment, &purchase, true))
}

fn purchase(sandbox: &Sandbox, payment_id: &str) -> Option<Purchase> {
    sandbox
        .india
        .lock()
        .expect("india lock")
        .by_id
        .get(payment_id)
        .cloned()
}

pub type Page = (StatusCode, Html<String>);

fn page(status: StatusCode, title: &str, body: &str) -> Page {
    (
        status,
        Html(format!(
            "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
        )),
    )
}

/// The purchase awaiting its customer, or the page saying why there is none.
fn awaiting(sandbox: &Sandbox, payment_id: &str) -> Result<(Payment, Purchase), Page> {
    match (lookup(sandbox, payment_id), purchase(sandbox, payment_id)) {
        (Some(p), Some(purchase)) if p.status == AWAITING => Ok((p, purchase)),
        (Some(p), Some(_)) => Err(page(
            StatusCode::CONFLICT,
            "Payment already completed",
            &format!("<p>This payment is {}.</p>", p.status),
        )),
        _ => Err(page(StatusCode::NOT_FOUND, "No such payment", "")),
    }
}

fn form(payment: &Payment, choose_bank: bool) -> String {
    let banks = if choose_bank {
        let options: String = india_banks::BANKS
            .iter()
            .map(|(id, name)| format!("<option value=\"{id}\">{name}</option>"))
            .collect();
        format!("<label>Bank <select name=\"bank_id\">{options}</select></label>")
    } else {
        String::new()
    };
    format!(
        "<p>Pay {}.{:02} INR</p><form method=\"post\">{banks}\
         <button name=\"result\" value=\"success\">Pay</button>\
         <button name=\"result\" value=\"decline\">Decline</button></form>",
        payment.amount / 100,
        payment.amount % 100
    )
}

pub async fn bank_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_id): Path<String>,
) -> Page {
    show(&sandbox, &payment_id, false)
}

pub async fn select_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_id): Path<String>,
) -> Page {
    show(&sandbox, &payment_id, true)
}

fn show(sandbox: &Sandbox, payment_id: &str, choosing: bool) -> Page {
    match awaiting(sandbox, payment_id) {
        Ok((p, _)) if choosing => page(StatusCode::OK, "Choose your bank", &form(&p, true)),
        Ok((p, purchase)) => {
            let bank = purchase
                .bank_id
                .and_then(india_banks::name)
                .unwrap_or("Bank");
            page(StatusCode::OK, bank, &form(&p, false))
        }
        Err(page) => page,
    }
}

/// What the customer does at the bank.
#[derive(Debug, Deserialize)]
pub struct Choice {
    /// `success` (pays) or `decline`.
    pub result: String,
    /// Required on the selection page.
    #[serde(default)]
    pub bank_id: Option<u32>,
}

pub async fn pay(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_id): Path<String>,
    Form(choice): Form<Choice>,
) -> Page {
    complete(&sandbox, &payment_id, choice, false)
}

pub async fn select_and_pay(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_id): Path<String>,
    Form(choice): Form<Choice>,
) -> Page {
    complete(&sandbox, &payment_id, choice, true)
}

fn complete(sandbox: &Arc<Sandbox>, payment_id: &str, choice: Choice, choosing: bool) -> Page {
    let (_, mut purchase) = match awaiting(sandbox, payment_id) {
        Ok(found) => found,
        Err(page) => return page,
    };
    if choosing {
        match choice.bank_id.filter(|id| india_banks::name(*id).is_some()) {
            Some(id) => purchase.bank_id = Some(id),
            None => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Choose a bank",
                    "<p>bank_id is not a supported bank.</p>",
                );
            }
        }
    }
    let (status, code, message) = match choice.result.as_str() {
        "success" => ("success", codes::SUCCESS, "Success"),
        "decline" => ("decline", codes::GENERAL_DECLINE, "decline"),
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Unknown choice",
                "<p>result must be success or decline.</p>",
            );
        }
    };
    let return_url = purchase.return_url.clone();
    if !finish(sandbox, payment_id, purchase, (status, code, message)) {
        return page(StatusCode::CONFLICT, "Payment already completed", "");
    }
    let title = if status == "success" {
        "Paid"
    } else {
        "Declined"
    };
    page(
        StatusCode::OK,
        title,
        &format!("<p><a href=\"{return_url}\">Return to the shop</a></p>"),
    )
}

/// Settles a purchase still awaiting its customer and calls back; false when it was
/// already settled.
fn finish(
    sandbox: &Arc<Sandbox>,
    payment_id: &str,
    purchase: Purchase,
    (status, code, message): (&'static str, &'static str, &'static str),
) -> bool {
    let payment = {
        let mut payments = sandbox.ecommpay.lock().expect("payments lock");
        let Some(p) = payments
            .get_mut(payment_id)
            .filter(|p| p.status == AWAITING)
        else {
            return false;
        };
        (p.status, p.code, p.message) = (status, code, message);
        p.clone()
    };
    if status == "success" {
        sandbox
            .stats
            .lock()
            .expect("stats lock")
            .executed(payment_id);
    }
    sandbox
        .india
        .lock()
        .expect("india lock")
        .by_id
        .insert(payment_id.to_owned(), purchase.clone());
    call_back(
        sandbox,
        report(sandbox, payment_id, &payment, &purchase, false),
    );
    true
}

/// The provider declines a purchase whose customer has not come back within the
/// threshold time (`sandbox.india_sale_threshold_ms`).
fn expire_later(sandbox: Arc<Sandbox>, payment_id: String) {
    tokio::spawn(async move {
        let threshold = sandbox.settings.india_sale_threshold_ms;
        tokio::time::sleep(std::time::Duration::from_millis(threshold)).await;
        if let Ok((_, purchase)) = awaiting(&sandbox, &payment_id) {
            let expired = ("decline", codes::GENERAL_DECLINE, "decline");
            finish(&sandbox, &payment_id, purchase, expired);
        }
    });
}

/// Plays the customer: follows an `action_required` event's redirect to the sandbox's
/// bank (or bank selection) page and pays there (`result` `success`) or declines. On
/// the selection page it picks `bank_id`. Returns the page's HTTP status.
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
    if url.contains("/select/") {
        form.push(("bank_id", &bank));
    }
    Ok(http.post(url).form(&form).send().await?.status().as_u16())
}
