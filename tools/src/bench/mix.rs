//! `--mix`: which methods the bench publishes, by name, round-robin. Each method knows
//! a command the sandbox accepts and pays out, and the payment id its provider sees.

use super::load::Message;
use serde::Serialize;
use serde_json::json;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    HomebankPayout,
    /// Banks of India payouts: sent only in the provider's working hours, so the bench
    /// runs the fleet's and the sandbox's clocks inside them ([`in_working_hours`]).
    IndiaPayout,
}

impl Method {
    pub const ALL: [Method; 2] = [Method::HomebankPayout, Method::IndiaPayout];

    pub fn name(self) -> &'static str {
        match self {
            Method::HomebankPayout => "homebank-payout",
            Method::IndiaPayout => "india-payout",
        }
    }

    /// A valid command for `key` that ends `succeeded`.
    fn body(self, key: &str, i: usize) -> serde_json::Value {
        let (method, minor, currency, details) = match self {
            Method::HomebankPayout => (
                "homebank",
                2_000_00,
                "KZT",
                json!({ "customer": { "id": format!("c{i}"), "phone": "77074544579", "ip_address": "10.1.2.3" } }),
            ),
            Method::IndiaPayout => (
                "banks_of_india",
                5_000_00,
                "INR",
                json!({
                    "customer": { "id": format!("c{i}"), "ip_address": "10.1.2.3" },
                    "account": { "number": "5588994446666", "bank_code": "SBIN0000123", "bank_id": 403, "customer_name": "Asha Rao" },
                }),
            ),
        };
        json!({
            "version": 1,
            "idempotency_key": key,
            "method": method,
            "operation": "payout",
            "amount": { "minor": minor, "currency": currency },
            "details": details,
        })
    }

    /// The payment id the provider sees for `key` (ECommPay uses the key itself).
    pub fn payment_id(self, key: &str) -> String {
        match self {
            Method::HomebankPayout | Method::IndiaPayout => key.to_owned(),
        }
    }
}

/// The clock offset (ms) that makes the fleet's and the sandbox's clocks read a Monday
/// noon in GMT+8, inside Banks of India's payout hours (Mon–Fri 10:30–19:00 GMT+8): the
/// bench measures payouts being sent, not held until the window opens.
pub fn in_working_hours() -> i64 {
    let noon = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00+08:00")
        .expect("a valid moment")
        .with_timezone(&chrono::Utc);
    payfleet::providers::ecommpay::india_hours::OffsetClock::reading(noon)
        .offset
        .num_milliseconds()
}

/// The methods to publish, in turn; at least one, no unknown names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mix(Vec<Method>);

impl Default for Mix {
    fn default() -> Self {
        Mix(vec![Method::HomebankPayout])
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        let methods = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|name| {
                Method::ALL
                    .into_iter()
                    .find(|m| m.name() == name)
                    .ok_or_else(|| format!("unknown method {name:?} (known: {})", Mix::known()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if methods.is_empty() {
            return Err(format!(
                "name at least one method (known: {})",
                Mix::known()
            ));
        }
        Ok(Mix(methods))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.0.iter().map(|m| m.name()).collect();
        f.write_str(&names.join(","))
    }
}

impl Mix {
    fn known() -> String {
        let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
        names.join(", ")
    }

    /// `n` commands with keys unique to `run`, the methods taken in turn.
    pub fn messages(&self, run: &str, n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                let method = self.0[i % self.0.len()];
                // The letter keeps the run id's digits and the index apart: run `8234567890`
                // and command 1234 as `8234567890-1234` are card-like (12 to 19 digits
                // with single separators, passing Luhn one time in ten), and such a key is
                // refused (found by a bench that lost 400 of 5,000 commands so).
                let key = format!("bench-{run}-n{i}");
                let body = method.body(&key, i);
                let routing_key = payfleet::contract::command::routing_key_of(&body)
                    .expect("bench commands are routable");
                Message {
                    payment_id: method.payment_id(&key),
                    key,
                    routing_key,
                    body: body.to_string().into_bytes(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_names_and_refuses_unknown_ones() {
        assert_eq!(
            "homebank-payout".parse::<Mix>(),
            Ok(Mix(vec![Method::HomebankPayout]))
        );
        assert_eq!(
            " homebank-payout , homebank-payout".parse::<Mix>(),
            Ok(Mix(vec![Method::HomebankPayout; 2]))
        );
        assert_eq!(
            "homebank-payout,india-payout".parse::<Mix>(),
            Ok(Mix(vec![Method::HomebankPayout, Method::IndiaPayout]))
        );
        let err = "homebank-payout,india-sale".parse::<Mix>().unwrap_err();
        assert!(
            err.contains("\"india-sale\"") && err.contains("homebank-payout, india-payout"),
            "{err}"
        );
        assert!("".parse::<Mix>().is_err());
    }

    /// A run id of digits only and an index that together would pass for a card number.
    #[test]
    fn no_key_looks_like_a_card_number() {
        for m in Mix(vec![Method::HomebankPayout]).messages("8234567890", 2000) {
            assert!(
                payfleet::contract::IdempotencyKey::parse(&m.key).is_ok(),
                "{}",
                m.key
            );
        }
    }

    #[test]
    fn messages_are_valid_routable_commands_with_unique_keys() {
        let msgs = Mix(Method::ALL.to_vec()).messages("r1", 3);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].routing_key, "ecommpay.payout");
        assert_eq!(msgs[1].routing_key, "ecommpay.payout");
        assert!(String::from_utf8_lossy(&msgs[1].body).contains("banks_of_india"));
        assert_eq!(msgs[2].key, "bench-r1-n2");
        assert_eq!(msgs[2].payment_id, msgs[2].key);
        for m in &msgs {
            let key = payfleet::contract::FingerprintKey::new("bench".to_owned().into());
            let decoded = payfleet::contract::command::decode(&m.body, &key);
            assert!(matches!(
                decoded,
                payfleet::contract::command::Decoded::Valid(_)
            ));
        }
    }
}
