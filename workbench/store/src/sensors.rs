//! Sensors as the case knows them: enrolment, and the batches each has delivered — the ledger
//! that makes delivery exactly once. A batch is stored with its ledger row in one DuckDB
//! transaction, so a hub killed at any moment either has both or neither, and a batch sent
//! again after a lost acknowledgement is recognised and skipped.

use crate::{CaseStore, StoreError, transactions};
use duckdb::params;
use tapline_core::Transaction;

/// What storing a sensor's batch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Stored now; its transactions got these ids.
    Stored(std::ops::Range<i64>),
    /// Already stored earlier (a resend); nothing written.
    Duplicate,
}

impl CaseStore {
    /// Enrols a sensor by name with its certificate's fingerprint; returns its id. A name
    /// already enrolled is refused (revoke it first).
    pub fn enrol_sensor(&mut self, name: &str, cert_fingerprint: &str) -> Result<i64, StoreError> {
        self.atomically(|tx| {
            let id: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM sensors", [], |r| {
                    r.get(0)
                })?;
            tx.execute(
                "INSERT INTO sensors (id, name, cert_fingerprint) VALUES (?, ?, ?)",
                params![id, name, cert_fingerprint],
            )?;
            Ok(id)
        })
    }

    /// The enrolled, unrevoked sensor with this certificate fingerprint: (id, name).
    pub fn sensor_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let rows = self.select(
            "SELECT id, name FROM sensors WHERE cert_fingerprint = ? AND revoked_at IS NULL",
            &[&fingerprint],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.into_iter().next())
    }

    /// The highest batch sequence number stored for `sensor` (0: none); the sensor resumes
    /// after it.
    pub fn stored_through(&self, sensor: i64) -> Result<u64, StoreError> {
        let rows = self.select(
            "SELECT coalesce(max(seq), 0) FROM sensor_batches WHERE sensor_id = ?",
            &[&sensor],
            |r| r.get::<_, u64>(0),
        )?;
        Ok(rows.into_iter().next().unwrap_or(0))
    }

    /// Stores batch `seq` of `sensor` unless it already was: the transactions and the ledger
    /// row land together or not at all.
    pub fn store_sensor_batch(
        &mut self,
        sensor: i64,
        seq: u64,
        txs: &[Transaction],
    ) -> Result<Delivery, StoreError> {
        self.atomically(|tx| {
            let seen: i64 = tx.query_row(
                "SELECT count(*) FROM sensor_batches WHERE sensor_id = ? AND seq = ?",
                params![sensor, seq],
                |r| r.get(0),
            )?;
            if seen > 0 {
                return Ok(Delivery::Duplicate);
            }
            let first: i64 = tx.query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM transactions",
                [],
                |r| r.get(0),
            )?;
            transactions::append(tx, None, first, txs)?;
            tx.execute(
                "INSERT INTO sensor_batches (sensor_id, seq, records, first_transaction) VALUES (?, ?, ?, ?)",
                params![sensor, seq, txs.len() as u32, first],
            )?;
            Ok(Delivery::Stored(first..first + txs.len() as i64))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txs(n: usize) -> Vec<Transaction> {
        (0..n)
            .map(|i| Transaction {
                method: "GET".into(),
                uri: format!("/s/{i}"),
                sensor_id: Some("edge-1".into()),
                ..Transaction::default()
            })
            .collect()
    }

    #[test]
    fn each_batch_is_stored_once_across_resends_and_reopens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("case.duckdb");
        let mut store = CaseStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let id = store
            .enrol_sensor("edge-1", "ab12")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            store.enrol_sensor("edge-1", "cd34").is_err(),
            "names are unique"
        );
        assert_eq!(
            store.sensor_by_fingerprint("ab12").ok().flatten(),
            Some((id, "edge-1".into()))
        );
        assert_eq!(store.sensor_by_fingerprint("zz").ok().flatten(), None);
        assert_eq!(store.stored_through(id).ok(), Some(0));
        let first = store
            .store_sensor_batch(id, 1, &txs(3))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, Delivery::Stored(1..4));
        assert_eq!(
            store.store_sensor_batch(id, 1, &txs(3)).ok(),
            Some(Delivery::Duplicate)
        );
        assert_eq!(
            store.store_sensor_batch(id, 2, &txs(2)).ok(),
            Some(Delivery::Stored(4..6))
        );
        drop(store);
        let mut store = CaseStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.stored_through(id).ok(), Some(2));
        assert_eq!(
            store.store_sensor_batch(id, 2, &txs(2)).ok(),
            Some(Delivery::Duplicate)
        );
        assert_eq!(store.next_transaction_id().ok(), Some(6));
    }
}
