//! The `sources` table: every imported file (or sensor), so re-imports are recognised and an
//! interrupted import can be completed.
//!
//! An import first registers its source as `importing`, appends its transactions in batches
//! tagged with the source id, then marks it `complete` with its counts in the same DuckDB
//! transaction as the last batch. A source left `importing` (the process was killed) has its
//! rows discarded and is imported again from the start.

use crate::{CaseStore, StoreError};
use duckdb::{OptionalExt, params};

/// One imported source as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Row id.
    pub id: i64,
    /// `pcap`, `pcapng`, `har` or `sensor`.
    pub kind: String,
    /// File or sensor name.
    pub name: String,
    /// blake3 of the file's bytes, hex.
    pub content_hash: Option<String>,
    /// File size.
    pub size_bytes: Option<u64>,
    /// Earliest request time seen.
    pub first_ts_ns: Option<i64>,
    /// Latest request time seen.
    pub last_ts_ns: Option<i64>,
    /// Packets read (0 for HAR).
    pub packets: u64,
    /// Transactions stored.
    pub transactions: u64,
    /// `importing` or `complete`.
    pub status: String,
}

/// A new source about to be imported.
#[derive(Clone, Debug)]
pub struct NewSource<'a> {
    /// `pcap`, `pcapng`, `har` or `sensor`.
    pub kind: &'a str,
    /// File name.
    pub name: &'a str,
    /// Full path as given.
    pub path: Option<&'a str>,
    /// blake3 of the content, hex.
    pub content_hash: Option<&'a str>,
    /// Size in bytes.
    pub size_bytes: Option<u64>,
}

/// What analysis derived from one import, written in the same DuckDB transaction that marks
/// the import complete (so a killed import never leaves half its analysis behind).
#[derive(Clone, Debug, Default)]
pub struct Derived {
    /// Endpoints to insert or update.
    pub endpoints: Vec<crate::endpoints::EndpointRecord>,
    /// Endpoint ids folded into others (learned parameters).
    pub retired_endpoints: Vec<i64>,
    /// Findings counted over the records analysed this time (payload attacks, exposure).
    pub findings: Vec<crate::endpoints::NewFinding>,
    /// Findings judged over every record the behaviour detectors retain (live analysis):
    /// merged into the case by replacing counts, not adding them.
    pub judged: Vec<crate::endpoints::NewFinding>,
    /// What these records added to findings the case already holds (an exposure reported
    /// before that goes on): added to the case's finding with the same kind, endpoint and
    /// actor; dropped when the case has none (an analyst may have deleted it).
    pub updates: Vec<crate::endpoints::NewFinding>,
}

/// Counts to record when an import completes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceCounts {
    /// Packets read.
    pub packets: u64,
    /// Transactions stored.
    pub transactions: u64,
    /// Earliest request time.
    pub first_ts_ns: Option<i64>,
    /// Latest request time.
    pub last_ts_ns: Option<i64>,
}

const SOURCE_COLUMNS: &str = "id, kind, name, content_hash, size_bytes, first_ts_ns, last_ts_ns, packets, transactions, status";

fn source_from_row(r: &duckdb::Row<'_>) -> Result<Source, duckdb::Error> {
    Ok(Source {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        content_hash: r.get(3)?,
        size_bytes: r.get(4)?,
        first_ts_ns: r.get(5)?,
        last_ts_ns: r.get(6)?,
        packets: r.get(7)?,
        transactions: r.get(8)?,
        status: r.get(9)?,
    })
}

impl CaseStore {
    /// The source imported from content with this hash, if any.
    pub fn source_by_hash(&self, hash: &str) -> Result<Option<Source>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE content_hash = ? ORDER BY id LIMIT 1"),
                [hash],
                source_from_row,
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Every source, oldest first.
    pub fn sources(&self) -> Result<Vec<Source>, StoreError> {
        self.select(
            &format!("SELECT {SOURCE_COLUMNS} FROM sources ORDER BY id"),
            &[],
            source_from_row,
        )
    }

    /// Registers a source as `importing` and returns its id.
    pub fn begin_source(&mut self, s: &NewSource<'_>) -> Result<i64, StoreError> {
        self.atomically(|tx| {
            let id: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM sources", [], |r| {
                    r.get(0)
                })?;
            tx.execute(
                "INSERT INTO sources (id, kind, name, path, content_hash, size_bytes, status) VALUES (?, ?, ?, ?, ?, ?, 'importing')",
                params![id, s.kind, s.name, s.path, s.content_hash, s.size_bytes],
            )?;
            Ok(id)
        })
    }

    /// Deletes the rows an interrupted import of `source` left behind, so it can start over.
    pub fn discard_partial_source(&mut self, source: i64) -> Result<(), StoreError> {
        self.atomically(|tx| {
            tx.execute("DELETE FROM stored_transactions WHERE source_id = ?", [source])?;
            tx.execute(
                "UPDATE sources SET packets = 0, transactions = 0, status = 'importing' WHERE id = ?",
                [source],
            )?;
            Ok(())
        })
    }

    /// Removes a source and every row it brought (a cancelled import).
    pub fn forget_source(&mut self, source: i64) -> Result<(), StoreError> {
        self.atomically(|tx| {
            tx.execute(
                "DELETE FROM stored_transactions WHERE source_id = ?",
                [source],
            )?;
            tx.execute("DELETE FROM sources WHERE id = ?", [source])?;
            Ok(())
        })
    }

    /// Writes what analysis derived from `source`'s import, with how the case's behaviour
    /// stream changed (the import joined it), and marks it complete, in one DuckDB
    /// transaction: until this commits, the source is partial and a re-run replaces it.
    pub fn complete_source(
        &mut self,
        source: i64,
        counts: SourceCounts,
        derived: &Derived,
        stream: &crate::live::StreamSave<'_>,
    ) -> Result<(), StoreError> {
        self.atomically(|tx| {
            crate::endpoints::write_derived(tx, derived)?;
            crate::live::save_stream(tx, stream)?;
            tx.execute(
                "UPDATE sources SET packets = ?, transactions = ?, first_ts_ns = ?, last_ts_ns = ?, status = 'complete', finished_at = current_timestamp WHERE id = ?",
                params![
                    counts.packets,
                    counts.transactions,
                    counts.first_ts_ns,
                    counts.last_ts_ns,
                    source
                ],
            )?;
            Ok(())
        })
    }

    /// Writes what live analysis derived from records already stored (sensor batches), in
    /// one transaction: endpoints upserted, findings merged into the case's (see
    /// [`crate::endpoints::merge_derived`]). Returns (findings new, findings updated).
    pub fn merge_live(&mut self, derived: &Derived) -> Result<(usize, usize), StoreError> {
        self.atomically(|tx| crate::endpoints::merge_derived(tx, derived))
    }
}
