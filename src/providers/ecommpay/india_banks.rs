//! The banks Banks of India works with: `POST /v2/info/banks/india/{sale,payout}/list`,
//! fetched on demand and kept for a configured time, so that a command naming a bank
//! the provider does not support is rejected before anything is sent.

use super::Gate;
use crate::providers::ProviderError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which list: banks for purchases or for payouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Sale,
    Payout,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sale => "sale",
            Direction::Payout => "payout",
        }
    }

    pub fn path(self) -> String {
        format!("/v2/info/banks/india/{}/list", self.as_str())
    }
}

/// One bank of the list. Gate may send more fields; they are not needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bank {
    pub id: u32,
    pub name: String,
}

/// A list and when it was fetched.
type Fetched = (Instant, Arc<Vec<Bank>>);

/// The lists, each fetched at most once per `ttl`.
pub struct BankList {
    ttl: Duration,
    cached: Mutex<HashMap<Direction, Fetched>>,
}

impl BankList {
    pub fn new(ttl: Duration) -> Self {
        BankList {
            ttl,
            cached: Mutex::default(),
        }
    }

    /// The list, from the cache while it is fresh, otherwise from Gate.
    pub async fn get(
        &self,
        gate: &Gate,
        direction: Direction,
    ) -> Result<Arc<Vec<Bank>>, ProviderError> {
        if let Some((at, banks)) = self.cached.lock().expect("bank list lock").get(&direction)
            && at.elapsed() < self.ttl
        {
            return Ok(banks.clone());
        }
        let banks = Arc::new(fetch(gate, direction).await?);
        self.cached
            .lock()
            .expect("bank list lock")
            .insert(direction, (Instant::now(), banks.clone()));
        Ok(banks)
    }

    /// Why `bank_id` cannot be used, if it cannot. A list that cannot be fetched does
    /// not block the payment: Gate checks the bank itself and refuses an unknown one.
    pub async fn check(
        &self,
        gate: &Gate,
        direction: Direction,
        bank_id: u32,
    ) -> Result<(), String> {
        match self.get(gate, direction).await {
            Ok(banks) if banks.iter().any(|b| b.id == bank_id) => Ok(()),
            Ok(_) => Err(format!(
                "bank_id {bank_id} is not among the provider's banks for {} (payfleet banks india {})",
                direction.as_str(),
                direction.as_str()
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the Banks of India list; Gate will check the bank");
                Ok(())
            }
        }
    }
}

/// Asks Gate for a list. The document asks for real payment data or, before the
/// payment exists, any payment id; the amount is the payout minimum.
pub async fn fetch(gate: &Gate, direction: Direction) -> Result<Vec<Bank>, ProviderError> {
    let payment_id = format!("banks-{}", uuid::Uuid::new_v4().simple());
    let body = json!({
        "general": gate.general(&payment_id),
        "payment": { "amount": crate::contract::methods::india_payout::MIN_MINOR, "currency": "INR" },
    });
    let (http, answer) = gate.post(&direction.path(), body).await?;
    if answer.get("status").and_then(serde_json::Value::as_str) == Some("error") {
        let answer: super::GateAnswer = serde_json::from_value(answer)
            .map_err(|e| ProviderError::Unknown(format!("bank list answer: {e}")))?;
        return Err(super::gate::refusal(&answer));
    }
    let list = answer.get("banks").cloned().unwrap_or(answer);
    serde_json::from_value(list).map_err(|e| {
        ProviderError::Unknown(format!(
            "bank list answer (HTTP {http}) is not a list of banks: {e}"
        ))
    })
}
