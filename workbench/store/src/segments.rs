//! Live segments: what the hub stores from sensors, written as Parquet files beside the case
//! (`CASE.segments/`) and read by DuckDB as part of the `transactions` view, until a quiet
//! moment folds them into the case's own table ([`CaseStore::compact_segments`]).
//!
//! Why: DuckDB spends 7–10 µs of CPU on every record appended to a table (string statistics,
//! dictionary and FSST analysis, the write-ahead log), which alone caps a two-core hub far
//! below the rate sensors deliver; a Parquet file of the same Arrow batches costs a few µs.
//! Compaction pays DuckDB's price later, when the hub is quiet.
//!
//! Exactness: a segment is written as `NAME.part` and synced, registered in the `segments`
//! table in the same DuckDB transaction as the sensor ledger rows it holds, and renamed to
//! `NAME` after that commit. The view reads a file only if the reader's snapshot has it
//! registered and not compacted, so a reader sees each record once, whatever moment it reads
//! at: before the registration commits it sees neither, and compaction moves rows into the
//! table and marks the segment compacted in one transaction. Compacted files are deleted one
//! compaction later (a reader's older snapshot may still be reading them) or when the case is
//! next opened; `.part` files left by a crash are renamed if their registration committed and
//! deleted if not.
//!
//! [`CaseStore::compact_segments`]: crate::CaseStore::compact_segments

use crate::transactions::TABLE_COLUMNS as COLUMNS;
use duckdb::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file every segment directory holds: no rows, the columns' schema. DuckDB refuses a
/// pattern that matches no file, so the view's pattern always matches this one.
const EMPTY: &str = "empty.parquet";
const PART: &str = ".part";

/// The segment directory of the case at `case`.
pub(crate) fn dir_of(case: &Path) -> PathBuf {
    let mut s = case.as_os_str().to_owned();
    s.push(".segments");
    s.into()
}

/// Whether `dir` can be named in a DuckDB file pattern: DuckDB has no escape for its pattern
/// characters, so a case under such a directory stores sensor records in its table directly.
pub(crate) fn usable_in_pattern(dir: &Path) -> bool {
    dir.to_str()
        .is_some_and(|s| !s.contains(['*', '?', '[', ']', '{', '}']))
}

/// The `transactions` view of one connection: the case's table and its live segments.
pub(crate) fn view_sql(dir: &Path) -> String {
    let cols = COLUMNS.join(", ");
    let pattern = literal(&dir.join("*.parquet").to_string_lossy());
    format!(
        "CREATE OR REPLACE TEMP VIEW transactions AS \
         SELECT {cols} FROM main.stored_transactions \
         UNION ALL \
         SELECT {cols} FROM read_parquet({pattern}, filename = true) \
         WHERE parse_filename(filename) IN (SELECT name FROM main.segments WHERE NOT compacted)"
    )
}

/// A string literal for SQL.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Columns whose values rarely repeat: dictionary encoding would hash every value only to
/// give up (or to gain nothing zstd does not), so they are written plain.
const UNIQUE_COLUMNS: [&str; 10] = [
    "id",
    "request_ts_ns",
    "response_ts_ns",
    "client_port",
    "uri",
    "path",
    "query",
    "request_headers",
    "response_headers",
    "response_body",
];

fn props() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(64 * 1024));
    for c in UNIQUE_COLUMNS {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    b.build()
}

fn parquet_io(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e)
}

/// Writes `batches` (at least one) to `path` and syncs it.
fn write_file(path: &Path, batches: &[RecordBatch]) -> io::Result<()> {
    let Some(first) = batches.first() else {
        return Err(io::Error::other("a segment needs at least one batch"));
    };
    let file = File::create(path)?;
    let mut w = ArrowWriter::try_new(file, first.schema(), Some(props())).map_err(parquet_io)?;
    for b in batches {
        w.write(b).map_err(parquet_io)?;
    }
    let file = w.into_inner().map_err(parquet_io)?;
    file.sync_all()
}

/// A segment written and synced but not yet published: publish it once its registration has
/// committed; dropped unpublished (the registration failed or rolled back), its file goes.
#[derive(Debug)]
pub(crate) struct Pending {
    part: PathBuf,
    done: PathBuf,
    published: bool,
}

