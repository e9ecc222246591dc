//! The contract's JSON Schemas as kept in `schemas/`, for checking the bodies tests
//! publish and the events they receive: the files a team validates against must hold
//! for everything the suite sees.

use jsonschema::Validator;
use payfleet::contract::FingerprintKey;
use payfleet::contract::command::{Decoded, decode};
use payfleet::contract::schema::Message;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `schemas/<name>.schema.json`.
pub fn schema_file(message: Message) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{}.schema.json", message.name()))
}

fn validator(message: Message) -> &'static Validator {
    static VALIDATORS: [OnceLock<Validator>; 3] = [const { OnceLock::new() }; 3];
    let slot = Message::ALL
        .iter()
        .position(|m| *m == message)
        .expect("every message is in ALL");
    VALIDATORS[slot].get_or_init(|| {
        let path = schema_file(message);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        // Formats checked too (IP addresses, times), as a strict validator would.
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{} is not a JSON Schema: {e}", path.display()))
    })
}

/// Where `body` breaks its schema, by path and rule: never the values, which may be
/// card data.
pub fn violations(message: Message, body: &Value) -> Vec<String> {
    validator(message)
        .iter_errors(body)
        .map(|e| {
            format!(
                "at '{}' the rule '{}' fails",
                e.instance_path(),
                e.schema_path()
            )
        })
        .collect()
}

/// Panics when `body` breaks its schema.
pub fn check(message: Message, body: &Value) {
    let broken = violations(message, body);
    assert!(
        broken.is_empty(),
        "a {} that breaks schemas/{}.schema.json: {broken:?}",
        message.name(),
        message.name()
    );
}

/// A command body the suite publishes: the schema must take it exactly when payfleet's
/// own decoder does. Tests publish bodies the decoder refuses on purpose; the schema
/// must refuse those too, or it promises a team more than the worker takes.
pub fn check_command(body: &str) {
    let value: Value = serde_json::from_str(body).expect("test bodies are JSON");
    let broken = violations(Message::Command, &value);
    let key = FingerprintKey::new("harness".to_owned().into());
    let refused = match decode(body.as_bytes(), &key) {
        Decoded::Valid(_) => None,
        Decoded::Invalid(invalid) => Some(invalid.reason),
        Decoded::Undecodable(reason) => Some(reason),
    };
    match refused {
        None => assert!(
            broken.is_empty(),
            "a command payfleet takes breaks schemas/command.schema.json: {broken:?}"
        ),
        Some(reason) => assert!(
            !broken.is_empty(),
            "a command payfleet refuses ({reason}) passes schemas/command.schema.json"
        ),
    }
}

/// [`payfleet_tools::local::EventCheck`] for the harness's event tap: an event's body
/// against the schema its routing key names.
pub fn check_event(routing_key: &str, body: &[u8]) -> Result<(), String> {
    let message = if routing_key.starts_with("operator.") {
        Message::OperatorEvent
    } else {
        Message::Event
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let broken = violations(message, &value);
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "breaks schemas/{}.schema.json: {broken:?}",
            message.name()
        ))
    }
}
