//! What every Gate request shares: JSON with `general.project_id`, `general.payment_id`
//! and `general.signature` ("The following objects and parameters must be specified in
//! any request: Object general…"), and Gate's synchronous answer, which "reports on the
//! request only" (ARCHITECTURE.md): `status: success` = accepted, `status: error` with
//! `code`/`message` = refused.

use super::{codes, signature};
use crate::Sandbox;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// A Gate request that passed the common checks.
#[derive(Debug, Clone)]
pub struct GateRequest {
    pub body: Value,
    pub project_id: u64,
    pub payment_id: String,
    pub request_id: String,
}

/// The body of a refused request.
pub fn error_body(
    project_id: u64,
    payment_id: &str,
    request_id: &str,
    code: &str,
    message: &str,
) -> Value {
    json!({
        "status": "error",
        "request_id": request_id,
        "project_id": project_id,
        "payment_id": payment_id,
        "code": code,
        "message": message,
    })
}

impl GateRequest {
    /// The request was accepted; its outcome comes by callback.
    pub fn accepted(&self) -> Response {
        Json(json!({
            "status": "success",
            "request_id": self.request_id,
            "project_id": self.project_id,
            "payment_id": self.payment_id,
        }))
        .into_response()
    }

    pub fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = error_body(
            self.project_id,
            &self.payment_id,
            &self.request_id,
            code,
            message,
        );
        (status, Json(body)).into_response()
    }

    /// Refuses a missing or malformed field, naming it, and counts the refusal.
    pub fn invalid(&self, sandbox: &Sandbox, message: &str) -> Response {
        sandbox.with_stats(|s| s.invalid_requests_refused += 1);
        self.error(StatusCode::BAD_REQUEST, codes::INVALID_PARAMETERS, message)
    }

    /// Refuses a payment id the project already used, and counts the refusal.
    pub fn duplicate(&self, sandbox: &Sandbox) -> Response {
        sandbox.with_stats(|s| s.duplicate_submissions_refused += 1);
        self.error(
            StatusCode::BAD_REQUEST,
            codes::DUPLICATE,
            codes::DUPLICATE_MESSAGE,
        )
    }

    /// A string field that must be present and not empty (`customer.id`, …).
    pub fn text(&self, object: &str, field: &str) -> Option<&str> {
        self.body[object][field]
            .as_str()
            .filter(|s| !s.trim().is_empty())
    }

    /// Checks required string fields of `object`, naming the first one missing.
    pub fn require(
        &self,
        sandbox: &Sandbox,
        object: &str,
        fields: &[&str],
    ) -> Result<(), Response> {
        match fields.iter().find(|f| self.text(object, f).is_none()) {
            Some(f) => Err(self.invalid(sandbox, &format!("{object}.{f} is required"))),
            None => Ok(()),
        }
    }
}

/// Counts the request, then checks what every Gate request needs: a JSON object, a
/// project this simulator serves, a payment id, and a valid `general.signature`.
pub fn accept(sandbox: &Sandbox, endpoint: &str, raw: &[u8]) -> Result<GateRequest, Response> {
    sandbox.with_stats(|s| s.request(endpoint));
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let served = |id: u64| {
        id == sandbox.settings.ecommpay_project_id
            || sandbox.settings.ecommpay_extra_project_ids.contains(&id)
    };
    let refuse = |project_id: u64, payment_id: &str, code: &str, message: &str| {
        sandbox.with_stats(|s| s.invalid_requests_refused += 1);
        let body = error_body(project_id, payment_id, &request_id, code, message);
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    };
    let default_project = sandbox.settings.ecommpay_project_id;
    let body = match serde_json::from_slice::<Value>(raw) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let message = "Request body is not a JSON object";
            return Err(refuse(
                default_project,
                "",
                codes::INVALID_PARAMETERS,
                message,
            ));
        }
    };
    let general = &body["general"];
    let payment_id = general["payment_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(project_id) = general["project_id"].as_u64() else {
        let message = "general.project_id is required";
        return Err(refuse(
            default_project,
            &payment_id,
            codes::INVALID_PARAMETERS,
            message,
        ));
    };
    if !served(project_id) {
        let message = "general.project_id is unknown";
        return Err(refuse(
            project_id,
            &payment_id,
            codes::INVALID_PARAMETERS,
            message,
        ));
    }
    if payment_id.trim().is_empty() || payment_id.len() > 255 {
        let message = "general.payment_id is required";
        return Err(refuse(
            project_id,
            &payment_id,
            codes::INVALID_PARAMETERS,
            message,
        ));
    }
    let secret = sandbox.ecommpay_secret.expose_secret().as_bytes();
    if !signature::verify_request(secret, &body) {
        let message = "Signature is invalid";
        return Err(refuse(
            project_id,
            &payment_id,
            codes::INVALID_SIGNATURE,
            message,
        ));
    }
    Ok(GateRequest {
        body,
        project_id,
        payment_id,
        request_id,
    })
}
