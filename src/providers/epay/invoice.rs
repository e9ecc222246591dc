//! Invoice ids: 6 to 15 digits, unique, and unique in their last six digits among
//! recent orders (both documents ask for it), allocated atomically in Redis per
//! terminal, and the same for an idempotency key on every retry.
//!
//! Redis losing its data must not give a key a second id (epay would pay it again):
//! the ids are derived from the terminal and the key (SHA-256), and the allocator takes
//! the first of the key's candidates whose last six digits are free. After a loss the
//! same first candidate comes back, so epay refuses the resubmission as a known invoice
//! and the status query settles it. (Only a key whose first candidates were skipped
//! because a recent order held their suffix, about one in a million per recent order,
//! could get another one.)
//!
//! Hash slot: every allocator key carries the tag `{epay:<terminal>}`, so the script
//! touches one slot (Redis Cluster runs it). The allocator must be per terminal, not
//! per command, so it cannot share the command's own slot (`{<key>}`): the link between
//! the two is the invoice id, which the claim stores in the command's record (`pid`).
//! The entry per key also keeps the transaction's `secret_hash` beside its invoice id,
//! so the gateway authenticates a postLink with reads in that one slot.

use redis::Script;
use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

#[derive(Clone)]
pub struct Invoices {
    conn: ConnectionManager,
    prefix: Arc<str>,
    terminal: Arc<str>,
    retention_ms: u64,
    script: Arc<Script>,
}

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
    pub async fn connect(
        url: &str,
        prefix: &str,
        terminal: &str,
        retention_ms: u64,
    ) -> redis::RedisResult<Self> {
        Ok(Invoices {
            conn: crate::state::redis_connection(url)?,
            prefix: prefix.into(),
            terminal: terminal.into(),
            retention_ms,
            script: Arc::new(Script::new(include_str!("allocate.lua"))),
        })
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{{epay:{}}}:{suffix}", self.prefix, self.terminal)
    }

    /// The key's invoice id and secret_hash, allocated on first use.
    pub async fn allocate(&self, key: &str) -> redis::RedisResult<Allocation> {
        let fresh =
            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        let mut conn = self.conn.clone();
        let (invoice_id, secret_hash): (String, String) = self
            .script
            .key(self.key(&format!("k:{key}")))
            .key(self.key("recent"))
            .key(self.key("idx"))
            .arg(key)
            .arg(&fresh)
            .arg(self.retention_ms)
            .arg(candidates(&self.terminal, key))
            .invoke_async(&mut conn)
            .await?;
        Ok(Allocation {
            invoice_id,
            secret_hash: SecretString::from(secret_hash),
        })
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
        let Some(key) = key else { return Ok(None) };
        let sh: Option<String> = redis::cmd("HGET")
            .arg(self.key(&format!("k:{key}")))
            .arg("sh")
            .query_async(&mut conn)
            .await?;
        Ok(sh.map(|sh| (key, SecretString::from(sh))))
    }
}

/// Candidates tried for one key, in order.
const CANDIDATES: u32 = 32;

/// The key's candidate invoice ids: 15 digits each, derived from the terminal and the
/// key, the same on every call.
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
            (100_000_000_000_000 + n % 900_000_000_000_000).to_string()
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
}
