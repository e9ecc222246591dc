//! Why a command is refused, in words that never quote it. serde's messages quote the
//! value they choke on (`invalid type: string "4405 6397 …"`, ``unknown variant
//! `44 05 63 97` ``), and any field may hold card data a publisher put in the wrong
//! place, so a reason names the field and what it expects, never what it got.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use serde_path_to_error::Segment;
use std::collections::BTreeMap;

/// Deserialises `value` as `T`; a refusal names the field (under `at`, the path of
/// `value` in the command) and what it expects.
pub fn parse<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, String> {
    if let Some(path) = first_array(value, at) {
        // The contract has no list fields, and serde would take an array for a struct
        // (field by field, in order): `["4405…", "01", …]` for a card.
        return Err(format!("{path} must not be an array"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = at.to_owned();
        for segment in e.path() {
            let name = match segment {
                Segment::Map { key } | Segment::Enum { variant: key } => field_name(key),
                Segment::Seq { index } => index.to_string(),
                Segment::Unknown => "?".to_owned(),
            };
            join(&mut path, &name);
        }
        let path = if path.is_empty() {
            "the command"
        } else {
            &path
        };
        format!("{path}: {}", expectation(&e.inner().to_string()))
    })
}

fn join(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// A field name from the input, as a reason may show it: names the contract could
/// have (letters, digits, `_`, no run of three digits) as they are, others not at all.
fn field_name(name: &str) -> String {
    let identifier = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name
            .as_bytes()
            .windows(3)
            .any(|w| w.iter().all(u8::is_ascii_digit));
    if identifier {
        name.to_owned()
    } else {
        "(a field name that is not one of the contract's)".to_owned()
    }
}

/// The path of the first array in `value`, if any.
fn first_array(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::Array(_) => Some(if at.is_empty() { "the command" } else { at }.to_owned()),
        Value::Object(map) => map.iter().find_map(|(key, v)| {
            let mut path = at.to_owned();
            join(&mut path, &field_name(key));
            first_array(v, &path)
        }),
        _ => None,
    }
}

/// What a serde message says was expected, without what was found beyond its kind.
fn expectation(message: &str) -> String {
    // serde's formats (serde::de::Error's provided messages):
    //   invalid type: <unexpected>, expected <what>
    //   invalid value: <unexpected>, expected <what>
    //   invalid length <n>, expected <what>
    //   unknown variant `<input>`, expected <what> | there are no variants
    //   unknown field `<input>`, expected <what> | there are no fields (the path has it)
    //   missing field `<contract's name>` | duplicate field `<contract's name>`
    // anything else is a message of payfleet's own types, which quote nothing.
    let expected = |rest: &str| {
        // The last one: the value before it is the input's, and may say anything.
        rest.rsplit_once(", expected ")
            .map_or_else(String::new, |(_, what)| format!("expected {what}"))
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let got = kind(rest);
        format!("{}, got {got}", expected(rest))
    } else if let Some(rest) = message
        .strip_prefix("invalid value: ")
        .or_else(|| message.strip_prefix("invalid length "))
        .or_else(|| message.strip_prefix("unknown variant "))
    {
        match expected(rest) {
            e if e.is_empty() => "has no value it can take".to_owned(),
            e => e,
        }
    } else if let Some(rest) = message.strip_prefix("unknown field ") {
        // The path ends with the field's name already, as `field_name` shows it.
        match expected(rest) {
            e if e.is_empty() => "unknown field".to_owned(),
            e => format!("unknown field, {e}"),
        }
    } else {
        message.to_owned()
    }
}

/// The kind of value serde's `Unexpected` names, without the value.
fn kind(unexpected: &str) -> &'static str {
    const KINDS: [(&str, &str); 10] = [
        ("string", "a string"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("map", "an object"),
        ("sequence", "an array"),
        ("null", "null"),
        ("unit", "null"),
        ("char", "a string"),
        ("Option", "null"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| unexpected.starts_with(prefix))
        .map_or("another kind of value", |(_, kind)| kind)
}

/// A body parsed to JSON, with every number too large for JSON's doubles (which
/// serde_json refuses, failing the whole body) kept as its text, and the path of the
/// first one: such a command is refused with a reason, not dead-lettered.
pub fn lenient_json(body: &[u8]) -> Result<(Value, Option<String>), serde_json::Error> {
    let error = match serde_json::from_slice(body) {
        Ok(value) => return Ok((value, None)),
        Err(e) => e,
    };
    // Only a number out of range: the raw values still parse, numbers and all.
    let Ok(raw) = serde_json::from_slice::<&RawValue>(body) else {
        return Err(error);
    };
    let mut first = None;
    let value = rebuild(raw, "", &mut first).ok_or(error)?;
    Ok((value, first))
}

fn rebuild(raw: &RawValue, at: &str, first: &mut Option<String>) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(raw.get()) {
        return Some(value);
    }
    let path = |name: &str| {
        let mut path = at.to_owned();
        join(&mut path, name);
        path
    };
    if let Ok(map) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) {
        let map = map
            .into_iter()
            .map(|(k, v)| Some((k.clone(), rebuild(v, &path(&field_name(&k)), first)?)))
            .collect::<Option<serde_json::Map<_, _>>>()?;
        return Some(Value::Object(map));
    }
    if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| rebuild(v, &path(&i.to_string()), first))
            .collect::<Option<Vec<_>>>()?;
        return Some(Value::Array(items));
    }
    let text = raw.get();
    let number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if !number {
        return None;
    }
    first.get_or_insert_with(|| {
        if at.is_empty() {
            "the command".into()
        } else {
            at.into()
        }
    });
    Some(Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read by serde only
    struct Card {
        pan: String,
        month: Option<String>,
        kind: Option<Kind>,
        count: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Debit,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // read by serde only
    struct Outer {
        card: Card,
    }

    const PAN: &str = "4405639704015096";

    fn refused(v: Value) -> String {
        parse::<Outer>(&v, "details").unwrap_err()
    }

    #[test]
    fn a_wrong_type_names_the_field_and_both_kinds_never_the_value() {
        let r = refused(json!({"card": {"pan": 4405639704015096u64}}));
        assert_eq!(r, "details.card.pan: expected a string, got a number");
        let r = refused(json!({"card": {"pan": "x", "month": 1}}));
        assert_eq!(r, "details.card.month: expected a string, got a number");
    }

    #[test]
    fn an_unknown_variant_gives_the_choices_not_the_input() {
        let r = refused(json!({"card": {"pan": "x", "kind": "44 05 63 97 04 01 50 96"}}));
        assert_eq!(r, "details.card.kind: expected `debit`");
    }

    #[test]
    fn an_unknown_field_is_named_only_when_it_could_be_a_name() {
        let r = refused(json!({"card": {"pan": "x", "cvc": "815"}}));
        assert!(
            r.starts_with("details.card.cvc: unknown field, expected one of `pan`"),
            "{r}"
        );
        let r = refused(json!({"card": {"pan": "x", "4405 6397 0401 5096": 1}}));
        assert!(!r.contains("4405") && r.contains("unknown field"), "{r}");
        let r = refused(json!({"card": {"pan": "x", "n4405639704015096": 1}}));
        assert!(!r.contains("4405"), "{r}");
    }

    #[test]
    fn a_value_out_of_range_and_missing_fields() {
        let r = refused(json!({"card": {"pan": "x", "count": 5_000_000_000u64}}));
        assert!(r.starts_with("details.card.count: expected u32"), "{r}");
        assert!(!r.contains("5000000000"), "{r}");
        assert_eq!(
            refused(json!({"card": {}})),
            "details.card: missing field `pan`"
        );
    }

    #[test]
    fn a_struct_given_as_an_array_is_refused() {
        assert_eq!(
            refused(json!({"card": [PAN, "01"]})),
            "details.card must not be an array"
        );
        let r = refused(json!({"card": {"pan": "x", PAN: [1]}}));
        assert!(
            r.ends_with("must not be an array") && !r.contains(PAN),
            "{r}"
        );
        // serde itself would take it.
        assert!(serde_json::from_value::<Outer>(json!({"card": [PAN, "01", null, null]})).is_ok());
    }

    #[test]
    fn numbers_beyond_doubles_are_kept_as_text_with_their_path() {
        let huge = "9".repeat(400);
        let body = format!(r#"{{"a":{{"b":[1,{huge}]}},"k":"v"}}"#);
        assert!(serde_json::from_str::<Value>(&body).is_err());
        let (value, first) = lenient_json(body.as_bytes()).unwrap();
        assert_eq!(first.as_deref(), Some("a.b.1"));
        assert_eq!(value["a"]["b"][1], json!(huge));
        assert_eq!(value["k"], json!("v"));
        let (_, first) = lenient_json(br#"{"a":1}"#).unwrap();
        assert_eq!(first, None);
        assert!(lenient_json(b"{nope").is_err());
        assert!(lenient_json(format!("{{\"a\":{huge}").as_bytes()).is_err());
    }
}
