//! `POST /payment/confirm` with `{"ID", "PaRes", "MD"}`: "Payment confirmation (sending
//! the result of the 3DSecure password check)" (P2P document). The document's answer is
//! a redirect: "Success <https://epay.homebank.kz/payform/success.html> Params amount
//! currency invoiceID accountID description reference language cardid"; "Error
//! <https://epay.homebank.kz/payform/> invoiceID code message". By default the
//! simulator answers JSON (as payfleet's sandbox did); `epay_confirm_redirect_rate`
//! gives the document's 302 redirects, `epay_confirm_page_rate` the page they lead to
//! (HTTP 200, HTML).

use super::answer::{self, SECURE3D_FAILED};
use super::{accept, authorise, decline, invalid, postlink};
use crate::faults::roll;
use crate::{Sandbox, money, web};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub const PATH: &str = "/payment/confirm";
pub const SUCCESS_PAGE: &str = "https://epay.homebank.kz/payform/success.html";
pub const ERROR_PAGE: &str = "https://epay.homebank.kz/payform/";

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "PaRes")]
    pa_res: String,
    #[serde(rename = "MD")]
    md: String,
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

pub async fn handle(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    let b: Body = match accept(&sandbox, PATH, &raw, "ID, PaRes and MD are required") {
        Ok(b) => b,
        Err(a) => return a,
    };
    let found = {
        let book = sandbox.epay.lock().expect("epay lock");
        book.txns.values().find(|t| t.id == b.id).cloned()
    };
    let Some(mut txn) = found else {
        return invalid(&sandbox, "transaction not found", "");
    };
    if let Err(a) = authorise(&sandbox, &headers, None, Some(&txn.invoice_id)) {
        return a;
    }
    let pending = {
        let mut book = sandbox.epay.lock().expect("epay lock");
        match book.txns.get_mut(&txn.invoice_id) {
            Some(t) if t.status == "NEW" && t.md.as_deref() == Some(b.md.as_str()) => {
                if b.pa_res == "FAIL" {
                    decline(t, "3D", SECURE3D_FAILED, "3-D Secure verification failed");
                } else {
                    t.status = "AUTH";
                }
                txn = t.clone();
                true
            }
            _ => false,
        }
    };
    if !pending {
        return invalid(
            &sandbox,
            "no 3-D Secure check pending for this ID and MD",
            &txn.invoice_id,
        );
    }
    if txn.status == "AUTH" {
        sandbox.with_stats(|s| s.executed(&txn.invoice_id));
    }
    postlink::send(&sandbox, &txn);
    if roll(sandbox.answers().epay_confirm_redirect_rate) {
        sandbox.with_stats(|s| s.fault("confirm_redirect"));
        return if txn.status == "AUTH" {
            let q = web::query(&[
                (
                    "amount",
                    money::epay_decimal_text(txn.amount_minor, &txn.currency),
                ),
                ("currency", txn.currency.clone()),
                ("invoiceID", txn.invoice_id.clone()),
                ("accountID", txn.account_id.clone()),
                ("description", txn.description.clone()),
                ("reference", answer::reference(&txn)),
                ("language", "rus".to_owned()),
                ("cardid", String::new()),
            ]);
            redirect(format!("{SUCCESS_PAGE}?{q}"))
        } else {
            let q = web::query(&[
                ("invoiceID", txn.invoice_id.clone()),
                ("code", txn.reason_code.to_string()),
                ("message", txn.reason.clone()),
            ]);
            redirect(format!("{ERROR_PAGE}?{q}"))
        };
    }
    if roll(sandbox.answers().epay_confirm_page_rate) {
        sandbox.with_stats(|s| s.fault("confirm_page"));
        let page = if txn.status == "AUTH" {
            SUCCESS_PAGE
        } else {
            ERROR_PAGE
        };
        let html = format!("<!DOCTYPE html><html><body>payform {page}</body></html>");
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], html).into_response();
    }
    if txn.status != "AUTH" && roll(sandbox.answers().epay_confirm_code_zero_rate) {
        sandbox.with_stats(|s| s.fault("confirm_code_zero"));
        let mut body = answer::base(&txn);
        body["code"] = json!(answer::SUCCESS);
        body["status"] = json!(txn.status);
        body["invoiceID"] = json!(txn.invoice_id);
        return (StatusCode::OK, Json(body)).into_response();
    }
    if txn.status != "AUTH" {
        return answer::failure(
            StatusCode::BAD_REQUEST,
            txn.reason_code,
            &txn.reason,
            &txn.invoice_id,
        );
    }
    let mut body = answer::base(&txn);
    body["code"] = json!(answer::SUCCESS);
    body["status"] = json!("AUTH");
    body["invoiceID"] = json!(txn.invoice_id);
    body["language"] = json!("rus");
    body["cardid"] = json!("");
    (StatusCode::OK, Json(body)).into_response()
}
