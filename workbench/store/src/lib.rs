//! `tapline-store`: the case file. One DuckDB database per investigation holds every
//! transaction and everything the analysis derives from them.
//!
//! The schema is versioned ([`SCHEMA_VERSION`]); opening a case applies pending migrations
//! forward, and refuses a case written by a newer Tapline.

pub mod agents;
pub mod alerts;
pub mod blocks;
pub mod endpoints;
pub mod live;
pub mod query;
mod segments;
pub mod sensors;
pub mod sources;
pub mod template;
pub mod test_runs;
pub mod transactions;

pub use query::parquet_row_count;
pub use segments::LiveSegments;

use duckdb::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tapline_record::Transaction;
use thiserror::Error;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 13;

/// Failures opening or using a case file.
#[derive(Debug, Error)]
pub enum StoreError {
    /// DuckDB refused an operation. DuckDB's message is part of this one and not a separate
    /// cause, so a report says it once.
    #[error("case file {path}: {error}")]
    Db {
        /// The case file.
        path: PathBuf,
        /// DuckDB's error.
        error: duckdb::Error,
    },
    /// Writing an export failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// A command that reads a case was pointed at a file that does not exist.
    #[error(
        "there is no case file {path}: check the path (only import, serve and sensors add create a case)"
    )]
    NoCase {
        /// The path given.
        path: PathBuf,
    },
    /// Another process has the case open (DuckDB lets one process at a time use a file).
    #[error(
        "case file {path} is open in another process ({holder}); a Tapline hub or desktop app that holds a case serves commands for it, so run the command again once it is up — or close the other process"
    )]
    Locked {
        /// The case file.
        path: PathBuf,
        /// Who holds it, as DuckDB says.
        holder: String,
    },
    /// Reading or writing the case's live segments (`CASE.segments/`) failed.
    #[error("live segments of case file {case} in {dir}: {error}")]
    Segments {
        /// The case file.
        case: PathBuf,
        /// Its segment directory.
        dir: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// Segments the case says hold records are gone from its segment directory.
    #[error(
        "case file {case}: {} of its live segments are missing from {dir} (first: {}); the records the hub stored in them are lost unless the files are restored from a backup",
        names.len(),
        names.first().map_or("", String::as_str)
    )]
    MissingSegments {
        /// The case file.
        case: PathBuf,
        /// Its segment directory.
        dir: PathBuf,
        /// The missing files.
        names: Vec<String>,
    },
    /// A saved chunk of the behaviour stream cannot be read.
    #[error(
        "case file {path}: the behaviour events saved from transaction {first_id} on cannot be read ({error}); live analysis and imports cannot join the stream until they are removed (DELETE FROM behaviour_event_chunks WHERE first_id = {first_id})"
    )]
    EventChunk {
        /// The case file.
        path: PathBuf,
        /// The chunk's first transaction id.
        first_id: i64,
        /// Why it cannot be read.
        error: crate::live::ChunkError,
    },
    /// The case was written by a newer Tapline.
    #[error(
        "case file {path} has schema version {found}, newer than this Tapline understands ({SCHEMA_VERSION}); upgrade Tapline to open it"
    )]
    TooNew {
        /// The case file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
    },
}

/// The lock conflict DuckDB reports when another process holds `path`, said plainly.
fn locked(path: &Path, e: &duckdb::Error) -> Option<StoreError> {
    let text = e.to_string();
    let detail = text.split("Conflicting lock is held in ").nth(1)?;
    let holder = detail.split(". See also").next().unwrap_or(detail).trim();
    Some(StoreError::Locked {
        path: path.to_owned(),
        holder: holder.trim_end_matches('.').to_owned(),
    })
}

impl StoreError {
    /// DuckDB gave up on the database (a checkpoint that failed on a full disk, for one): this
    /// handle refuses everything from now on; only closing it and opening the case again
    /// (which replays the write-ahead log) recovers.
    pub fn is_fatal(&self) -> bool {
        match self {
            StoreError::Db { error, .. } => {
                let text = error.to_string();
                text.contains("FATAL Error") || text.contains("database has been invalidated")
            }
            _ => false,
        }
    }
}

