//! The pages a Banks of India purchase redirects its customer to: the bank's page and
//! the provider's bank selection page ("The customer selects bank for payment"). A
//! `POST` with `result=success|decline` (and `bank_id` on the selection page) is the
//! customer's answer.

use super::book::{self, OpStatus, Payment};
use super::{callbacks, codes, india_banks};
use crate::{Sandbox, money};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use serde::Deserialize;
use std::sync::Arc;

pub const BANK_PAGE: &str = "/sandbox/ecommpay/india/bank/{payment_id}";
pub const SELECT_PAGE: &str = "/sandbox/ecommpay/india/select/{payment_id}";
/// What tells a selection page's URL from a bank page's.
pub const SELECT_MARK: &str = "/india/select/";

pub type Page = (StatusCode, Html<String>);

/// The URL the customer is sent to.
pub fn url(host: &str, payment_id: &str, bank_chosen: bool) -> String {
    let page = if bank_chosen { BANK_PAGE } else { SELECT_PAGE };
    let id = crate::web::percent(payment_id);
    format!("http://{host}{}", page.replace("{payment_id}", &id))
}

use crate::web::html as esc;

fn page(status: StatusCode, title: &str, body: &str) -> Page {
    let title = esc(title);
    (
        status,
        Html(format!(
            "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
        )),
    )
}

/// The purchase awaiting its customer, or the page saying why there is none.
fn awaiting(sandbox: &Sandbox, payment_id: &str) -> Result<Payment, Page> {
    match book::lookup(sandbox, payment_id).filter(|p| p.sale.is_some()) {
        Some(p) if p.op.status == OpStatus::AwaitingRedirect => Ok(p),
        Some(p) => Err(page(
            StatusCode::CONFLICT,
            "Payment already completed",
            &format!("<p>This payment is {}.</p>", p.op.status.as_str()),
        )),
        None => Err(page(StatusCode::NOT_FOUND, "No such payment", "")),
    }
}

fn form(p: &Payment, choose_bank: bool) -> String {
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
        "<p>Pay {} INR</p><form method=\"post\">{banks}\
         <button name=\"result\" value=\"success\">Pay</button>\
         <button name=\"result\" value=\"decline\">Decline</button></form>",
        money::display(p.op.amount)
    )
}

pub async fn bank_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_id): Path<String>,
) -> Page {
    match awaiting(&sandbox, &payment_id) {
        Ok(p) => {
            let bank = p
                .sale
                .as_ref()
                .and_then(|s| s.bank_id)
                .and_then(india_banks::name);
            page(StatusCode::OK, bank.unwrap_or("Bank"), &form(&p, false))
        }
        Err(page) => page,
    }
}

pub async fn select_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_id): Path<String>,
) -> Page {
    match awaiting(&sandbox, &payment_id) {
        Ok(p) => page(StatusCode::OK, "Choose your bank", &form(&p, true)),
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
    let p = match awaiting(sandbox, payment_id) {
        Ok(p) => p,
        Err(page) => return page,
    };
    let bank_id = match choice.bank_id.filter(|id| india_banks::name(*id).is_some()) {
        None if choosing => {
            return page(
                StatusCode::BAD_REQUEST,
                "Choose a bank",
                "<p>bank_id is not a supported bank.</p>",
            );
        }
        chosen => chosen.filter(|_| choosing),
    };
    let outcome = match choice.result.as_str() {
        "success" => (OpStatus::Success, codes::SUCCESS, "Success"),
        "decline" => (OpStatus::Decline, codes::GENERAL_DECLINE, "decline"),
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Unknown choice",
                "<p>result must be success or decline.</p>",
            );
        }
    };
    if !finish(sandbox, payment_id, bank_id, outcome) {
        return page(StatusCode::CONFLICT, "Payment already completed", "");
    }
    let title = if outcome.0 == OpStatus::Success {
        "Paid"
    } else {
        "Declined"
    };
    let back = p.sale.map(|s| s.return_url).unwrap_or_default();
    page(
        StatusCode::OK,
        title,
        &format!("<p><a href=\"{}\">Return to the shop</a></p>", esc(&back)),
    )
}

/// Settles a purchase still awaiting its customer and calls back; `false` when it was
/// already settled.
pub fn finish(
    sandbox: &Arc<Sandbox>,
    payment_id: &str,
    bank_id: Option<u32>,
    (status, code, message): (OpStatus, &'static str, &'static str),
) -> bool {
    let payment = {
        let mut book = sandbox.ecommpay.lock().expect("payments lock");
        let Some(p) = book
            .get_mut(payment_id)
            .filter(|p| p.sale.is_some() && p.op.status == OpStatus::AwaitingRedirect)
        else {
            return false;
        };
        (p.op.status, p.op.code, p.op.message) = (status, code, message);
        p.op.date = book::now();
        if let (Some(sale), Some(id)) = (p.sale.as_mut(), bank_id) {
            sale.bank_id = Some(id);
        }
        p.clone()
    };
    if status == OpStatus::Success {
        sandbox.with_stats(|s| s.executed(payment_id));
    }
    callbacks::call_back(sandbox, &payment);
    true
}
