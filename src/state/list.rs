//! Reading many records at once, for operators: those in the open index, or every one
//! by SCAN. Both read in batches of [`BATCH`] with one pipelined round trip each, so a
//! large keyspace never blocks Redis (no KEYS, no unbounded ZRANGE).

use super::store::Result;
use super::{Record, StateStore, record};
use crate::contract::IdempotencyKey;
use std::collections::HashMap;

/// Keys asked for per SCAN (its COUNT) or ZRANGE, and records read per pipeline.
const BATCH: usize = 1000;

impl StateStore {
    /// The command whose record is at Redis key `name`, if it is a record of this store.
    fn key_of_record(&self, name: &str) -> Option<IdempotencyKey> {
        let inner = name
            .strip_prefix(&*self.prefix)?
            .strip_prefix(":{")?
            .strip_suffix("}:rec")?;
        IdempotencyKey::parse(inner).ok()
    }

    /// Hands `visit` the record of every payment in the open index (those the
    /// reconciler watches). Paged by rank: an entry added or removed meanwhile may be
    /// missed or seen twice, as in any live listing.
    pub async fn open_records(&self, mut visit: impl FnMut(IdempotencyKey, Record)) -> Result<()> {
        let mut conn = self.conn.clone();
        let mut from = 0;
        loop {
            let keys: Vec<String> = redis::cmd("ZRANGE")
                .arg(self.open_key())
                .arg(from)
                .arg(from + BATCH - 1)
                .query_async(&mut conn)
                .await?;
            let full = keys.len() == BATCH;
            let keys = keys
                .iter()
                .filter_map(|k| IdempotencyKey::parse(k.as_str()).ok())
                .collect();
            for (k, r) in self.records_of(keys).await? {
                visit(k, r);
            }
            if !full {
                return Ok(());
            }
            from += BATCH;
        }
    }

    /// Hands `visit` every record under this store's prefix, by SCAN with MATCH and
    /// COUNT (a record may be seen twice, as SCAN allows).
    pub async fn all_records(&self, mut visit: impl FnMut(IdempotencyKey, Record)) -> Result<()> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:{{*}}:rec", self.prefix);
        let mut cursor = 0u64;
        loop {
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await?;
            let keys = names.iter().filter_map(|n| self.key_of_record(n)).collect();
            for (k, r) in self.records_of(keys).await? {
                visit(k, r);
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// The records of `keys` in one pipelined round trip; a key whose record is gone
    /// (settled and expired meanwhile) is left out, as is one Redis holds in a shape
    /// no script writes.
    async fn records_of(&self, keys: Vec<IdempotencyKey>) -> Result<Vec<(IdempotencyKey, Record)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HGETALL").arg(self.record_key(k));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        Ok(keys
            .into_iter()
            .zip(hashes)
            .filter(|(_, fields)| !fields.is_empty())
            .filter_map(|(k, fields)| Some((k, record::parse(&fields).ok()?)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_record_key_reads_back_into_its_command_key() {
        let store = super::StateStore::connect("redis://127.0.0.1:1", "pf", 1000)
            .await
            .unwrap();
        let key = crate::contract::IdempotencyKey::parse("po-1:a.b").unwrap();
        let name = store.record_key(&key);
        assert_eq!(store.key_of_record(&name), Some(key));
        assert_eq!(store.key_of_record("pf:{po-1}:alloc"), None);
        assert_eq!(store.key_of_record("other:{po-1}:rec"), None);
    }
}