/// Migrations, in order: index `i` takes a case from version `i` to `i + 1`. Never edit a
/// released entry; add one.
const MIGRATIONS: &[&str] = &[
    // v1: the transaction record.
    "CREATE TABLE transactions (
        id BIGINT PRIMARY KEY,
        request_ts_ns BIGINT NOT NULL,  -- nanoseconds since the epoch; make_timestamp_ns() for SQL time
        response_ts_ns BIGINT,
        sensor_id VARCHAR,
        client VARCHAR,
        server VARCHAR,
        method VARCHAR NOT NULL,
        host VARCHAR,
        uri VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        query VARCHAR,
        version VARCHAR NOT NULL,
        status USMALLINT,
        reason VARCHAR,
        request_headers VARCHAR NOT NULL,
        response_headers VARCHAR NOT NULL,
        request_body BLOB,
        request_body_len UBIGINT NOT NULL,
        request_body_truncated BOOLEAN NOT NULL,
        response_body BLOB,
        response_body_len UBIGINT NOT NULL,
        response_body_truncated BOOLEAN NOT NULL,
        anomalies UINTEGER NOT NULL
    );",
    // v2: where records came from, and everything analysis derives from them.
    "CREATE TABLE sources (
        id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,              -- pcap | pcapng | har | sensor
        name VARCHAR NOT NULL,              -- file name or sensor name
        path VARCHAR,
        content_hash VARCHAR,               -- blake3 of the file, hex; duplicate imports match on it
        size_bytes UBIGINT,
        first_ts_ns BIGINT,
        last_ts_ns BIGINT,
        packets UBIGINT NOT NULL DEFAULT 0,
        transactions UBIGINT NOT NULL DEFAULT 0,
        status VARCHAR NOT NULL,            -- importing | complete
        started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        finished_at TIMESTAMP
    );
    ALTER TABLE transactions ADD COLUMN source_id BIGINT;
    ALTER TABLE transactions ADD COLUMN request_content_type VARCHAR;
    ALTER TABLE transactions ADD COLUMN response_content_type VARCHAR;
    ALTER TABLE transactions ADD COLUMN endpoint_id BIGINT;
    CREATE TABLE endpoints (
        id BIGINT PRIMARY KEY,
        host VARCHAR NOT NULL,
        method VARCHAR NOT NULL,
        template VARCHAR NOT NULL,          -- /users/{userId}
        first_seen_ns BIGINT NOT NULL,
        last_seen_ns BIGINT NOT NULL,
        count UBIGINT NOT NULL,
        detail JSON,                        -- parameters, schemas, auth, statistics
        UNIQUE (host, method, template)
    );
    CREATE TABLE findings (
        id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,          -- info | low | medium | high | critical
        confidence DOUBLE NOT NULL,
        endpoint_id BIGINT,
        actor_ip VARCHAR,
        actor_user VARCHAR,
        actor_key VARCHAR,
        actor_session VARCHAR,
        first_seen_ns BIGINT NOT NULL,
        last_seen_ns BIGINT NOT NULL,
        count UBIGINT NOT NULL,
        evidence BIGINT[] NOT NULL,         -- transaction ids
        title VARCHAR NOT NULL,
        detail JSON
    );
    CREATE TABLE data_class_hits (
        transaction_id BIGINT NOT NULL,
        endpoint_id BIGINT,
        class VARCHAR NOT NULL,
        location VARCHAR NOT NULL,          -- response.body.users[].email
        start_offset UINTEGER,
        end_offset UINTEGER,
        confidence DOUBLE NOT NULL
    );
    CREATE TABLE sensors (
        id BIGINT PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        cert_fingerprint VARCHAR NOT NULL,
        enrolled_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        revoked_at TIMESTAMP,
        last_seen_at TIMESTAMP,
        version VARCHAR,
        stats JSON
    );
    CREATE TABLE block_rules (
        id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,              -- ip | cidr | user | api_key | path | header
        value VARCHAR NOT NULL,
        reason VARCHAR,
        finding_id BIGINT,
        enabled BOOLEAN NOT NULL DEFAULT true,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        expires_at TIMESTAMP
    );
    CREATE TABLE security_tests (
        id BIGINT PRIMARY KEY,
        name VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        endpoint_id BIGINT,
        yaml VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE test_runs (
        id BIGINT PRIMARY KEY,
        test_id BIGINT NOT NULL,
        target VARCHAR NOT NULL,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        outcome VARCHAR NOT NULL,           -- pass | fail | error
        detail JSON
    );
    CREATE TABLE audit_log (
        ts TIMESTAMP NOT NULL DEFAULT current_timestamp,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        detail JSON
    );",
    // v3: the transactions table rebuilt for bulk import: no primary-key index (ids are handed
    // out by the importer; the index cost a third of import time and a sixth of the file),
    // endpoints as ip + port (ports compress as numbers, ips filter by equality).
    "CREATE TABLE transactions_v3 (
        id BIGINT NOT NULL,
        source_id BIGINT,
        request_ts_ns BIGINT NOT NULL,      -- nanoseconds since the epoch; make_timestamp_ns() for SQL time
        response_ts_ns BIGINT,
        sensor_id VARCHAR,
        client_ip VARCHAR,
        client_port USMALLINT,
        server_ip VARCHAR,
        server_port USMALLINT,
        method VARCHAR NOT NULL,
        host VARCHAR,
        uri VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        query VARCHAR,
        version VARCHAR NOT NULL,
        status USMALLINT,
        reason VARCHAR,
        request_headers VARCHAR NOT NULL,   -- JSON array of [name, value] pairs, in order
        response_headers VARCHAR NOT NULL,
        request_content_type VARCHAR,
        response_content_type VARCHAR,
        request_body BLOB,
        request_body_len UBIGINT NOT NULL,
        request_body_truncated BOOLEAN NOT NULL,
        response_body BLOB,
        response_body_len UBIGINT NOT NULL,
        response_body_truncated BOOLEAN NOT NULL,
        anomalies UINTEGER NOT NULL,
        endpoint_id BIGINT
    );
    INSERT INTO transactions_v3 SELECT
        id, source_id, request_ts_ns, response_ts_ns, sensor_id,
        nullif(regexp_extract(client, '^\\[?(.*?)\\]?:[0-9]+$', 1), ''),
        TRY_CAST(nullif(regexp_extract(client, ':([0-9]+)$', 1), '') AS USMALLINT),
        nullif(regexp_extract(server, '^\\[?(.*?)\\]?:[0-9]+$', 1), ''),
        TRY_CAST(nullif(regexp_extract(server, ':([0-9]+)$', 1), '') AS USMALLINT),
        method, host, uri, path, query, version, status, reason, request_headers, response_headers,
        request_content_type, response_content_type, request_body, request_body_len,
        request_body_truncated, response_body, response_body_len, response_body_truncated,
        anomalies, endpoint_id
    FROM transactions;
    DROP TABLE transactions;
    ALTER TABLE transactions_v3 RENAME TO transactions;",
    // v4: which batches each sensor has delivered, so each is stored exactly once.
    "CREATE TABLE sensor_batches (
        sensor_id BIGINT NOT NULL,
        seq UBIGINT NOT NULL,               -- the sensor's batch sequence number
        records UINTEGER NOT NULL,
        first_transaction BIGINT NOT NULL,  -- ids first_transaction .. + records
        received_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (sensor_id, seq)
    );",
    // v5: sequence numbers count within one spool of the sensor (a reinstalled sensor starts a
    // new spool and a new series).
    "CREATE TABLE sensor_batches_v5 (
        sensor_id BIGINT NOT NULL,
        spool UBIGINT NOT NULL,             -- the sensor spool's identity
        seq UBIGINT NOT NULL,               -- the batch's number within that spool
        records UINTEGER NOT NULL,
        first_transaction BIGINT NOT NULL,  -- ids first_transaction .. + records
        received_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (sensor_id, spool, seq)
    );
    INSERT INTO sensor_batches_v5
        SELECT sensor_id, 0, seq, records, first_transaction, received_at FROM sensor_batches;
    DROP TABLE sensor_batches;
    ALTER TABLE sensor_batches_v5 RENAME TO sensor_batches;",
    // v6: tables and a column frozen into v2 that nothing ever wrote; the issues that need
    // such data design their own tables.
    "DROP TABLE block_rules;
    DROP TABLE security_tests;
    DROP TABLE test_runs;
    DROP TABLE data_class_hits;
    ALTER TABLE transactions DROP COLUMN endpoint_id;",
    // v7: live analysis's state — how far it got through sensor records, and the behaviour
    // detectors' events of the recent stream (their windows span flushes and hub restarts).
    "CREATE TABLE live_analysis (analysed_below BIGINT NOT NULL);
    CREATE TABLE behaviour_events (
        transaction_id BIGINT NOT NULL,
        ts_ns BIGINT NOT NULL,
        endpoint VARCHAR,                   -- host, method, template joined by NUL
        actor_ip VARCHAR,
        actor_user VARCHAR,
        actor_key VARCHAR,
        actor_session VARCHAR,
        status USMALLINT NOT NULL,          -- 0 without a response
        credentials BOOLEAN NOT NULL,
        object VARCHAR,                     -- the value of the last path parameter
        username VARCHAR                    -- the account a login names
    );
    CREATE TABLE behaviour_creations (
        endpoint VARCHAR NOT NULL,
        value VARCHAR NOT NULL,
        principal VARCHAR NOT NULL,
        ts_ns BIGINT NOT NULL
    );",
    // v8: where alerts go (syslog, webhook, ECS file), and what each was sent, so an ongoing
    // attack is one alert plus updates.
    "CREATE TABLE alert_sinks (
        id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,              -- syslog | webhook | ecs
        target VARCHAR NOT NULL,            -- udp://host:port, tcp://host:port, unix:///dev/log | URL | file
        min_severity VARCHAR NOT NULL,
        secret VARCHAR,                     -- a webhook's HMAC key
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE alerts_sent (
        sink_id BIGINT NOT NULL,
        finding_id BIGINT NOT NULL,
        count UBIGINT NOT NULL,             -- the finding's count when it was last sent
        updates UINTEGER NOT NULL,          -- updates sent after the first alert
        sent_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (sink_id, finding_id)
    );",
    // v9: security-test runs and their verdicts with evidence, comparable across runs.
    "CREATE TABLE sectest_runs (
        id BIGINT PRIMARY KEY,
        started_ms BIGINT NOT NULL,         -- milliseconds since the epoch
        target VARCHAR NOT NULL,
        duration_ms DOUBLE NOT NULL,
        requests UBIGINT NOT NULL
    );
    CREATE TABLE sectest_results (
        run_id BIGINT NOT NULL,
        test_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        file VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        verdict VARCHAR NOT NULL,           -- pass | fail | inconclusive | error
        reason VARCHAR,
        evidence JSON,                      -- the steps, their attempts, requests and responses
        PRIMARY KEY (run_id, test_id)
    );",
    // v10: block rules, the allowlist that always wins over them, and the audit log of both.
    "CREATE TABLE block_rules (
        id BIGINT PRIMARY KEY,
        match_kind VARCHAR NOT NULL,        -- ip | user | session | key | header
        match_value VARCHAR NOT NULL,       -- a CIDR (an address is /32 or /128), principal, key, header value
        header_name VARCHAR,                -- for header rules
        paths JSON,                         -- path globs the rule applies to; NULL: every path
        methods JSON,                       -- methods; NULL: every method
        action VARCHAR NOT NULL,            -- block | monitor
        expires_ns BIGINT,                  -- NULL: until removed
        origin VARCHAR NOT NULL,            -- manual | finding | auto
        reason VARCHAR NOT NULL,
        findings JSON,                      -- the findings behind it
        created_by VARCHAR NOT NULL,
        created_ns BIGINT NOT NULL,
        removed_ns BIGINT                   -- removed rules stay, for the audit and for agents' deletions
    );
    CREATE TABLE block_allow (
        id BIGINT PRIMARY KEY,
        match_kind VARCHAR NOT NULL,        -- ip | user | key
        match_value VARCHAR NOT NULL,
        note VARCHAR NOT NULL,
        created_by VARCHAR NOT NULL,
        created_ns BIGINT NOT NULL,
        removed_ns BIGINT
    );
    CREATE TABLE block_audit (
        id BIGINT PRIMARY KEY,
        at_ns BIGINT NOT NULL,
        who VARCHAR NOT NULL,
        event VARCHAR NOT NULL,             -- create | remove | expire | allow | disallow
        rule_id BIGINT,
        allow_id BIGINT,
        note VARCHAR NOT NULL
    );",
    // v11: enforcement agents and their keys, the requests agents blocked (or monitor rules
    // counted), and automatic rules.
    "CREATE TABLE agents (
        id BIGINT PRIMARY KEY,
        name VARCHAR NOT NULL,
        key_hash VARCHAR NOT NULL,          -- sha256 of the key, hex; the key itself is shown once
        created_by VARCHAR NOT NULL,
        created_ns BIGINT NOT NULL,
        revoked_ns BIGINT,
        last_seen_ns BIGINT,
        last_peer VARCHAR
    );
    CREATE TABLE block_hits (
        at_ns BIGINT NOT NULL,
        rule_id BIGINT NOT NULL,
        action VARCHAR NOT NULL,            -- block | monitor
        agent VARCHAR NOT NULL,             -- the agent that asked, or `replay` for recorded traffic
        client VARCHAR,
        method VARCHAR NOT NULL,
        path VARCHAR NOT NULL
    );
    CREATE TABLE block_auto (
        id BIGINT PRIMARY KEY,
        name VARCHAR NOT NULL,
        spec JSON NOT NULL,                 -- trigger, threshold, group, action, exceptions
        created_by VARCHAR NOT NULL,
        created_ns BIGINT NOT NULL,
        removed_ns BIGINT
    );",
    // v12: what the hub stores from sensors goes to live segments (Parquet files beside the
    // case) until a quiet moment folds them into the table; each connection reads both through
    // a temporary `transactions` view (see `segments`). The case's own `transactions` view,
    // the table alone, is what other DuckDB clients see.
    "ALTER TABLE transactions RENAME TO stored_transactions;
    CREATE VIEW transactions AS SELECT * FROM stored_transactions;
    CREATE TABLE segments (
        name VARCHAR PRIMARY KEY,           -- the file's name in CASE.segments/
        first_id BIGINT NOT NULL,
        records UBIGINT NOT NULL,
        compacted BOOLEAN NOT NULL DEFAULT false
    );",
    // v13: behaviour events are saved in compressed chunks, a row each, instead of a row an
    // event (DuckDB's cost per string value was most of live analysis's writing); rows saved
    // before stay in `behaviour_events` and are read with the chunks. Forgetting drops whole
    // chunks behind the cut and keeps the cut, which filters the rest as they are read.
    "CREATE TABLE behaviour_event_chunks (
        first_id BIGINT NOT NULL,           -- the smallest transaction id in it
        min_ts_ns BIGINT NOT NULL,
        max_ts_ns BIGINT NOT NULL,
        events UINTEGER NOT NULL,
        data BLOB NOT NULL                  -- format byte, then LZ4 of postcard (see `live`)
    );
    CREATE TABLE behaviour_forgotten (before_ns BIGINT NOT NULL);",
];

