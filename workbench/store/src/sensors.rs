//! Sensors as the case knows them: enrolment and revocation, their latest heartbeat, and the
//! batches each has delivered — the ledger that makes delivery exactly once. A batch is stored
//! with its ledger row in one DuckDB transaction, so a hub killed at any moment either has both
//! or neither, and a batch sent again after a lost acknowledgement is recognised and skipped.
//! Sequence numbers count within one spool of a sensor (a reinstalled sensor starts anew).

use crate::{CaseStore, StoreError, segments};
use duckdb::params;
use std::path::PathBuf;
use tapline_record::Transaction;

/// What storing a sensor's batch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Stored now; its transactions got these ids.
    Stored(std::ops::Range<i64>),
    /// Already stored earlier (a resend); nothing written.
    Duplicate,
    /// The sensor was revoked (perhaps while connected); nothing written.
    Revoked,
}

/// An enrolled sensor as `tapline sensors list` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SensorRow {
    /// Its id in this case.
    pub id: i64,
    /// Its enrolled name.
    pub name: String,
    /// SHA-256 of its certificate (hex).
    pub cert_fingerprint: String,
    /// When it was enrolled (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub enrolled_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Its last heartbeat or batch.
    pub last_seen_at: Option<String>,
    /// Software version it last reported.
    pub version: Option<String>,
    /// Its last heartbeat's counters (JSON object).
    pub stats: Option<serde_json::Value>,
    /// Batches stored from it.
    pub batches: u64,
    /// Transactions stored from it.
    pub transactions: u64,
    /// Seconds since its last heartbeat or batch (by the case's clock).
    pub seconds_since_seen: Option<i64>,
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

    /// Revokes the sensor named `name`: the hub refuses it from now on, and its name is free
    /// to enrol again (with a new certificate). Returns whether a sensor was revoked.
    pub fn revoke_sensor(&mut self, name: &str) -> Result<bool, StoreError> {
        self.atomically(|tx| {
            // Keep the row (its batches refer to it) under a name that frees the original.
            let n = tx.execute(
                "UPDATE sensors SET revoked_at = current_timestamp,
                        name = name || ' (revoked ' || strftime(current_timestamp, '%Y-%m-%d %H:%M:%S') || ' #' || id || ')'
                 WHERE name = ? AND revoked_at IS NULL",
                params![name],
            )?;
            Ok(n > 0)
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

    /// Every sensor, enrolment order, with its delivery totals.
    pub fn sensors(&self) -> Result<Vec<SensorRow>, StoreError> {
        self.select(
            "SELECT s.id, s.name, s.cert_fingerprint,
                    strftime(s.enrolled_at, '%Y-%m-%d %H:%M:%S'),
                    strftime(s.revoked_at, '%Y-%m-%d %H:%M:%S'),
                    strftime(s.last_seen_at, '%Y-%m-%d %H:%M:%S'),
                    s.version, CAST(s.stats AS VARCHAR),
                    (SELECT count(*) FROM sensor_batches b WHERE b.sensor_id = s.id),
                    (SELECT coalesce(sum(records), 0) FROM sensor_batches b WHERE b.sensor_id = s.id),
                    date_diff('second', s.last_seen_at, current_timestamp::TIMESTAMP)
             FROM sensors s ORDER BY s.id",
            &[],
            |r| {
                let stats: Option<String> = r.get(7)?;
                Ok(SensorRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    cert_fingerprint: r.get(2)?,
                    enrolled_at: r.get(3)?,
                    revoked_at: r.get(4)?,
                    last_seen_at: r.get(5)?,
                    version: r.get(6)?,
                    stats: stats.and_then(|s| serde_json::from_str(&s).ok()),
                    batches: r.get::<_, i64>(8)? as u64,
                    transactions: r.get::<_, i128>(9)? as u64,
                    seconds_since_seen: r.get(10)?,
                })
            },
        )
    }

    /// Records a heartbeat: the sensor's version and counters (a JSON object), seen now.
    pub fn sensor_heartbeat(
        &mut self,
        sensor: i64,
        version: &str,
        stats: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let stats = stats.to_string();
        self.atomically(|tx| {
            tx.execute(
                "UPDATE sensors SET last_seen_at = current_timestamp, version = ?, stats = ?::JSON WHERE id = ?",
                params![version, stats, sensor],
            )?;
            Ok(())
        })
    }

    /// The highest batch sequence number stored from `spool` of `sensor` (0: none); the
    /// sensor resumes after it.
    pub fn stored_through(&self, sensor: i64, spool: u64) -> Result<u64, StoreError> {
        let rows = self.select(
            "SELECT coalesce(max(seq), 0) FROM sensor_batches WHERE sensor_id = ? AND spool = ?",
            &[&sensor, &spool],
            |r| r.get::<_, u64>(0),
        )?;
        Ok(rows.into_iter().next().unwrap_or(0))
    }

    /// Stores batch `seq` of `spool` of `sensor` unless it already was: the transactions and
    /// the ledger row land together or not at all.
    pub fn store_sensor_batch(
        &mut self,
        sensor: i64,
        spool: u64,
        seq: u64,
        txs: &[Transaction],
    ) -> Result<Delivery, StoreError> {
        let mut d = self.store_sensor_batches(&[SensorBatch {
            sensor,
            spool,
            seq,
            txs,
        }])?;
        Ok(d.pop().unwrap_or(Delivery::Duplicate))
    }

    /// Stores several batches (of any sensors) in one DuckDB transaction — a group commit:
    /// each commit logs its rows to the WAL and syncs, so a hub under load commits what has
    /// queued up together instead of paying that per batch. Batches already stored (or
    /// repeated within `batches`) are skipped, and so are those of a sensor revoked since it
    /// connected — checked in the same transaction, so nothing lands after a revocation
    /// commits. All land or none do.
    pub fn store_sensor_batches(
        &mut self,
        batches: &[SensorBatch<'_>],
    ) -> Result<Vec<Delivery>, StoreError> {
        let ids = self.transaction_ids().clone();
        let dir = self.segment_dir();
        let mut unwritten: Option<std::io::Error> = None;
        let stored = self.atomically_appending(|tx| {
            let mut out = Vec::with_capacity(batches.len());
            let mut seen_now = std::collections::HashSet::new();
            let mut ledger = tx.prepare(
                "SELECT count(*) FROM sensor_batches WHERE sensor_id = ? AND spool = ? AND seq = ?",
            )?;
            let mut revoked = std::collections::HashMap::new();
            let mut standing = tx.prepare(
                "SELECT count(*) FROM sensors WHERE id = ? AND revoked_at IS NULL",
            )?;
            let mut rows: Vec<&Transaction> = Vec::new();
            // (batch, offset of its first record in `rows`), or why it is not stored.
            let mut fresh: Vec<Result<(&SensorBatch<'_>, i64), Delivery>> =
                Vec::with_capacity(batches.len());
            for b in batches {
                if let std::collections::hash_map::Entry::Vacant(e) = revoked.entry(b.sensor) {
                    let n: i64 = standing.query_row(params![b.sensor], |r| r.get(0))?;
                    e.insert(n == 0);
                }
                if revoked[&b.sensor] {
                    fresh.push(Err(Delivery::Revoked));
                    continue;
                }
                let seen: i64 =
                    ledger.query_row(params![b.sensor, b.spool, b.seq], |r| r.get(0))?;
                if seen > 0 || !seen_now.insert((b.sensor, b.spool, b.seq)) {
                    fresh.push(Err(Delivery::Duplicate));
                    continue;
                }
                fresh.push(Ok((b, rows.len() as i64)));
                rows.extend(b.txs.iter());
            }
            // Ids only for what is stored; a rollback leaves a gap, never a reuse.
            let first_id = ids.reserve(rows.len()).start;
            let mut entries = Vec::new();
            for f in fresh {
                match f {
                    Err(not) => out.push(not),
                    Ok((b, offset)) => {
                        let first = first_id + offset;
                        entries.push((b, first));
                        out.push(Delivery::Stored(first..first + b.txs.len() as i64));
                    }
                }
            }
            if entries.is_empty() {
                return Ok((out, None));
            }
            let segment = segments::store_rows(
                tx,
                dir.as_deref().map(PathBuf::as_path),
                first_id,
                &rows,
                &mut unwritten,
            )?;
            let mut ins = tx.prepare(
                "INSERT INTO sensor_batches (sensor_id, spool, seq, records, first_transaction) VALUES (?, ?, ?, ?, ?)",
            )?;
            let mut touched = std::collections::BTreeSet::new();
            for (b, first) in &entries {
                ins.execute(params![b.sensor, b.spool, b.seq, b.txs.len() as u32, first])?;
                touched.insert(b.sensor);
            }
            for s in touched {
                tx.execute(
                    "UPDATE sensors SET last_seen_at = current_timestamp WHERE id = ?",
                    params![s],
                )?;
            }
            Ok((out, segment))
        });
        let dir = dir.as_deref().cloned().unwrap_or_default();
        let dir_err = |e| self.segment_err(&dir, e);
        if let Some(e) = unwritten {
            return Err(dir_err(e));
        }
        let (out, segment) = stored?;
        if let Some(s) = segment {
            s.publish().map_err(dir_err)?;
        }
        Ok(out)
    }
}

/// One sensor batch to store.
#[derive(Clone, Copy, Debug)]
pub struct SensorBatch<'a> {
    /// The sensor's id in the case.
    pub sensor: i64,
    /// Its spool's identity.
    pub spool: u64,
    /// The batch's number in that spool.
    pub seq: u64,
    /// The records.
    pub txs: &'a [Transaction],
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
        assert_eq!(store.stored_through(id, 9).ok(), Some(0));
        let first = store
            .store_sensor_batch(id, 9, 1, &txs(3))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, Delivery::Stored(1..4));
        assert_eq!(
            store.store_sensor_batch(id, 9, 1, &txs(3)).ok(),
            Some(Delivery::Duplicate)
        );
        assert_eq!(
            store.store_sensor_batch(id, 9, 2, &txs(2)).ok(),
            Some(Delivery::Stored(4..6))
        );
        drop(store);
        let mut store = CaseStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.stored_through(id, 9).ok(), Some(2));
        assert_eq!(
            store.store_sensor_batch(id, 9, 2, &txs(2)).ok(),
            Some(Delivery::Duplicate)
        );
        assert_eq!(store.next_transaction_id().ok(), Some(6));
    }

    #[test]
    fn clones_share_the_id_allocator_so_side_by_side_writers_never_collide() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut hub =
            CaseStore::open(&dir.path().join("case.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let mut import = hub.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let id = hub
            .enrol_sensor("edge-1", "ab12")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut seen = Vec::new();
        for seq in 1..=5 {
            // Interleaved: a sensor batch, then an import chunk on the other connection.
            match hub.store_sensor_batch(id, 1, seq, &txs(3)) {
                Ok(Delivery::Stored(r)) => seen.extend(r),
                other => panic!("{other:?}"),
            }
            seen.extend(import.append(&txs(2)).unwrap_or_else(|e| panic!("{e}")));
        }
        let stored: Vec<i64> = hub
            .select("SELECT id FROM transactions ORDER BY id", &[], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        seen.sort_unstable();
        assert_eq!(stored.len(), 25);
        assert_eq!(stored, seen, "every reserved id stored once, none shared");
        assert_eq!(stored, (1..=25).collect::<Vec<_>>());
    }

    #[test]
    fn spools_number_apart_heartbeats_list_and_revocation_refuses() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            CaseStore::open(&dir.path().join("c.duckdb")).unwrap_or_else(|e| panic!("{e}"));
        let id = store
            .enrol_sensor("edge-1", "ab12")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            store.store_sensor_batch(id, 1, 1, &txs(2)),
            Ok(Delivery::Stored(_))
        ));
        // A new spool (reinstalled sensor) starts its own series: batch 1 again is new data.
        assert!(matches!(
            store.store_sensor_batch(id, 2, 1, &txs(3)),
            Ok(Delivery::Stored(_))
        ));
        assert_eq!(store.stored_through(id, 2).ok(), Some(1));
        assert_eq!(store.stored_through(id, 3).ok(), Some(0));
        store
            .sensor_heartbeat(id, "0.1.0", &serde_json::json!({"packets": 42}))
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = store.sensors().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].batches, rows[0].transactions), (2, 5));
        assert_eq!(rows[0].version.as_deref(), Some("0.1.0"));
        assert_eq!(
            rows[0].stats.as_ref().and_then(|s| s["packets"].as_u64()),
            Some(42)
        );
        assert!(rows[0].last_seen_at.is_some() && rows[0].revoked_at.is_none());

        assert_eq!(store.revoke_sensor("edge-1").ok(), Some(true));
        assert_eq!(store.revoke_sensor("edge-1").ok(), Some(false));
        assert_eq!(store.sensor_by_fingerprint("ab12").ok().flatten(), None);
        // A connection admitted before the revocation gets nothing more stored.
        assert_eq!(
            store.store_sensor_batch(id, 2, 2, &txs(4)).ok(),
            Some(Delivery::Revoked)
        );
        assert_eq!(store.stored_through(id, 2).ok(), Some(1));
        // The name is free again; the revoked row stays with its batches.
        assert!(store.enrol_sensor("edge-1", "cd34").is_ok());
        let rows = store.sensors().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 2);
        assert!(rows[0].revoked_at.is_some() && rows[0].name.starts_with("edge-1 (revoked"));
    }
}
