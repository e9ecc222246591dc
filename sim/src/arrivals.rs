//! When each provider request arrived and when it was answered, by payment id (the
//! hook `payfleet bench` measures the fleet's overhead with). Records nothing unless
//! `record_arrivals` is on; served at `GET /sandbox/arrivals`.

use crate::Sandbox;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Arrival {
    pub payment_id: String,
    /// Microseconds since the Unix epoch, before any injected delay.
    pub arrived_us: u64,
    pub answered_us: u64,
}

#[derive(Default)]
pub struct Arrivals(Mutex<Vec<Arrival>>);

impl Arrivals {
    pub fn all(&self) -> Vec<Arrival> {
        self.0.lock().expect("arrivals lock").clone()
    }
}

/// Wall-clock microseconds since the Unix epoch: comparable across processes on one
/// machine.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// The id a request is about: ECommPay's `general.payment_id`, epay's `invoiceId` or
/// `order.id`.
fn id_of(raw: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    [
        &v["general"]["payment_id"],
        &v["invoiceId"],
        &v["order"]["id"],
    ]
    .into_iter()
    .find_map(|x| x.as_str().map(str::to_owned))
}

/// Outermost middleware of the provider endpoints, so arrival is taken before faults.
pub async fn record(State(sandbox): State<Arc<Sandbox>>, req: Request, next: Next) -> Response {
    if !sandbox.settings.record_arrivals {
        return next.run(req).await;
    }
    let arrived_us = unix_micros();
    let (parts, body) = req.into_parts();
    let Ok(raw) = axum::body::to_bytes(body, 2 << 20).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let payment_id = id_of(&raw);
    let response = next.run(Request::from_parts(parts, Body::from(raw))).await;
    if let Some(payment_id) = payment_id {
        sandbox
            .arrivals
            .0
            .lock()
            .expect("arrivals lock")
            .push(Arrival {
                payment_id,
                arrived_us,
                answered_us: unix_micros(),
            });
    }
    response
}
