//! ECommPay Gate, simulated: the request checks and answers every Gate endpoint
//! shares, and the payments it remembers.

mod homebank_payout;
pub mod india_banks;
mod india_payout;
mod india_refund;
pub mod india_sale;
mod status;

use super::Sandbox;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use payfleet::providers::ecommpay::{codes, signature};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// A payment the simulated Gate knows.
#[derive(Debug, Clone)]
pub struct Payment {
    pub payment_type: &'static str,
    pub operation_type: &'static str,
    pub method: &'static str,
    pub operation_id: u64,
    pub amount: u64,
    pub currency: String,
    pub customer: Value,
    /// `processing`, `success` or `decline`.
    pub status: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

#[derive(Default)]
pub struct Payments {
    by_id: HashMap<String, Payment>,
    next_operation_id: u64,
}

impl Payments {
    /// Registers a new payment; `None` when the id is taken (Gate refuses duplicates).
    pub fn insert(&mut self, payment_id: &str, mut payment: Payment) -> Option<Payment> {
        if self.by_id.contains_key(payment_id) {
            return None;
        }
        self.next_operation_id += 1;
        payment.operation_id = 4_780_000_000_000 + self.next_operation_id;
        self.by_id.insert(payment_id.to_owned(), payment.clone());
        Some(payment)
    }

    pub fn get(&self, payment_id: &str) -> Option<&Payment> {
        self.by_id.get(payment_id)
    }

    pub fn get_mut(&mut self, payment_id: &str) -> Option<&mut Payment> {
        self.by_id.get_mut(payment_id)
    }
}

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(homebank_payout::PATH, post(homebank_payout::handle))
        .route(status::PATH, post(status::handle))
        .route(india_sale::PATH, post(india_sale::handle))
        .route(india_payout::PATH, post(india_payout::handle))
        .route(india_refund::PATH, post(india_refund::handle))
        .route("/v2/info/banks/india/sale/list", post(india_banks::sale))
        .route(
            "/v2/info/banks/india/payout/list",
            post(india_banks::payout),
        )
}

/// The pages a Banks of India customer is redirected to (no faults injected there).
pub fn bank_pages() -> Router<Arc<Sandbox>> {
    use axum::routing::get;
    Router::new()
        .route(
            india_sale::BANK_PAGE,
            get(india_sale::bank_page).post(india_sale::pay),
        )
        .route(
            india_sale::SELECT_PAGE,
            get(india_sale::select_page).post(india_sale::select_and_pay),
        )
}

/// Registers a new payment, refusing a payment id Gate already knows (`3061`), and
/// counts its execution when it moved money at once.
pub fn register(sandbox: &Sandbox, req: &GateRequest, payment: Payment) -> Result<Payment, Answer> {
    let Some(payment) = sandbox
        .ecommpay
        .lock()
        .expect("payments lock")
        .insert(&req.payment_id, payment)
    else {
        return Err(duplicate(
            sandbox,
            req,
            "Payment with this payment_id already exists",
        ));
    };
    if payment.status == "success" {
        sandbox
            .stats
            .lock()
            .expect("stats lock")
            .executed(&req.payment_id);
    }
    Ok(payment)
}

/// Refuses a submission Gate has seen before, counting it.
pub fn duplicate(sandbox: &Sandbox, req: &GateRequest, message: &str) -> Answer {
    sandbox
        .stats
        .lock()
        .expect("stats lock")
        .duplicate_submissions_refused += 1;
    req.error(
        sandbox.settings.ecommpay_project_id,
        codes::DUPLICATE_PAYMENT_ID,
        message,
    )
}

/// A payment Gate knows.
pub fn lookup(sandbox: &Sandbox, payment_id: &str) -> Option<Payment> {
    sandbox
        .ecommpay
        .lock()
        .expect("payments lock")
        .get(payment_id)
        .cloned()
}

/// Sends a callback to the merchant, as Gate does.
pub fn call_back(sandbox: &Arc<Sandbox>, body: Value) {
    super::callbacks::deliver(
        sandbox.clone(),
        sandbox.settings.ecommpay_callback_url.clone(),
        body,
    );
}

/// Signs a callback or status answer again after it was amended.
pub fn sign(sandbox: &Sandbox, body: &mut Value) {
    signature::sign_root(sandbox.ecommpay_secret.expose_secret().as_bytes(), body);
}

pub type Answer = (StatusCode, axum::Json<Value>);

