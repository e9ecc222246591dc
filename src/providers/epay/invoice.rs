//! Invoice ids: 6 to 15 digits, unique, and unique in their last six digits among
//! recent orders (both documents ask for it), allocated atomically in Redis per
//! terminal, and the same for an idempotency key on every retry.
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
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)));
        Ok(Invoices {
            conn: ConnectionManager::new_with_config(client, config).await?,
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
            .key(self.key("seq"))
            .key(self.key("recent"))
            .key(self.key("idx"))
            .arg(key)
            .arg(&fresh)
            .arg(self.retention_ms)
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

/// Constant-time comparison of a postLink's `secret_hash` with the transaction's.
pub fn secret_matches(expected: &SecretString, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let a = expected.expose_secret().as_bytes();
    a.len() == given.len() && bool::from(a.ct_eq(given.as_bytes()))
}
