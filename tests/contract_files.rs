//! The contract as files: the JSON Schemas under `schemas/` are what the types
//! generate, every golden example in `schemas/examples/` passes its schema (and, for a
//! command, payfleet's own decoder), bodies that break the contract are refused by
//! both, and the AsyncAPI document passes the AsyncAPI parser.

mod common;

use common::contract::{check, schema_file, violations};
use payfleet::contract::command::{Decoded, decode};
use payfleet::contract::operator::OperatorEvent;
use payfleet::contract::schema::Message;
use payfleet::contract::{Event, EventStatus, FingerprintKey, Method, Operation};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn decoded(body: &Value) -> Decoded {
    let key = FingerprintKey::new("contract-files".to_owned().into());
    decode(body.to_string().as_bytes(), &key)
}

#[test]
fn the_schema_files_are_what_the_types_generate() {
    for message in Message::ALL {
        let path = schema_file(message);
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == message.render(),
            "{} differs from what the contract types generate: run scripts/schemas \
             (or `cargo run -- schema {} > {}`) and commit the result",
            path.display(),
            message.name(),
            path.strip_prefix(root()).unwrap_or(&path).display()
        );
    }
}

/// Every example file, by the message its name starts with.
fn examples() -> Vec<(Message, String, PathBuf)> {
    let dir = root().join("schemas/examples");
    let mut found: Vec<(Message, String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".json")
                .unwrap_or_else(|| panic!("{name}: examples are .json files"));
            let (message, kind) = Message::ALL
                .into_iter()
                .find_map(|m| {
                    let rest = stem.strip_prefix(m.name())?.strip_prefix('.')?;
                    Some((m, rest.to_owned()))
                })
                .unwrap_or_else(|| {
                    panic!("{name}: names start with command., event. or operator-event.")
                });
            (message, kind, path)
        })
        .collect();
    found.sort_by(|a, b| a.2.cmp(&b.2));
    found
}

#[test]
fn every_golden_example_passes_its_schema_and_payfleets_own_reading() {
    for (message, kind, path) in examples() {
        let body = read_json(&path);
        let broken = violations(message, &body);
        assert!(broken.is_empty(), "{}: {broken:?}", path.display());
        match message {
            Message::Command => match decoded(&body) {
                Decoded::Valid(c) => assert_eq!(
                    format!("{}.{}", c.method.as_str(), c.operation.as_str()),
                    kind,
                    "{}: named after its method and operation",
                    path.display()
                ),
                other => panic!("{}: the decoder refuses it: {other:?}", path.display()),
            },
            Message::Event => {
                let event: Event = serde_json::from_value(body).expect("an event");
                assert_eq!(event.status.as_str(), kind, "{}", path.display());
                assert_eq!(
                    event.event_id,
                    Event::id_for(&event.idempotency_key, event.status),
                    "{}: event ids are derived from key and status",
                    path.display()
                );
            }
            Message::OperatorEvent => {
                let event: OperatorEvent = serde_json::from_value(body).expect("an operator event");
                assert_eq!(event.action.as_str(), kind, "{}", path.display());
            }
        }
    }
}

#[test]
fn there_is_an_example_of_every_command_status_and_action() {
    let have: Vec<(Message, String)> = examples().into_iter().map(|(m, k, _)| (m, k)).collect();
    let has = |m: Message, kind: String| {
        assert!(
            have.contains(&(m, kind.clone())),
            "no schemas/examples/{}.{kind}.json",
            m.name()
        )
    };
    // A method and operation is a command kind when the schema has a branch for it.
    let command = read_json(&schema_file(Message::Command));
    let branches = command["oneOf"]
        .as_array()
        .expect("one branch per command kind");
    assert_eq!(
        branches.len(),
        7,
        "homebank payout, three of India, three of epay"
    );
    for branch in branches {
        let p = &branch["properties"];
        let kind = format!(
            "{}.{}",
            p["method"]["const"].as_str().unwrap(),
            p["operation"]["const"].as_str().unwrap()
        );
        has(Message::Command, kind);
    }
    for status in EventStatus::ALL {
        has(Message::Event, status.as_str().to_owned());
    }
    for action in ["hold_set", "hold_released"] {
        has(Message::OperatorEvent, action.to_owned());
    }
    // Every pair without a branch is refused by the decoder too.
    for method in Method::ALL {
        for operation in Operation::ALL {
            let kind = format!("{}.{}", method.as_str(), operation.as_str());
            if have.contains(&(Message::Command, kind.clone())) {
                continue;
            }
            let example = examples()
                .into_iter()
                .find(|(m, k, _)| *m == Message::Command && k.starts_with(method.as_str()))
                .expect("an example of the method");
            let mut body = read_json(&example.2);
            body["operation"] = json!(operation.as_str());
            assert!(!violations(Message::Command, &body).is_empty(), "{kind}");
            assert!(!matches!(decoded(&body), Decoded::Valid(_)), "{kind}");
        }
    }
}

