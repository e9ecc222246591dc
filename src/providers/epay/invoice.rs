//! Invoice ids: 6 to 15 digits, unique, and unique in their last six digits among
//! recent orders (both documents ask for it), allocated atomically in Redis per
//! terminal, and the same for an idempotency key on every retry.
//!
//! Redis losing its data must not give a key a second id (epay would pay it again):
//! the ids are derived from the terminal and the key (SHA-256), and the allocator takes
//! the first of the key's candidates whose last six digits are free. After a loss the
//! same first candidate comes back, so epay refuses the resubmission as a known invoice
//! and the status query settles it. A key whose first candidates were skipped because
//! a recent order held their suffix (about one in a million per recent order: one key
//! in ten once a hundred thousand orders are recent) would get another id after a loss;
//! so every copy of the command payfleet parks carries its id (`x-payfleet-payment-id`),
//! sealed with an HMAC keyed by the client secret and bound to the key ([`Invoices::carry`]),
//! and the allocator takes a carried id back when its seal holds and it is one of the
//! key's candidates. Unsealed, a publisher could have chosen another of the key's
//! candidates for a copy of a paid command after a loss, and had it paid again.
//! Left: the command's own first delivery, redelivered after a worker died and Redis
//! lost its data both, carries no id.
//!
//! Hash slot: every allocator key carries the tag `{epay:<terminal>}`, so the script
//! touches one slot (Redis Cluster runs it). The allocator must be per terminal, not
//! per command, so it cannot share the command's own slot (`{<key>}`): the link between
//! the two is the invoice id, which the claim stores in the command's record (`pid`).
//!
//! A transaction's `secret_hash` is not stored: it is derived from its invoice id with
//! an HMAC keyed by the epay client secret. A random one kept in Redis was lost with
//! Redis's data, and then a 3-D Secure confirmation could not be sent with the secret
//! its transaction's postLink echoes (about 90 transfers per chaos run waited for an
//! operator); a derived one is the same before and after, and cannot be guessed from
//! the invoice id without the client secret.

use crate::state::{Lua, RedisConn};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;

#[derive(Clone)]
pub struct Invoices {
    conn: RedisConn,
    prefix: Arc<str>,
    terminal: Arc<str>,
    retention_ms: u64,
    script: Arc<Lua>,
    /// Keys the HMAC that derives each transaction's `secret_hash`.
    secret: SecretString,
}

/// Separate these uses of the client secret from any other.
const SECRET_HASH_DOMAIN: &[u8] = b"payfleet epay secret_hash\0";
const CARRY_DOMAIN: &[u8] = b"payfleet epay carried invoice\0";

/// A transaction's invoice id and the secret its postLink must echo.
pub struct Allocation {
    pub invoice_id: String,
    pub secret_hash: SecretString,
}

impl std::fmt::Debug for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Allocation({}, [REDACTED])", self.invoice_id)
    }
}