/// A Gate request that passed the common checks.
pub struct GateRequest {
    pub body: Value,
    pub payment_id: String,
    pub request_id: String,
}

impl GateRequest {
    pub fn accepted(&self, project_id: u64) -> Answer {
        (
            StatusCode::OK,
            axum::Json(json!({
                "status": "success",
                "request_id": self.request_id,
                "project_id": project_id,
                "payment_id": self.payment_id,
            })),
        )
    }

    pub fn error(&self, project_id: u64, code: &str, message: &str) -> Answer {
        error(
            project_id,
            &self.payment_id,
            &self.request_id,
            code,
            message,
        )
    }
}

fn error(project_id: u64, payment_id: &str, request_id: &str, code: &str, message: &str) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "status": "error",
            "request_id": request_id,
            "project_id": project_id,
            "payment_id": payment_id,
            "code": code,
            "message": message,
        })),
    )
}

/// Counts the request, then checks what every Gate request needs: JSON, the project,
/// a payment id and a valid `general.signature`.
pub fn accept(sandbox: &Sandbox, endpoint: &str, raw: &[u8]) -> Result<GateRequest, Answer> {
    sandbox.stats.lock().expect("stats lock").request(endpoint);
    let project_id = sandbox.settings.ecommpay_project_id;
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let refuse = |payment_id: &str, code: &str, message: &str| {
        sandbox
            .stats
            .lock()
            .expect("stats lock")
            .invalid_requests_refused += 1;
        error(project_id, payment_id, &request_id, code, message)
    };
    let Ok(body) = serde_json::from_slice::<Value>(raw) else {
        return Err(refuse(
            "",
            codes::INVALID_PARAMETERS,
            "Request body is not valid JSON",
        ));
    };
    let general = &body["general"];
    let payment_id = general["payment_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if payment_id.is_empty() || payment_id.len() > 255 {
        return Err(refuse(
            &payment_id,
            codes::INVALID_PARAMETERS,
            "general.payment_id is required",
        ));
    }
    let served =
        |id: u64| id == project_id || sandbox.settings.ecommpay_extra_project_ids.contains(&id);
    if !general["project_id"].as_u64().is_some_and(served) {
        return Err(refuse(
            &payment_id,
            codes::INVALID_PARAMETERS,
            "general.project_id is wrong",
        ));
    }
    if !signature::verify_request(sandbox.ecommpay_secret.expose_secret().as_bytes(), &body) {
        return Err(refuse(
            &payment_id,
            codes::INVALID_SIGNATURE,
            "Signature is invalid",
        ));
    }
    Ok(GateRequest {
        body,
        payment_id,
        request_id,
    })
}

/// Refuses a request field that is missing or malformed, naming it.
pub fn invalid(sandbox: &Sandbox, req: &GateRequest, message: &str) -> Answer {
    sandbox
        .stats
        .lock()
        .expect("stats lock")
        .invalid_requests_refused += 1;
    req.error(
        sandbox.settings.ecommpay_project_id,
        codes::INVALID_PARAMETERS,
        message,
    )
}

/// The body of a callback (or status answer) about a payment, signed at the root.
pub fn signed_report(
    sandbox: &Sandbox,
    payment_id: &str,
    p: &Payment,
    operations_list: bool,
) -> Value {
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string();
    let sum = json!({ "amount": p.amount, "currency": p.currency });
    let operation = json!({
        "id": p.operation_id,
        "type": p.operation_type,
        "status": p.status,
        "date": now,
        "created_date": now,
        "request_id": format!("{:x}", p.operation_id),
        "sum_initial": sum,
        "sum_converted": sum,
        "provider": { "id": 1112, "payment_id": if p.status == "success" { p.operation_id.to_string() } else { String::new() }, "auth_code": "" },
        "code": p.code,
        "message": p.message,
    });
    let mut body = json!({
        "project_id": sandbox.settings.ecommpay_project_id,
        "payment": {
            "id": payment_id,
            "type": p.payment_type,
            "status": p.status,
            "date": now,
            "method": p.method,
            "sum": sum,
            "description": "",
        },
        "customer": p.customer,
    });
    if operations_list {
        body["operations"] = json!([operation]);
    } else {
        body["operation"] = operation;
    }
    signature::sign_root(
        sandbox.ecommpay_secret.expose_secret().as_bytes(),
        &mut body,
    );
    body
}