#[test]
fn bodies_that_break_the_contract_are_refused_by_schema_and_decoder() {
    let example = |name: &str| read_json(&root().join("schemas/examples").join(name));
    let payout = || example("command.homebank.payout.json");
    let transfer = || example("command.p2p.transfer.json");
    let india_payout = || example("command.banks_of_india.payout.json");
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut b = payout();
    b.as_object_mut().unwrap().remove("idempotency_key");
    cases.push(("no idempotency key", b));
    let mut b = payout();
    b["idempotency_key"] = json!("a key with spaces");
    cases.push(("a key outside the charset", b));
    let mut b = payout();
    b["amount"]["minor"] = json!(0);
    cases.push(("a zero amount", b));
    let mut b = payout();
    b["amount"]["minor"] = json!(3_000_00);
    cases.push(("3,000.00 KZT: not a multiple of 2,000.00", b));
    let mut b = payout();
    b["amount"]["currency"] = json!("INR");
    cases.push(("HomeBank in rupees", b));
    let mut b = payout();
    b["extra"] = json!(true);
    cases.push(("an unknown field", b));
    let mut b = payout();
    b["version"] = json!(2);
    cases.push(("version 2", b));
    let mut b = payout();
    b["details"]["customer"]["phone"] = json!("+7 707");
    cases.push(("a phone with a plus and a space", b));
    let mut b = payout();
    b["details"]["customer"]["ip_address"] = json!("111.222.333.444");
    cases.push(("an IP address that is none", b));
    let mut b = payout();
    b["account"] = json!("Bad Name");
    cases.push(("an account that is no account name", b));
    let mut b = transfer();
    b["details"]["sender"]["card_id"] = json!("saved-1");
    cases.push(("a sender with card and card_id", b));
    let mut b = transfer();
    b["details"]["receiver"]["card"]["cvc"] = json!("123");
    cases.push(("a receiver card with a CVC", b));
    let mut b = transfer();
    b["details"]["sender"]["card"]["expiry"]["month"] = json!("13");
    cases.push(("month 13", b));
    let mut b = india_payout();
    b["amount"]["minor"] = json!(999_99);
    cases.push(("an India payout below 1,000.00", b));
    let mut b = india_payout();
    b["details"]["account"]["bank_code"] = json!("hdfc0001234");
    cases.push(("an IFSC in lower case", b));
    for (what, body) in cases {
        assert!(
            !violations(Message::Command, &body).is_empty(),
            "{what}: the schema takes it"
        );
        assert!(
            !matches!(decoded(&body), Decoded::Valid(_)),
            "{what}: the decoder takes it"
        );
    }
}

#[test]
fn events_payfleet_makes_pass_the_event_schema() {
    let key = payfleet::contract::IdempotencyKey::parse("k-schema").unwrap();
    for status in EventStatus::ALL {
        let event = Event::new(key.clone(), status);
        check(Message::Event, &serde_json::to_value(&event).unwrap());
    }
    let op = OperatorEvent::new(
        payfleet::contract::operator::OperatorAction::HoldSet,
        "epay".into(),
        "alice".into(),
        "why".into(),
    );
    check(Message::OperatorEvent, &serde_json::to_value(&op).unwrap());
}

/// The AsyncAPI parser, pinned, installed once per target dir and reused.
const ASYNCAPI_PARSER: &str = "@asyncapi/parser@3.6.6";