/// How much write-ahead log DuckDB gathers before folding it into the case file. DuckDB's
/// default (16 MB, ~15k of our records) checkpoints so often that the last, partial row group
/// is compressed again and again: a writer committing 20,000 records at a time spent 22.5 µs
/// of CPU per record at 16 MB, 18 µs at 64 MB and 10 µs from 256 MB (`store_bench`). The
/// price is a longer replay when a case is opened after a crash, and the log's rows held
/// uncompressed in memory until the checkpoint.
const WAL_BEFORE_CHECKPOINT: &str = "256MB";

/// DuckDB settings a benchmark may vary ([`CaseStore::tune_for_bench`]).
#[derive(Clone, Debug, Default)]
pub struct Tuning {
    /// Write-ahead log gathered before a checkpoint, in MB (256 for a case opened here).
    pub wal_mb: Option<u32>,
    /// DuckDB's threads (one per core by default).
    pub threads: Option<u32>,
    /// DuckDB's `force_compression` (e.g. `uncompressed`, `dictionary`, `fsst`).
    pub compression: Option<String>,
}

/// DuckDB's worker threads for the case, beside the connections' own threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// None: the process's own threads keep the cores busy (the hub storing a stream while
    /// analysing it). A connection that hands tasks to workers then waits for them yielding
    /// in a loop, and the workers do the same: on two cores DuckDB's workers took 4 µs of
    /// CPU per record the hub stored (of 26), mostly `sched_yield`, and the commits ran no
    /// faster for them (`link_bench`).
    None,
    /// DuckDB's default, one per core: for queries and checkpoints on an otherwise idle case.
    PerCore,
}