impl Pending {
    /// Makes the segment visible to the view's pattern. Should this fail, the `.part` file
    /// stays and is published when the case is next opened: its records are not lost.
    pub(crate) fn publish(mut self) -> io::Result<()> {
        self.published = true;
        std::fs::rename(&self.part, &self.done)?;
        sync_dir(self.done.parent())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.published {
            // Nothing refers to it; a file left behind is removed when the case is next opened.
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

fn sync_dir(dir: Option<&Path>) -> io::Result<()> {
    match dir {
        Some(d) => File::open(d)?.sync_all(),
        None => Ok(()),
    }
}

/// The name of the segment whose first record is `first`.
pub(crate) fn name_of(first: i64) -> String {
    format!("{first:020}.parquet")
}

/// Writes the segment of records from `first` to `dir` as a `.part` file.
pub(crate) fn write(dir: &Path, first: i64, batches: &[RecordBatch]) -> io::Result<Pending> {
    let done = dir.join(name_of(first));
    let mut part = done.clone().into_os_string();
    part.push(PART);
    let part = PathBuf::from(part);
    if let Err(e) = write_file(&part, batches) {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    Ok(Pending {
        part,
        done,
        published: false,
    })
}

/// Stores `rows`, numbered from `first`, inside `tx`: as a live segment registered there when
/// the case has a segment directory (publish what is returned once `tx` commits), else in the
/// table. A file that cannot be written fails `tx`, with the I/O error put in `unwritten`
/// (DuckDB's error type has no place for it).
pub(crate) fn store_rows(
    tx: &duckdb::Connection,
    dir: Option<&Path>,
    first: i64,
    rows: &[&tapline_record::Transaction],
    unwritten: &mut Option<io::Error>,
) -> Result<Option<Pending>, duckdb::Error> {
    let Some(dir) = dir else {
        crate::transactions::append_refs(tx, None, first, rows)?;
        return Ok(None);
    };
    let batches = crate::transactions::record_batches(None, first, rows)
        .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
    let written = write(dir, first, &batches).map_err(|e| {
        *unwritten = Some(e);
        duckdb::Error::InvalidQuery
    })?;
    tx.execute(
        "INSERT INTO segments (name, first_id, records) VALUES (?, ?, ?)",
        duckdb::params![name_of(first), first, rows.len() as u64],
    )?;
    Ok(Some(written))
}

/// Creates `dir` and its empty file if needed, with `empty` giving the columns' schema.
pub(crate) fn ensure_dir(dir: &Path, empty: &RecordBatch) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(EMPTY);
    if path.is_file() {
        return Ok(());
    }
    let tmp = dir.join(format!("{EMPTY}{PART}"));
    write_file(&tmp, std::slice::from_ref(empty))?;
    std::fs::rename(&tmp, &path)?;
    sync_dir(Some(dir))
}

/// What a directory listing at open holds, sorted out against the registrations.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Registered and not compacted, but no file: records the case has lost.
    pub missing: Vec<String>,
    /// Files removed: compacted, or never registered.
    pub removed: usize,
    /// `.part` files whose registration had committed, published now.
    pub published: usize,
}

/// Brings `dir` in line with `live` (the segments registered and not compacted): publishes
/// `.part` files that were registered, removes every other segment file.
pub(crate) fn recover(dir: &Path, live: &[String]) -> io::Result<Recovery> {
    let mut out = Recovery::default();
    let mut present = std::collections::HashSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == EMPTY {
            continue;
        }
        let base = name.strip_suffix(PART).unwrap_or(&name).to_owned();
        if !live.contains(&base) {
            std::fs::remove_file(entry.path())?;
            out.removed += 1;
            continue;
        }
        if name.ends_with(PART) {
            std::fs::rename(entry.path(), dir.join(&base))?;
            out.published += 1;
        }
        present.insert(base);
    }
    out.missing = live
        .iter()
        .filter(|n| !present.contains(*n))
        .cloned()
        .collect();
    if out.removed + out.published > 0 {
        sync_dir(Some(dir))?;
    }
    Ok(out)
}

/// Removes the files of compacted segments `names` (already gone is fine).
pub(crate) fn remove(dir: &Path, names: &[String]) -> io::Result<()> {
    for n in names {
        match std::fs::remove_file(dir.join(n)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column written plain must be one of the table's (a misspelt name would silently
    /// leave it dictionary-encoded).
    #[test]
    fn columns_written_plain_are_the_tables() {
        for c in UNIQUE_COLUMNS {
            assert!(COLUMNS.contains(&c), "{c} is not a column");
        }
    }
    use crate::CaseStore;
    use crate::query::{Page, TxFilter};
    use tapline_record::Transaction;

    fn txs(n: usize, tag: &str) -> Vec<Transaction> {
        (0..n)
            .map(|i| Transaction {
                // Later tags later in time: pages sort by time.
                request_ts_nanos: 1_700_000_000_000_000_000
                    + i64::from(tag.as_bytes()[0]) * 1_000_000
                    + i as i64,
                method: "POST".into(),
                uri: format!("/{tag}/{i}?q=1"),
                status: Some(201),
                sensor_id: Some("edge-1".into()),
                client: "10.1.2.3:40000".parse().ok(),
                ..Transaction::default()
            })
            .collect()
    }

    fn types(store: &CaseStore, relation: &str) -> Vec<(String, String)> {
        store
            .select(
                &format!("SELECT column_name, column_type FROM (DESCRIBE {relation})"),
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// Ids of the page of two at offset 3002, by time.
    fn page_ids(store: &CaseStore) -> Vec<i64> {
        let page = Page {
            limit: 2,
            offset: 3002,
            ..Page::default()
        };
        let rows = store
            .query_transactions(&TxFilter::default(), &page)
            .unwrap();
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn sensor_records_are_read_once_from_segments_before_and_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.duckdb");
        let mut hub = CaseStore::open(&path).unwrap();
        let reader = hub.try_clone().unwrap();
        let sensor = hub.enrol_sensor("edge-1", "ab12").unwrap();
        hub.store_sensor_batch(sensor, 1, 1, &txs(3000, "a"))
            .unwrap();
        hub.store_sensor_batch(sensor, 1, 2, &txs(5, "b")).unwrap();
        // In segments, not in the table; read through every connection's view.
        let live = hub.live_segments().unwrap();
        assert_eq!((live.files, live.records), (2, 3005));
        let table: u64 = reader
            .conn()
            .query_row("SELECT count(*) FROM stored_transactions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(table, 0);
        assert_eq!(reader.transaction_count().unwrap(), 3005);
        assert_eq!(
            types(&reader, "transactions"),
            types(&reader, "stored_transactions")
        );
        let t = reader.transaction(3000).unwrap().unwrap();
        assert_eq!((t.uri.as_str(), t.status), ("/a/2999?q=1", Some(201)));
        assert_eq!(t.client, "10.1.2.3:40000".parse().ok());
        assert_eq!(page_ids(&reader), [3003, 3004]);
        assert_eq!(
            reader.count_transactions(&TxFilter::default()).unwrap(),
            3005
        );
        // Reopened: the same records, numbering goes on after them.
        drop((hub, reader));
        let mut hub = CaseStore::open(&path).unwrap();
        assert_eq!(hub.transaction_count().unwrap(), 3005);
        assert_eq!(hub.next_transaction_id().unwrap(), 3006);
        // Folded into the table: still each once; the files go one compaction later.
        // A bounded step folds the oldest segment, however large.
        assert_eq!(hub.compact_segments(10).unwrap(), 3000);
        assert_eq!(hub.transaction_count().unwrap(), 3005);
        assert_eq!(hub.live_segments().unwrap().records, 5);
        assert_eq!(hub.compact_segments(u64::MAX).unwrap(), 5);
        assert_eq!(hub.transaction_count().unwrap(), 3005);
        // Read from the table alone now (no live segment in the snapshot): the same page.
        assert_eq!(page_ids(&hub), [3003, 3004]);
        assert_eq!(hub.count_transactions(&TxFilter::default()).unwrap(), 3005);
        assert_eq!(hub.live_segments().unwrap(), LiveSegments::default());
        let seg_dir = dir_of(&path);
        let files = || std::fs::read_dir(&seg_dir).unwrap().count();
        assert_eq!(files(), 2, "the empty file and the segment folded last");
        hub.store_sensor_batch(sensor, 1, 3, &txs(7, "c")).unwrap();
        assert_eq!(hub.compact_segments(u64::MAX).unwrap(), 7);
        assert_eq!(files(), 2, "the segment folded before is removed");
        assert_eq!(hub.transaction_count().unwrap(), 3012);
        drop(hub);
        let hub = CaseStore::open(&path).unwrap();
        assert_eq!(files(), 1, "folded files are removed at open");
        assert_eq!(hub.transaction_count().unwrap(), 3012);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Store(usize),
        Compact(u64),
        Reopen,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (1usize..40).prop_map(Op::Store),
            2 => (0u64..60).prop_map(Op::Compact),
            1 => Just(Op::Reopen),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// Whatever the order of stores, compaction steps and reopenings, a reader sees every
        /// stored record exactly once, and ids go on after the highest.
        #[test]
        fn every_record_is_read_once_whatever_the_order(ops in proptest::collection::vec(op(), 1..12)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("case.duckdb");
            let mut hub = CaseStore::open(&path).unwrap();
            let sensor = hub.enrol_sensor("edge-1", "ab12").unwrap();
            let (mut seq, mut stored) = (0u64, 0u64);
            for op in ops {
                match op {
                    Op::Store(n) => {
                        seq += 1;
                        hub.store_sensor_batch(sensor, 1, seq, &txs(n, "a")).unwrap();
                        stored += n as u64;
                    }
                    Op::Compact(at_most) => {
                        hub.compact_segments(at_most).unwrap();
                    }
                    Op::Reopen => {
                        drop(hub);
                        hub = CaseStore::open(&path).unwrap();
                    }
                }
                let (rows, ids): (u64, u64) = hub
                    .conn()
                    .query_row("SELECT count(*), count(DISTINCT id) FROM transactions", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .unwrap();
                proptest::prop_assert_eq!((rows, ids), (stored, stored));
                proptest::prop_assert_eq!(hub.count_transactions(&TxFilter::default()).unwrap(), stored);
                proptest::prop_assert_eq!(hub.next_transaction_id().unwrap(), stored as i64 + 1);
            }
        }
    }

    #[test]
    fn a_case_under_a_pattern_character_stores_sensor_records_in_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let under = dir.path().join("[site]");
        std::fs::create_dir(&under).unwrap();
        let path = under.join("case.duckdb");
        let mut hub = CaseStore::open(&path).unwrap();
        let sensor = hub.enrol_sensor("edge-1", "ab12").unwrap();
        hub.store_sensor_batch(sensor, 1, 1, &txs(4, "a")).unwrap();
        let table: u64 = hub
            .conn()
            .query_row("SELECT count(*) FROM stored_transactions", [], |r| r.get(0))
            .unwrap();
        assert_eq!((table, hub.transaction_count().unwrap()), (4, 4));
        assert_eq!(hub.live_segments().unwrap(), LiveSegments::default());
        assert!(!dir_of(&path).exists());
    }

    #[test]
    fn a_case_whose_segment_went_missing_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.duckdb");
        let mut hub = CaseStore::open(&path).unwrap();
        let sensor = hub.enrol_sensor("edge-1", "ab12").unwrap();
        hub.store_sensor_batch(sensor, 1, 1, &txs(3, "a")).unwrap();
        drop(hub);
        std::fs::remove_file(dir_of(&path).join(name_of(1))).unwrap();
        match CaseStore::open(&path) {
            Err(crate::StoreError::MissingSegments { names, .. }) => {
                assert_eq!(names, [name_of(1)]);
            }
            other => panic!("expected missing segments, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn recovery_publishes_registered_parts_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.parquet.part", // registered: its commit landed before the crash
            "b.parquet.part", // not registered: its commit did not
            "c.parquet",      // compacted
            "d.parquet",      // live
            EMPTY,
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let live = ["a.parquet", "d.parquet", "e.parquet"].map(String::from);
        let r = recover(d, &live).unwrap();
        assert_eq!(r.published, 1);
        assert_eq!(r.removed, 2);
        assert_eq!(r.missing, vec!["e.parquet".to_owned()]);
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.parquet", "d.parquet", EMPTY]);
    }

    #[test]
    fn only_directories_without_pattern_characters_are_used() {
        assert!(usable_in_pattern(Path::new(
            "/cases/acme 2026/x.duckdb.segments"
        )));
        assert!(!usable_in_pattern(Path::new(
            "/cases/[acme]/x.duckdb.segments"
        )));
        assert!(!usable_in_pattern(Path::new(
            "/cases/a*b/x.duckdb.segments"
        )));
    }
}

impl crate::CaseStore {
    pub(crate) fn segment_err(&self, dir: &Path, error: io::Error) -> crate::StoreError {
        crate::StoreError::Segments {
            case: self.path().to_owned(),
            dir: dir.to_owned(),
            error,
        }
    }

    /// At open: the segment directory made ready and brought in line with the registrations
    /// (after a crash), and this connection's `transactions` view over table and segments.
    pub(crate) fn open_segments(&mut self) -> Result<(), crate::StoreError> {
        let dir = dir_of(self.path());
        if !usable_in_pattern(&dir) {
            return Ok(());
        }
        let empty = crate::transactions::record_batches(None, 0, &[])
            .map_err(|e| self.segment_err(&dir, io::Error::other(e)))?;
        ensure_dir(&dir, &empty[0]).map_err(|e| self.segment_err(&dir, e))?;
        let live = self.select("SELECT name FROM segments WHERE NOT compacted", &[], |r| {
            r.get::<_, String>(0)
        })?;
        let r = recover(&dir, &live).map_err(|e| self.segment_err(&dir, e))?;
        if !r.missing.is_empty() {
            return Err(crate::StoreError::MissingSegments {
                case: self.path().to_owned(),
                dir,
                names: r.missing,
            });
        }
        self.conn()
            .execute_batch(&format!(
                "DELETE FROM segments WHERE compacted; {}",
                view_sql(&dir)
            ))
            .map_err(|e| self.db_err(e))?;
        self.segments = Some(Arc::new(dir));
        Ok(())
    }

    /// The directory sensor records are written to, if the case uses one.
    pub(crate) fn segment_dir(&self) -> Option<Arc<PathBuf>> {
        self.segments.clone()
    }

    /// Live segments: records stored from sensors and not yet folded into the case's table.
    pub fn live_segments(&self) -> Result<LiveSegments, crate::StoreError> {
        let rows = self.select(
            "SELECT count(*), coalesce(sum(records), 0) FROM segments WHERE NOT compacted",
            &[],
            |r| {
                Ok(LiveSegments {
                    files: r.get::<_, u64>(0)?,
                    records: r.get::<_, u64>(1)?,
                })
            },
        )?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }

    /// Folds the oldest live segments, up to `at_most` records (but at least one segment),
    /// into the case's table (DuckDB's compressed storage, what other DuckDB clients read)
    /// and removes the files of segments folded before; returns the records folded. For a
    /// quiet moment: it costs what appending them to the table would have cost when they
    /// arrived.
    pub fn compact_segments(&mut self, at_most: u64) -> Result<u64, crate::StoreError> {
        let Some(dir) = self.segments.clone() else {
            return Ok(0);
        };
        // Files folded one compaction ago: no reader's snapshot can still want them.
        let old = self.select("SELECT name FROM segments WHERE compacted", &[], |r| {
            r.get::<_, String>(0)
        })?;
        remove(&dir, &old).map_err(|e| self.segment_err(&dir, e))?;
        let mut live = self.select(
            "SELECT name, records FROM segments WHERE NOT compacted ORDER BY first_id",
            &[],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)),
        )?;
        if live.is_empty() && old.is_empty() {
            return Ok(0);
        }
        let mut taken = 0;
        let keep = live
            .iter()
            .take_while(|(_, n)| {
                taken += n;
                taken <= at_most
            })
            .count();
        live.truncate(keep.max(1));
        let files: Vec<String> = live
            .iter()
            .map(|(n, _)| literal(&dir.join(n).to_string_lossy()))
            .collect();
        let names: Vec<String> = live.iter().map(|(n, _)| literal(n)).collect();
        let cols = COLUMNS.join(", ");
        self.atomically_appending(|tx| {
            if !old.is_empty() {
                tx.execute_batch("DELETE FROM segments WHERE compacted")?;
            }
            if !live.is_empty() {
                tx.execute_batch(&format!(
                    "INSERT INTO main.stored_transactions SELECT {cols} FROM read_parquet([{}]);
                     UPDATE segments SET compacted = true WHERE name IN ({});",
                    files.join(", "),
                    names.join(", ")
                ))?;
            }
            Ok(())
        })?;
        Ok(live.iter().map(|(_, n)| n).sum())
    }
}

/// How much the case holds in live segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveSegments {
    /// Segment files.
    pub files: u64,
    /// Records in them.
    pub records: u64,
}
