//! What a hostile (or careless) publisher sends, mixed into the chaos run, and the scan
//! for card numbers wherever payfleet writes: events, dead letters, Redis, logs and
//! metrics. Card numbers are told by their Luhn check digit, written with or without
//! separators; a CVC or an expiry cannot be told from other numbers, so the commands
//! that carry them carry a card number too.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use payfleet::contract::{Event, EventStatus, IdempotencyKey};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Marks every hostile body, to find it in the logs.
pub const MARK: &str = "chaos-hostile";

/// What a hostile publication must come to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// A `rejected` event for its key, its reason quoting none of the input.
    Rejected,
    /// A valid command whose headers are hostile: processed as any other.
    Processed,
    /// No key payfleet may repeat (a card number, or no JSON at all): a redacted dead
    /// letter or a rejection, never an echo.
    Refused,
}

pub struct Hostile {
    pub key: Option<IdempotencyKey>,
    pub routing_key: &'static str,
    pub body: String,
    pub headers: FieldTable,
    pub expect: Expect,
}

const PAN: &str = "4405639704015096";
const GROUPED: &str = "4405 6397 0401 5096";
const DASHED: &str = "4405-6397-0401-5096";

fn card() -> Value {
    json!({"pan": PAN, "expiry": {"month": "01", "year": "25"}, "cvc": "815", "name": "HOSTILE"})
}

fn transfer(key: &str, sender: Value, receiver: Value) -> Value {
    json!({
        "version": 1, "idempotency_key": key, "method": "p2p", "operation": "transfer",
        "amount": {"minor": 10_000, "currency": "KZT"},
        "details": {"description": MARK, "sender": sender, "receiver": receiver},
    })
}

fn payout(key: &str) -> Value {
    json!({
        "version": 1, "idempotency_key": key, "method": "homebank", "operation": "payout",
        "amount": {"minor": 200_000, "currency": "KZT"},
        "details": {"customer": {"id": MARK, "phone": "77074544579", "ip_address": "1.1.1.1"}},
    })
}

/// Headers of a hostile publication: a trace and `extra`.
fn headers(extra: Option<(&str, AMQPValue)>) -> FieldTable {
    let mut h = payfleet::bus::trace_headers();
    if let Some((name, value)) = extra {
        h.insert(ShortString::from(name), value);
    }
    h
}

/// The hostile publications of run `run_id`.
pub fn commands(run_id: &str) -> Vec<Hostile> {
    let key = |n: u32| format!("hostile-{run_id}-{n}");
    let receiver = json!({"card": {"pan": "377514500004820"}});
    let mut expiry_as_numbers = card();
    expiry_as_numbers["expiry"] = json!({"month": 1, "year": 25});
    let mut grouped_in_currency = transfer(&key(2), json!({"card": card()}), receiver.clone());
    grouped_in_currency["amount"]["currency"] = json!(GROUPED);
    let mut huge_amount = transfer(&key(5), json!({"card": card()}), receiver.clone());
    huge_amount["amount"]["minor"] = json!(0);
    let huge = huge_amount
        .to_string()
        .replace("\"minor\":0", &format!("\"minor\":{}", "9".repeat(400)));
    let mut amount_as_array = transfer(&key(6), json!({"card": card()}), receiver.clone());
    amount_as_array["amount"] = json!([10_000, "KZT"]);
    let rejected = |n: u32, body: String| Hostile {
        key: IdempotencyKey::parse(key(n)).ok(),
        routing_key: "epay.transfer",
        body,
        headers: headers(None),
        expect: Expect::Rejected,
    };
    let processed = |n: u32, with: FieldTable| Hostile {
        key: IdempotencyKey::parse(key(n)).ok(),
        routing_key: "ecommpay.payout",
        body: payout(&key(n)).to_string(),
        headers: with,
        expect: Expect::Processed,
    };
    let refused = |body: String| Hostile {
        key: None,
        routing_key: "epay.transfer",
        body,
        headers: headers(None),
        expect: Expect::Refused,
    };
    vec![
        rejected(
            1,
            transfer(
                &key(1),
                json!({"card": expiry_as_numbers}),
                receiver.clone(),
            )
            .to_string(),
        ),
        rejected(2, grouped_in_currency.to_string()),
        rejected(
            3,
            transfer(&key(3), json!({"card": card()}), json!({"card": card()})).to_string(),
        ),
        rejected(5, huge),
        rejected(6, amount_as_array.to_string()),
        processed(
            7,
            headers(Some(("x-delivery-count", AMQPValue::LongLongInt(50)))),
        ),
        processed(
            8,
            headers(Some((
                "x-padding",
                AMQPValue::LongString(LongString::from("p".repeat(20 * 1024))),
            ))),
        ),
        refused(transfer(PAN, json!({"card": card()}), receiver.clone()).to_string()),
        refused(format!(
            r#"{{"version":1,"idempotency_key":"{MARK}","details":{{"pan":"{DASHED}","#
        )),
    ]
}