/// A bulk import's hold on DuckDB's threads, to give back when its appends are done.
#[derive(Debug)]
#[must_use = "hand it to CaseStore::end_bulk_import"]
pub struct BulkImport(());

/// An open case file.
///
/// Clones ([`CaseStore::try_clone`]) are further connections to the same open database, for
/// other threads of one process (the GUI's query worker, an import, the sensor hub); they share
/// one [`TransactionIds`], so writers running side by side never hand out the same id.
pub struct CaseStore {
    conn: Connection,
    path: PathBuf,
    ids: TransactionIds,
    /// Held by [`CaseStore::atomically`]: shared by every clone (see there).
    numbering: Arc<std::sync::Mutex<()>>,
    /// The live-segment directory, unless the case's path cannot be named in a DuckDB file
    /// pattern (sensor records then go to the table directly).
    segments: Option<Arc<PathBuf>>,
}

/// The transaction-id allocator of one open case, shared by every connection to it.
///
/// Ids are unique and increase in the order they are reserved; a writer that rolls back
/// leaves a gap, which nothing depends on. One process at a time can have a case open (DuckDB
/// locks the file), so an in-process counter seeded from `max(id)` at open is enough.
#[derive(Clone, Debug)]
pub struct TransactionIds(Arc<AtomicI64>);