#[test]
fn the_asyncapi_document_passes_the_asyncapi_parser() {
    let install = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asyncapi-parser-3.6.6");
    if !install.join("node_modules/@asyncapi/parser").is_dir() {
        let npm = std::process::Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&install)
            .args([
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                ASYNCAPI_PARSER,
            ])
            .status()
            .expect("npm runs: checking schemas/asyncapi.yaml needs Node.js 18+ and npm");
        assert!(npm.success(), "npm install {ASYNCAPI_PARSER} failed");
    }
    let out = std::process::Command::new("node")
        .arg(root().join("tests/asyncapi_check.cjs"))
        .arg(&install)
        .arg(root().join("schemas/asyncapi.yaml"))
        .output()
        .expect("node runs: checking schemas/asyncapi.yaml needs Node.js 18+");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the AsyncAPI parser refuses schemas/asyncapi.yaml:\n{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The document is written by hand: its names, routing keys and headers must be the
/// ones the code uses.
#[test]
fn the_asyncapi_document_names_what_the_code_uses() {
    use payfleet::bus::{Names, headers};
    use payfleet::contract::ProviderName;
    let text = std::fs::read_to_string(root().join("schemas/asyncapi.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).expect("YAML");
    let channels = &doc["channels"];
    let names = Names::new("payfleet");
    let enum_of = |channel: &str, parameter: &str| -> Vec<String> {
        let list = channels[channel]["parameters"][parameter]["enum"].as_array();
        let list = list.unwrap_or_else(|| panic!("{channel}.{parameter} has an enum"));
        sorted(list.iter().map(|v| v.as_str().unwrap()))
    };
    assert_eq!(
        enum_of("commands", "provider"),
        sorted(ProviderName::ALL.map(ProviderName::as_str))
    );
    assert_eq!(
        enum_of("commands", "operation"),
        sorted(Operation::ALL.map(Operation::as_str))
    );
    assert_eq!(
        enum_of("paymentEvents", "status"),
        sorted(EventStatus::ALL.map(EventStatus::as_str))
    );
    let address = |channel: &str| channels[channel]["address"].as_str().unwrap().to_owned();
    let exchange = |channel: &str| {
        channels[channel]["bindings"]["amqp"]["exchange"]["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(exchange("commands"), names.commands_exchange());
    assert_eq!(exchange("paymentEvents"), names.events_exchange());
    assert_eq!(exchange("operatorEvents"), names.events_exchange());
    assert_eq!(
        address("ecommpayCommands"),
        names.command_queue(ProviderName::Ecommpay)
    );
    assert_eq!(
        address("epayCommands"),
        names.command_queue(ProviderName::Epay)
    );
    assert_eq!(address("eventsQueue"), names.events_queue());
    // The default events queue's bound, as config/default.toml sets it.
    let defaults: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("config/default.toml")).unwrap())
            .unwrap();
    let arguments = &channels["eventsQueue"]["x-payfleet-queue-arguments"];
    for (argument, setting) in [
        ("x-max-length", "events_queue_max_length"),
        ("x-max-length-bytes", "events_queue_max_bytes"),
    ] {
        assert_eq!(
            arguments[argument].as_i64(),
            defaults["amqp"][setting].as_integer(),
            "eventsQueue {argument} against amqp.{setting}"
        );
    }
    assert_eq!(arguments["x-overflow"], "drop-head");
    assert_eq!(address("deadLetters"), names.dead());
    assert_eq!(address("delays"), names.delay(0).replace('0', "{ms}"));
    assert_eq!(address("canaries"), names.canary());
    assert!(text.contains(&format!("`{}.<ms>`", payfleet::bus::canary::ROUTING_PREFIX)));
    for header in [
        headers::ATTEMPT,
        headers::REASON,
        headers::ROUTING_KEY,
        headers::CHECK_BACK,
        headers::DEFERRED,
        headers::DEFERRALS,
        headers::RATE_TICKET,
        headers::TRACEPARENT,
        headers::TRACESTATE,
        headers::DELIVERY_COUNT,
        headers::PUBLISHED_MS,
        headers::PROVIDER,
        headers::METHOD,
        headers::OPERATION,
        headers::CE_ID,
        headers::CE_SOURCE,
        headers::CE_TYPE,
        headers::CE_SPECVERSION,
        headers::CE_TIME,
    ] {
        assert!(
            text.contains(&format!("{header}:")),
            "schemas/asyncapi.yaml does not describe the header {header}"
        );
    }
}

fn sorted<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn payfleet_schema_prints_the_files_and_reads_no_settings() {
    for (what, file) in [
        ("command", "command.schema.json"),
        ("event", "event.schema.json"),
        ("operator-event", "operator-event.schema.json"),
        ("asyncapi", "asyncapi.yaml"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_payfleet"))
            .args(["schema", what])
            // Settings that would stop any other command: this one reads none.
            .env("PAYFLEET__SANDBOX__LISTEN", "not-an-address")
            .env("PAYFLEET_CONFIG", "/nonexistent/payfleet.toml")
            .output()
            .expect("the binary runs");
        assert!(
            out.status.success(),
            "payfleet schema {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kept = std::fs::read(root().join("schemas").join(file)).unwrap();
        assert!(
            out.stdout == kept,
            "payfleet schema {what} is not schemas/{file}"
        );
    }
}
