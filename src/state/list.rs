//! Reading many records at once, for operators: those in the open index, or every one
//! by SCAN (on a cluster, of every primary). Both read in batches of [`BATCH`] with one
//! pipelined round trip each (on a cluster, concurrent reads: the records lie in many
//! slots), so a large keyspace never blocks Redis (no KEYS, no unbounded ZRANGE).

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
        let pattern = format!("{}:{{*}}:rec", self.prefix);
        let mut scan = self.conn.scan(&pattern, BATCH).await?;
        while let Some(names) = scan.next_batch().await? {
            let keys = names.iter().filter_map(|n| self.key_of_record(n)).collect();
            for (k, r) in self.records_of(keys).await? {
                visit(k, r);
            }
        }
        Ok(())
    }

    /// The records of `keys` in one round trip; a key whose record is gone
    /// (settled and expired meanwhile) is left out, as is one Redis holds in a shape
    /// no script writes.
    async fn records_of(&self, keys: Vec<IdempotencyKey>) -> Result<Vec<(IdempotencyKey, Record)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let reads: Vec<redis::Cmd> = keys
            .iter()
            .map(|k| redis::cmd("HGETALL").arg(self.record_key(k)).clone())
            .collect();
        let hashes: Vec<HashMap<String, String>> = self.conn.query_each(&reads).await?;
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
        let conn = super::super::RedisConn::to(&"redis://127.0.0.1:1".parse().unwrap(), false);
        let store = super::StateStore::new(conn.unwrap(), "pf", 1000);
        let key = crate::contract::IdempotencyKey::parse("po-1:a.b").unwrap();
        let name = store.record_key(&key);
        assert_eq!(store.key_of_record(&name), Some(key));
        assert_eq!(store.key_of_record("pf:{po-1}:alloc"), None);
        assert_eq!(store.key_of_record("other:{po-1}:rec"), None);
    }
}