impl TransactionIds {
    /// Reserves `n` consecutive ids.
    pub fn reserve(&self, n: usize) -> std::ops::Range<i64> {
        let first = self.0.fetch_add(n as i64, Ordering::Relaxed);
        first..first + n as i64
    }

    /// The id the next reservation starts at.
    pub fn peek(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl CaseStore {
    /// Opens (creating if needed) the case at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = |source| StoreError::Db {
            path: path.to_owned(),
            error: source,
        };
        let conn = Connection::open(path).map_err(|e| locked(path, &e).unwrap_or(db(e)))?;
        let mut store = CaseStore {
            conn,
            path: path.to_owned(),
            ids: TransactionIds(Arc::new(AtomicI64::new(1))),
            numbering: Arc::default(),
            segments: None,
        };
        store
            .conn
            .execute_batch(&format!(
                "SET checkpoint_threshold = '{WAL_BEFORE_CHECKPOINT}';"
            ))
            .map_err(|e| store.db_err(e))?;
        store.migrate()?;
        store.open_segments()?;
        let next: i64 = store
            .conn
            .query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM transactions",
                [],
                |r| r.get(0),
            )
            .map_err(|e| store.db_err(e))?;
        store.ids = TransactionIds(Arc::new(AtomicI64::new(next)));
        Ok(store)
    }

    /// Opens the case at `path`, which must exist: commands that only read or change a case
    /// never create an empty one from a mistyped path.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::NoCase {
                path: path.to_owned(),
            });
        }
        Self::open(path)
    }

    /// Another connection to this open case, for another thread. Writes through either are
    /// seen by both once committed; both share the transaction-id allocator.
    pub fn try_clone(&self) -> Result<Self, StoreError> {
        let clone = CaseStore {
            conn: self.conn.try_clone().map_err(|e| self.db_err(e))?,
            path: self.path.clone(),
            ids: self.ids.clone(),
            numbering: Arc::clone(&self.numbering),
            segments: self.segments.clone(),
        };
        if let Some(dir) = &clone.segments {
            clone
                .conn
                .execute_batch(&segments::view_sql(dir))
                .map_err(|e| clone.db_err(e))?;
        }
        Ok(clone)
    }

    /// The case's transaction-id allocator (shared with every clone of this store).
    pub fn transaction_ids(&self) -> &TransactionIds {
        &self.ids
    }

    pub(crate) fn db_err(&self, source: duckdb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            error: source,
        }
    }

    /// The case's schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(|e| self.db_err(e))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, applied_at TIMESTAMP DEFAULT current_timestamp);",
            )
            .map_err(|e| self.db_err(e))?;
        let current: Option<i64> = self
            .conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(|e| self.db_err(e))?;
        let current = current.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: current,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i64 + 1;
            let batch = format!(
                "BEGIN TRANSACTION; {sql} INSERT INTO schema_version (version) VALUES ({version}); COMMIT;"
            );
            self.conn
                .execute_batch(&batch)
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// Runs `f` in one DuckDB transaction, committed if it succeeds.
    ///
    /// One such transaction at a time among this process's connections to the case: writers
    /// number new rows `max(id) + 1` (endpoints, findings, rules, sinks), and two taking
    /// their maximum from snapshots of the same moment would give the same id — the second
    /// commit then failed on the primary key (an import run through the hub's control socket
    /// while live analysis wrote its findings). Appends of transactions, numbered by
    /// [`TransactionIds`], go through [`CaseStore::atomically_appending`] instead.
    pub fn atomically<T>(
        &mut self,
        f: impl FnOnce(&duckdb::Transaction<'_>) -> Result<T, duckdb::Error>,
    ) -> Result<T, StoreError> {
        let numbering = Arc::clone(&self.numbering);
        let _one_at_a_time = numbering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.atomically_appending(f)
    }

    /// [`CaseStore::atomically`] for transactions that number no row by `max(id) + 1`: the
    /// hub's store thread never waits for an analysis write.
    pub fn atomically_appending<T>(
        &mut self,
        f: impl FnOnce(&duckdb::Transaction<'_>) -> Result<T, duckdb::Error>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let db = |source| StoreError::Db {
            path: path.clone(),
            error: source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        let out = f(&tx).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Settings for a bulk import by `writers` connections appending side by side: compress
    /// once at the end instead of at every WAL checkpoint along the way, let DuckDB write row
    /// groups in any order (ids carry the order), and give DuckDB only the threads the
    /// writers leave free. A writer's appends run on its own thread plus DuckDB's workers; with
    /// one writer per core the workers only competed with the writers, and a connection
    /// waiting for its tasks on a worker polls the scheduler (its mutexes were 8.6% of an
    /// import's CPU samples on two cores). Hand the returned value to
    /// [`CaseStore::end_bulk_import`] once the writers are done, whatever their outcome.
    pub fn prepare_bulk_import(&self, writers: usize) -> Result<BulkImport, StoreError> {
        let threads = self.duckdb_threads()?;
        let writers = i64::try_from(writers).unwrap_or(i64::MAX);
        let during = threads.saturating_sub(writers).saturating_add(1).max(1);
        self.conn
            .execute_batch(&format!(
                "SET checkpoint_threshold = '512MB'; SET preserve_insertion_order = false; \
                 SET threads = {during};"
            ))
            .map_err(|e| self.db_err(e))?;
        Ok(BulkImport(()))
    }

    /// Sets DuckDB's worker threads for the whole database (every connection to it). A bulk
    /// import ending gives them back ([`CaseStore::end_bulk_import`]) whatever was set here.
    pub fn set_workers(&self, w: Workers) -> Result<(), StoreError> {
        let sql = match w {
            Workers::None => "SET threads = 1;",
            Workers::PerCore => "RESET threads;",
        };
        self.conn.execute_batch(sql).map_err(|e| self.db_err(e))
    }

    /// DuckDB's worker threads now ([`Workers::None`] when it runs on the connections' own
    /// threads alone, as on a one-core machine).
    pub fn workers(&self) -> Result<Workers, StoreError> {
        Ok(if self.duckdb_threads()? <= 1 {
            Workers::None
        } else {
            Workers::PerCore
        })
    }

    /// DuckDB's current thread count for this database.
    fn duckdb_threads(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT current_setting('threads')::BIGINT", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.db_err(e))
    }

    /// Gives DuckDB its threads back after a bulk import's appends (the checkpoint and the
    /// queries that follow use them again): its default, one per core, so two imports that
    /// overlapped cannot leave the case on one thread. A failure leaves the case unharmed;
    /// only its queries run on fewer threads until the case is opened again.
    pub fn end_bulk_import(&self, _bulk: BulkImport) -> Result<(), StoreError> {
        self.conn
            .execute_batch("RESET threads;")
            .map_err(|e| self.db_err(e))
    }

    /// For benchmarks: DuckDB settings other than the case's own, for this database.
    #[doc(hidden)]
    pub fn tune_for_bench(&self, t: Tuning) -> Result<(), StoreError> {
        let mut sql = String::new();
        if let Some(mb) = t.wal_mb {
            sql.push_str(&format!("SET checkpoint_threshold = '{mb}MB';"));
        }
        if let Some(n) = t.threads {
            sql.push_str(&format!("SET threads = {};", n.max(1)));
        }
        if let Some(c) = &t.compression {
            sql.push_str(&format!("PRAGMA force_compression = '{c}';"));
        }
        self.conn.execute_batch(&sql).map_err(|e| self.db_err(e))
    }

    /// Bytes in the case's write-ahead log (0 when it has none).
    pub fn wal_bytes(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push(".wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    /// Folds the write-ahead log into the case file now (so its cost is paid here, not at
    /// close).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("CHECKPOINT;")
            .map_err(|e| self.db_err(e))
    }

    /// For benchmarks: repeats the case's transactions `copies` times (ids and times shifted
    /// so every copy is distinct), then checkpoints. Returns the new transaction count.
    pub fn replicate_transactions(&self, copies: u64) -> Result<u64, StoreError> {
        self.conn
            .execute_batch(&format!(
                "INSERT INTO stored_transactions SELECT t.* REPLACE (
                     t.id + r.range * 1000 AS id,
                     t.request_ts_ns + r.range * 4000000000 AS request_ts_ns,
                     t.response_ts_ns + r.range * 4000000000 AS response_ts_ns)
                 FROM transactions t, range(1, {copies}) r;
                 CHECKPOINT;"
            ))
            .map_err(|e| self.db_err(e))?;
        self.transaction_count()
    }

    /// The id the next stored transaction gets (unless another writer reserves first).
    pub fn next_transaction_id(&self) -> Result<i64, StoreError> {
        Ok(self.ids.peek())
    }

    /// Appends transactions in one DuckDB transaction, numbered from the case's allocator;
    /// returns the ids given to them.
    pub fn append(&mut self, txs: &[Transaction]) -> Result<std::ops::Range<i64>, StoreError> {
        let ids = self.ids.reserve(txs.len());
        let first = ids.start;
        self.atomically_appending(|tx| transactions::append(tx, None, first, txs))?;
        Ok(ids)
    }

    /// A writer on a connection of its own, for storing transactions of `source` from another
    /// thread, in parallel with other writers.
    pub fn batch_writer(
        &self,
        source: Option<i64>,
    ) -> Result<transactions::BatchWriter, StoreError> {
        let conn = self.conn.try_clone().map_err(|e| self.db_err(e))?;
        Ok(transactions::BatchWriter::new(
            conn,
            self.path.clone(),
            source,
        ))
    }

    /// Number of stored transactions readers see (completed imports and sensor records).
    pub fn transaction_count(&self) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM transactions WHERE {}", query::VISIBLE);
        self.conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(|e| self.db_err(e))
    }

    /// Runs a query and maps every row: the read path's one place for prepare, bind, collect.
    pub(crate) fn select<T>(
        &self,
        sql: &str,
        params: &[&dyn duckdb::ToSql],
        f: impl FnMut(&duckdb::Row<'_>) -> Result<T, duckdb::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.db_err(e))?;
        let rows = stmt.query_map(params, f).map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// The one integer an aggregate query gives (`None` over no rows).
    pub(crate) fn select_max(&self, sql: &str) -> Result<Option<i64>, StoreError> {
        let rows = self.select(sql, &[], |r| r.get::<_, Option<i64>>(0))?;
        Ok(rows.into_iter().flatten().next())
    }

    /// The underlying connection, for the query and export modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The case file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::{Anomalies, Body};

    #[test]
    fn a_bulk_import_leaves_the_cores_to_its_writers_and_gives_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let threads = |s: &CaseStore| s.duckdb_threads().unwrap();
        let cores = threads(&store);
        let bulk = store.prepare_bulk_import(2).unwrap();
        assert_eq!(
            threads(&store),
            (cores - 1).max(1),
            "two writers: one core fewer"
        );
        store.end_bulk_import(bulk).unwrap();
        assert_eq!(threads(&store), cores);
        store.conn.execute_batch("SET threads = 4;").unwrap();
        let bulk = store.prepare_bulk_import(8).unwrap();
        assert_eq!(
            threads(&store),
            1,
            "more writers than threads: no workers at all"
        );
        store.end_bulk_import(bulk).unwrap();
        assert_eq!(threads(&store), cores, "back to one per core");
    }

    #[test]
    fn workers_are_set_for_every_connection_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let other = store.try_clone().unwrap();
        let cores = store.duckdb_threads().unwrap();
        store.set_workers(Workers::None).unwrap();
        assert_eq!(other.duckdb_threads().unwrap(), 1);
        assert_eq!(other.workers().unwrap(), Workers::None);
        store.set_workers(Workers::PerCore).unwrap();
        assert_eq!(other.duckdb_threads().unwrap(), cores);
    }

    /// At DuckDB's default the log would have been folded into the file after 16 MB, with
    /// the partial row group compressed again at every such checkpoint.
    #[test]
    fn commits_gather_in_the_log_well_past_duckdbs_default_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.duckdb");
        let mut store = CaseStore::open(&path).unwrap();
        let txs: Vec<Transaction> = (0..2_000)
            .map(|i| Transaction {
                method: "POST".into(),
                uri: format!("/w/{i}"),
                request_body: Body {
                    data: format!("{i:01000}").into_bytes(),
                    len: 1000,
                    truncated: false,
                },
                ..Transaction::default()
            })
            .collect();
        for _ in 0..12 {
            store.append(&txs).unwrap();
        }
        let wal = store.wal_bytes();
        assert!(wal > 20 << 20, "the log was checkpointed at {wal} bytes");
        assert_eq!(store.transaction_count().unwrap(), 24_000);
    }

    /// Two connections numbering rows `max(id) + 1` at once (live analysis writing findings
    /// while an import completes, in the hub's process) must not take the same id.
    #[test]
    fn connections_numbering_rows_at_once_never_take_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let ids: Vec<i64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|w| {
                    let mut c = store.try_clone().unwrap();
                    s.spawn(move || {
                        (0..25)
                            .map(|i| {
                                let target = format!("https://hook.test/{w}/{i}");
                                c.add_alert_sink(
                                    alerts::SinkKind::Webhook,
                                    &target,
                                    endpoints::Severity::High,
                                    None,
                                )
                                .unwrap_or_else(|e| panic!("sink {w}/{i}: {e}"))
                            })
                            .collect::<Vec<i64>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), 100, "{ids:?}");
    }

    #[test]
    fn older_case_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.duckdb");
        {
            // A case as Tapline 0.1 (schema v1) wrote it.
            let conn = duckdb::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version BIGINT NOT NULL, applied_at TIMESTAMP DEFAULT current_timestamp);
                 CREATE TABLE transactions (id BIGINT PRIMARY KEY, request_ts_ns BIGINT NOT NULL, response_ts_ns BIGINT,
                   sensor_id VARCHAR, client VARCHAR, server VARCHAR, method VARCHAR NOT NULL, host VARCHAR,
                   uri VARCHAR NOT NULL, path VARCHAR NOT NULL, query VARCHAR, version VARCHAR NOT NULL,
                   status USMALLINT, reason VARCHAR, request_headers VARCHAR NOT NULL, response_headers VARCHAR NOT NULL,
                   request_body BLOB, request_body_len UBIGINT NOT NULL, request_body_truncated BOOLEAN NOT NULL,
                   response_body BLOB, response_body_len UBIGINT NOT NULL, response_body_truncated BOOLEAN NOT NULL,
                   anomalies UINTEGER NOT NULL);
                 INSERT INTO schema_version (version) VALUES (1);
                 INSERT INTO transactions VALUES (1, 1700000000000000000, NULL, NULL, '10.0.0.1:5000', '10.0.0.2:80',
                   'GET', 'old.test', '/legacy?x=1', '/legacy', 'x=1', 'HTTP/1.1', 200, 'OK', '[[\"Host\",\"old.test\"]]', '[]',
                   NULL, 0, false, NULL, 0, false, 0);
                 INSERT INTO transactions VALUES (2, 1700000000000000001, NULL, NULL, '[2001:db8::7]:61000', NULL,
                   'GET', 'old.test', '/v6', '/v6', NULL, 'HTTP/1.1', 200, 'OK', '[]', '[]',
                   NULL, 0, false, NULL, 0, false, 0);",
            )
            .unwrap();
        }
        let mut store = CaseStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let old = store.transaction(1).unwrap().unwrap();
        assert_eq!(old.uri, "/legacy?x=1");
        assert_eq!(old.request_headers.get("host"), Some("old.test"));
        // v3 split `ip:port` text into address and port columns.
        assert_eq!(old.client, "10.0.0.1:5000".parse().ok());
        assert_eq!(old.server, "10.0.0.2:80".parse().ok());
        let v6 = store.transaction(2).unwrap().unwrap();
        assert_eq!(v6.client, "[2001:db8::7]:61000".parse().ok());
        assert_eq!(v6.server, None);
        let by_ip = query::TxFilter {
            client_ip: Some("2001:db8::7".into()),
            ..query::TxFilter::default()
        };
        assert_eq!(store.count_transactions(&by_ip).unwrap(), 1);
        // v6 dropped what nothing ever used (v10 made block_rules anew, other columns).
        let unused: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM information_schema.columns WHERE table_name IN \
                 ('security_tests', 'test_runs', 'data_class_hits') \
                 OR (table_name = 'transactions' AND column_name = 'endpoint_id') \
                 OR (table_name = 'block_rules' AND column_name IN \
                     ('kind', 'value', 'finding_id', 'enabled', 'created_at', 'expires_at'))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unused, 0, "unused tables or columns survived the migration");
        // The migrated case takes new transactions, numbered after the old ones.
        let ids = store.append(&[old.clone(), v6.clone()]).unwrap();
        assert_eq!(ids, 3..5);
        assert_eq!(store.transaction_count().unwrap(), 4);
    }

    #[test]
    fn case_file_round_trips_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.duckdb");
        let tx = Transaction {
            request_ts_nanos: 1_700_000_000_123_456_789,
            method: "POST".into(),
            uri: "/api/login".into(),
            status: Some(401),
            request_headers: [("Host", "shop.test")].into_iter().collect(),
            request_body: Body {
                data: b"{\"user\":\"a\"}".to_vec(),
                len: 12,
                truncated: false,
            },
            anomalies: Anomalies::GAP,
            ..Transaction::default()
        };
        {
            let mut store = CaseStore::open(&path).unwrap();
            assert_eq!(store.append(std::slice::from_ref(&tx)).unwrap(), 1..2);
        }
        let store = CaseStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.transaction_count().unwrap(), 1);
        let (method, status, body, anomalies, headers, ts): (String, u16, Vec<u8>, u32, String, i64) = store
            .conn
            .query_row(
                "SELECT method, status, request_body, anomalies, request_headers, request_ts_ns FROM transactions WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        assert_eq!(method, "POST");
        assert_eq!(status, 401);
        assert_eq!(body, tx.request_body.data);
        assert_eq!(Anomalies::from_bits(anomalies), Anomalies::GAP);
        assert_eq!(headers, r#"[["Host","shop.test"]]"#);
        assert_eq!(ts, tx.request_ts_nanos);
    }

    #[test]
    fn newer_case_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.duckdb");
        {
            let store = CaseStore::open(&path).unwrap();
            store
                .conn
                .execute(
                    "INSERT INTO schema_version (version) VALUES (?)",
                    [SCHEMA_VERSION + 1],
                )
                .unwrap();
        }
        match CaseStore::open(&path) {
            Err(StoreError::TooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer case must be refused"),
        }
    }
}
