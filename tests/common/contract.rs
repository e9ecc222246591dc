//! The contract's JSON Schemas as kept in `schemas/`, for checking the bodies tests
//! publish and the events they receive: the files a team validates against must hold
//! for everything the suite sees.

use jsonschema::Validator;
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
        jsonschema::draft7::new(&schema)
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