impl Invoices {
    pub fn new(
        conn: RedisConn,
        prefix: &str,
        terminal: &str,
        retention_ms: u64,
        secret: SecretString,
    ) -> Self {
        Invoices {
            conn,
            prefix: prefix.into(),
            terminal: terminal.into(),
            retention_ms,
            script: Arc::new(Lua::new(include_str!("allocate.lua"))),
            secret,
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{{epay:{}}}:{suffix}", self.prefix, self.terminal)
    }

    /// The key's invoice id and secret_hash, allocated on first use: the id `carried`
    /// seals if its seal holds and it is one of the key's candidates (a parked copy's,
    /// see the module's comment), else the first candidate whose suffix is free.
    pub async fn allocate(
        &self,
        key: &str,
        carried: Option<&str>,
    ) -> redis::RedisResult<Allocation> {
        let mut conn = self.conn.clone();
        let invoice_id: String = self
            .script
            .key(self.key(&format!("k:{key}")))
            .key(self.key("recent"))
            .key(self.key("idx"))
            .arg(key)
            .arg(self.retention_ms)
            .arg(
                carried
                    .and_then(|c| self.unseal(key, c))
                    .unwrap_or_default(),
            )
            .arg(candidates(&self.terminal, key))
            .invoke_async(&mut conn)
            .await?;
        Ok(Allocation {
            secret_hash: self.secret_hash(&invoice_id),
            invoice_id,
        })
    }

    /// The `secret_hash` of a transaction with this invoice id: 32 hex digits of
    /// HMAC-SHA256(client secret, domain ‖ invoice id).
    pub fn secret_hash(&self, invoice_id: &str) -> SecretString {
        SecretString::from(self.mac(SECRET_HASH_DOMAIN, &[invoice_id]))
    }

    /// What a parked copy of `key`'s command carries: `<invoice id>/<seal>`, the seal
    /// HMAC-SHA256(client secret, domain ‖ key ‖ 0 ‖ invoice id) as 32 letters (`a`–`p`,
    /// one a nibble). No digit in the seal, and `/` between, so nothing in the header
    /// joins into a run that looks like a card number.
    pub fn carry(&self, key: &str, invoice_id: &str) -> String {
        format!("{invoice_id}/{}", self.seal(key, invoice_id))
    }

    /// The invoice id a carried value seals for `key`, if its seal holds.
    fn unseal<'a>(&self, key: &str, carried: &'a str) -> Option<&'a str> {
        let (invoice_id, seal) = carried.split_once('/')?;
        let expected = SecretString::from(self.seal(key, invoice_id));
        secret_matches(&expected, seal).then_some(invoice_id)
    }

    fn seal(&self, key: &str, invoice_id: &str) -> String {
        let hex = self.mac(CARRY_DOMAIN, &[key, invoice_id]);
        hex.chars()
            .map(|c| char::from(b'a' + c.to_digit(16).expect("hex") as u8))
            .collect()
    }

    /// 32 hex digits of HMAC-SHA256(client secret, domain ‖ parts joined by 0 bytes).
    fn mac(&self, domain: &[u8], parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(domain);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[0]);
            }
            mac.update(part.as_bytes());
        }
        crate::contract::hex(&mac.finalize().into_bytes()[..16])
    }

    /// The idempotency key and secret_hash of an invoice payfleet allocated.
    pub async fn find(
        &self,
        invoice_id: &str,
    ) -> redis::RedisResult<Option<(String, SecretString)>> {
        let mut conn = self.conn.clone();
        let key: Option<String> = redis::cmd("HGET")
            .arg(self.key("idx"))
            .arg(format!("i:{invoice_id}"))
            .query_async(&mut conn)
            .await?;
        Ok(key.map(|key| (key, self.secret_hash(invoice_id))))
    }
}

/// Candidates tried for one key, in order.
const CANDIDATES: u32 = 32;

/// The key's candidate invoice ids: 15 digits each, derived from the terminal and the
/// key, the same on every call. None passes the Luhn check: an invoice id stands in
/// events, logs and records, where one that looks like a card number (one in ten would)
/// makes the card-data scanners of those who read them raise an alarm.
pub fn candidates(terminal: &str, key: &str) -> Vec<String> {
    use sha2::{Digest, Sha256};
    (0..CANDIDATES)
        .map(|i| {
            let digest = Sha256::new()
                .chain_update(terminal.as_bytes())
                .chain_update([0])
                .chain_update(key.as_bytes())
                .chain_update(i.to_be_bytes())
                .finalize();
            let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
            let id = 100_000_000_000_000 + n % 900_000_000_000_000;
            // One check digit passes Luhn; any other last digit fails it.
            let luhn = crate::contract::card::holds_pan(&id.to_string());
            (if luhn {
                id - id % 10 + (id + 1) % 10
            } else {
                id
            })
            .to_string()
        })
        .collect()
}

/// Constant-time comparison of a postLink's `secret_hash` with the transaction's.
pub fn secret_matches(expected: &SecretString, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let a = expected.expose_secret().as_bytes();
    a.len() == given.len() && bool::from(a.ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::candidates;

    #[test]
    fn candidates_are_fifteen_digits_the_same_for_a_key_and_differ_between_keys() {
        let a = candidates("terminal", "key-1");
        assert_eq!(a.len(), 32);
        assert!(
            a.iter()
                .all(|c| c.len() == 15 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_eq!(a, candidates("terminal", "key-1"));
        assert_ne!(a[0], candidates("terminal", "key-2")[0]);
        assert_ne!(a[0], candidates("other-terminal", "key-1")[0]);
        let suffixes: std::collections::HashSet<_> = a.iter().map(|c| &c[9..]).collect();
        assert!(suffixes.len() > 30, "the candidates' last six digits vary");
    }

    #[test]
    fn no_candidate_looks_like_a_card_number() {
        let all: Vec<String> = (0..200)
            .flat_map(|k| candidates("terminal", &format!("key-{k}")))
            .collect();
        assert!(all.iter().all(|c| c.len() == 15));
        assert!(
            !all.iter().any(|c| crate::contract::card::holds_pan(c)),
            "a candidate passes the Luhn check"
        );
    }
}