/// The card numbers in a command body (every `pan`, separators dropped).
pub fn pans_in(body: &str) -> BTreeSet<String> {
    fn walk(v: &Value, found: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str() {
                        Some(pan) if k == "pan" => {
                            found.insert(pan.chars().filter(char::is_ascii_digit).collect());
                        }
                        _ => walk(v, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = BTreeSet::new();
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        walk(&v, &mut found);
    }
    found.retain(|p| p.len() >= 12);
    found
}

/// The card numbers this module's commands carry, however they write them.
pub fn hostile_pans() -> BTreeSet<String> {
    [PAN.to_owned()].into()
}

/// Whether `text` holds one of `pans`, written with or without single spaces or dashes
/// between its digits.
pub fn holds_card(text: &str, pans: &BTreeSet<String>) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let joined: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            let between_digits = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            !(matches!(c, ' ' | '-') && between_digits)
        })
        .map(|(_, c)| *c)
        .collect();
    pans.iter().any(|p| joined.contains(p.as_str()))
}

/// The hostile publications that did not come to what they must, by key.
pub fn unanswered(hostile: &[Hostile], events: &[Event]) -> Vec<String> {
    hostile
        .iter()
        .filter_map(|h| {
            let key = h.key.as_ref()?;
            let mut statuses = events
                .iter()
                .filter(|e| &e.idempotency_key == key && e.status.is_terminal())
                .map(|e| e.status);
            let answered = match h.expect {
                Expect::Rejected => statuses.any(|s| s == EventStatus::Rejected),
                Expect::Processed => statuses.any(|s| s != EventStatus::Rejected),
                Expect::Refused => true,
            };
            (!answered).then(|| key.to_string())
        })
        .collect()
}

/// The places (name, text) that hold one of `pans`, by name.
pub fn holding_cards(places: &[(String, String)], pans: &BTreeSet<String>) -> Vec<String> {
    places
        .iter()
        .filter(|(_, text)| holds_card(text, pans))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The dead letters in `queue` (body, headers), left in it.
pub async fn dead_letters(ch: &lapin::Channel, queue: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let options = lapin::options::BasicGetOptions { no_ack: false };
    while let Ok(Some(m)) = ch.basic_get(queue.into(), options).await {
        seen.push(format!(
            "{} {:?}",
            String::from_utf8_lossy(&m.data),
            m.properties.headers()
        ));
    }
    seen
}

/// Every key under the settings' prefix in Redis (every primary of a cluster) and
/// what it holds, as text.
pub async fn redis_dump(redis: &payfleet::config::RedisSettings) -> anyhow::Result<Vec<String>> {
    let mut conn = payfleet::state::RedisConn::open(redis)?;
    let mut scan = conn.scan(&format!("{}*", redis.key_prefix), 1000).await?;
    let mut keys = Vec::new();
    while let Some(batch) = scan.next_batch().await? {
        keys.extend(batch);
    }
    let mut dump = Vec::with_capacity(keys.len());
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
        let read = match kind.as_str() {
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "string" => redis::cmd("GET").arg(&key).clone(),
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
            "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
            _ => continue,
        };
        let value: Vec<String> = read.query_async(&mut conn).await.unwrap_or_default();
        dump.push(format!("{key} {value:?}"));
    }
    Ok(dump)
}

/// The fleet's logs in `dir`, the simulator's left out: it plays the provider, whom
/// card data is sent to.
pub fn fleet_logs(dir: &std::path::Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name() != "sandbox.log")
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_however_they_are_written() {
        let pans = hostile_pans();
        for text in [
            PAN,
            GROUPED,
            DASHED,
            "unknown variant `4405 6397 0401 5096`, expected",
        ] {
            assert!(holds_card(text, &pans), "{text}");
        }
        assert!(!holds_card("4405 6397 0401 509", &pans));
        let body = transfer(
            "k",
            json!({"card": card()}),
            json!({"card": {"pan": DASHED}}),
        );
        assert_eq!(pans_in(&body.to_string()), pans);
    }

    #[test]
    fn every_hostile_body_carries_the_mark_or_a_card_number() {
        for h in commands("r1") {
            assert!(h.body.contains(MARK), "{}", h.body);
        }
    }
}
