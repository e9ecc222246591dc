//! The payments the simulated Gate knows, by payment id, and what it counts when money
//! moves.

use crate::Sandbox;
use serde_json::Value;
use std::collections::HashMap;

/// `payment.method` of the HomeBank payout document's callbacks.
pub const HOMEBANK_PAYOUT_METHOD: &str = "homebank-payout";

/// An operation's state, as `operation.status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    /// A purchase whose customer has not come back from the bank yet.
    AwaitingRedirect,
    Success,
    Decline,
}

impl OpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::AwaitingRedirect => "awaiting redirect result",
            OpStatus::Success => "success",
            OpStatus::Decline => "decline",
        }
    }
}

/// One operation of a payment (the sale or payout, then a refund).
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: u64,
    /// `sale`, `payout` or `refund`.
    pub kind: &'static str,
    pub status: OpStatus,
    pub code: &'static str,
    pub message: &'static str,
    pub amount: u64,
    pub currency: String,
    pub request_id: String,
    pub created: String,
    pub date: String,
}

/// Where a Banks of India purchase sends its customer.
#[derive(Debug, Clone)]
pub struct Sale {
    pub return_url: String,
    pub bank_id: Option<u32>,
    pub redirect_url: String,
}

/// A refund of a purchase.
#[derive(Debug, Clone)]
pub struct Refund {
    pub merchant_refund_id: String,
    pub description: String,
    pub op: Operation,
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub payment_id: String,
    pub project_id: u64,
    /// `payment.type`: `payout` or `purchase`.
    pub payment_type: &'static str,
    /// `payment.method`: `homebank-payout` or `India banks` (the documents' callbacks).
    pub method: &'static str,
    pub description: String,
    pub customer: Value,
    /// `account` as the payout callback shows it (`number` only).
    pub account: Option<Value>,
    pub op: Operation,
    pub sale: Option<Sale>,
    pub refund: Option<Refund>,
}

#[derive(Default)]
pub struct Payments {
    by_id: HashMap<String, Payment>,
    next_operation_id: u64,
}

impl Payments {
    pub fn next_operation_id(&mut self) -> u64 {
        self.next_operation_id += 1;
        4_780_000_000_000 + self.next_operation_id
    }

    pub fn get(&self, payment_id: &str) -> Option<&Payment> {
        self.by_id.get(payment_id)
    }

    pub fn get_mut(&mut self, payment_id: &str) -> Option<&mut Payment> {
        self.by_id.get_mut(payment_id)
    }
}

/// Now, as Gate writes dates (`2018-09-28T12:04:40+0000`).
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

/// A new operation, given its id later by [`register`].
pub fn operation(kind: &'static str, amount: u64, currency: &str, request_id: &str) -> Operation {
    let now = now();
    Operation {
        id: 0,
        kind,
        status: OpStatus::AwaitingRedirect,
        code: super::codes::SUCCESS,
        message: "Awaiting redirect result",
        amount,
        currency: currency.to_owned(),
        request_id: request_id.to_owned(),
        created: now.clone(),
        date: now,
    }
}

/// Registers a new payment; `None` when its id is taken in the project (Gate refuses
/// duplicates). Counts its execution when it moved money at once.
pub fn register(sandbox: &Sandbox, mut payment: Payment) -> Option<Payment> {
    {
        let mut book = sandbox.ecommpay.lock().expect("payments lock");
        if book.by_id.contains_key(&payment.payment_id) {
            return None;
        }
        payment.op.id = book.next_operation_id();
        book.by_id
            .insert(payment.payment_id.clone(), payment.clone());
    }
    if payment.op.status == OpStatus::Success {
        sandbox.with_stats(|s| s.executed(&payment.payment_id));
    }
    Some(payment)
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
