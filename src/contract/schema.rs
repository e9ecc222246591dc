//! The contract as JSON Schemas (draft-07, the dialect AsyncAPI documents embed),
//! generated from the very types that decode commands and encode events, so a team
//! can validate its messages without reading Rust. The copies under `schemas/` are
//! checked against these by a test.
//!
//! What a schema cannot say is said in `description`s: a key must not look like a
//! card number, a command's method and operation must agree with its routing key.

use super::command::Envelope;
use super::methods::{
    Confirm3ds, EPAY_CURRENCIES, GooglePay, HomebankPayout, IndiaPayout, IndiaRefund, IndiaSale,
    P2pTransfer, homebank_payout, india_payout,
};
use super::operator::OperatorEvent;
use super::{Currency, Event, Method, Operation};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

/// A message of the contract that has a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Command,
    Event,
    OperatorEvent,
}

impl Message {
    pub const ALL: [Message; 3] = [Message::Command, Message::Event, Message::OperatorEvent];

    /// The name `payfleet schema` takes, and the file's stem under `schemas/`.
    pub fn name(self) -> &'static str {
        match self {
            Message::Command => "command",
            Message::Event => "event",
            Message::OperatorEvent => "operator-event",
        }
    }

    /// The schema, with keys sorted and pretty-printed: stable across runs, so the
    /// copies in the repository diff cleanly.
    pub fn render(self) -> String {
        let schema = match self {
            Message::Command => command(),
            Message::Event => root::<Event>(),
            Message::OperatorEvent => root::<OperatorEvent>(),
        };
        let mut text = serde_json::to_string_pretty(&tidy(schema)).expect("a Value serialises");
        text.push('\n');
        text
    }
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft07().into_generator()
}

fn root<T: JsonSchema>() -> Value {
    generator().into_root_schema_for::<T>().to_value()
}

/// The envelope, and one branch per method and operation that fixes `details` and the
/// amounts the method takes.
fn command() -> Value {
    let mut g = generator();
    let pairs = Method::ALL
        .into_iter()
        .flat_map(|m| Operation::ALL.into_iter().map(move |o| (m, o)));
    let branches: Vec<Value> = pairs
        .filter_map(|(method, operation)| {
            let (details, amount) = branch(&mut g, method, operation)?;
            Some(json!({
                "title": format!("{} {}", method.as_str(), operation.as_str()),
                "type": "object",
                "properties": {
                    "method": {"const": method.as_str()},
                    "operation": {"const": operation.as_str()},
                    "details": details.to_value(),
                    "amount": amount,
                },
            }))
        })
        .collect();
    let mut schema = g.root_schema_for::<Envelope>().to_value();
    schema["oneOf"] = Value::Array(branches);
    schema
}

/// The schema of one method's `details` and the rules its amount must keep; `None`:
/// the method has no such operation.
fn branch(
    g: &mut SchemaGenerator,
    method: Method,
    operation: Operation,
) -> Option<(schemars::Schema, Value)> {
    Some(match (method, operation) {
        (Method::Homebank, Operation::Payout) => (
            g.subschema_for::<HomebankPayout>(),
            amount(json!({
                "properties": {"currency": currencies(&homebank_payout::CURRENCIES)},
                // Below 4,000.00 KZT multiples of 2,000.00, from there of 1,000.00.
                "allOf": [
                    amount(json!({
                        "if": amount(json!({"properties": {"currency": {"const": "KZT"}}})),
                        "then": amount(json!({"properties": {"minor": minor(json!({"multipleOf": 1_000_00}))}})),
                    })),
                    amount(json!({
                        "if": amount(json!({"properties": {"currency": {"const": "KZT"}, "minor": minor(json!({"maximum": 3_999_99}))}})),
                        "then": amount(json!({"properties": {"minor": minor(json!({"multipleOf": 2_000_00}))}})),
                    })),
                ],
            })),
        ),
        (Method::BanksOfIndia, Operation::Sale) => (g.subschema_for::<IndiaSale>(), inr()),
        (Method::BanksOfIndia, Operation::Payout) => {
            let mut rules = inr();
            rules["properties"]["minor"] = minor(
                json!({"minimum": india_payout::MIN_MINOR, "maximum": india_payout::MAX_MINOR}),
            );
            (g.subschema_for::<IndiaPayout>(), rules)
        }
        (Method::BanksOfIndia, Operation::Refund) => (g.subschema_for::<IndiaRefund>(), inr()),
        (Method::GooglePay, Operation::Payment) => (
            g.subschema_for::<GooglePay>(),
            amount(json!({"properties": {"currency": currencies(&EPAY_CURRENCIES)}})),
        ),
        (Method::P2p, Operation::Transfer) => (
            g.subschema_for::<P2pTransfer>(),
            amount(json!({"properties": {"currency": currencies(&EPAY_CURRENCIES)}})),
        ),
        (Method::P2p, Operation::Confirm3ds) => {
            (g.subschema_for::<Confirm3ds>(), amount(json!({})))
        }
        _ => return None,
    })
}

fn currencies(list: &[Currency]) -> Value {
    json!({"enum": list.iter().map(|c| c.code()).collect::<Vec<_>>()})
}

fn inr() -> Value {
    amount(json!({"properties": {"currency": {"const": Currency::INR.code()}}}))
}

/// A rule about `amount` (an object), typed so that strict validators take it.
fn amount(mut rule: Value) -> Value {
    rule["type"] = json!("object");
    rule
}

/// A rule about `amount.minor` (an integer), typed likewise.
fn minor(mut rule: Value) -> Value {
    rule["type"] = json!("integer");
    rule
}

/// `value` with every object's keys in order, whatever map serde_json was built with,
/// and only the formats JSON Schema defines: schemars names Rust's (`uint32`, `ip`),
/// which strict validators (ajv) refuse as unknown.
fn tidy(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            match map.get("format").and_then(Value::as_str) {
                Some("ip") => {
                    map.remove("format");
                    map.insert(
                        "anyOf".into(),
                        json!([{"format": "ipv4"}, {"format": "ipv6"}]),
                    );
                }
                Some(f) if f.starts_with("int") || f.starts_with("uint") => {
                    map.remove("format");
                }
                _ => {}
            }
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, tidy(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(tidy).collect()),
        other => other,
    }
}
