//! `tapline-store`: the case file. One DuckDB database per investigation holds every
//! transaction and everything the analysis derives from them.
//!
//! The schema is versioned ([`SCHEMA_VERSION`]); opening a case applies pending migrations
//! forward, and refuses a case written by a newer Tapline.

use duckdb::{Connection, params};
use std::path::{Path, PathBuf};
use tapline_core::Transaction;
use thiserror::Error;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Failures opening or using a case file.
#[derive(Debug, Error)]
pub enum StoreError {
    /// DuckDB refused an operation.
    #[error("case file {path}: {source}")]
    Db {
        /// The case file.
        path: PathBuf,
        /// DuckDB's error.
        #[source]
        source: duckdb::Error,
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

/// Migrations, in order: index `i` takes a case from version `i` to `i + 1`.
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
];

/// An open case file.
pub struct CaseStore {
    conn: Connection,
    path: PathBuf,
}

impl CaseStore {
    /// Opens (creating if needed) the case at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = |source| StoreError::Db {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        let store = CaseStore {
            conn,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn db_err(&self, source: duckdb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source,
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

    /// Appends transactions in one DuckDB transaction; returns the ids given to them.
    pub fn append(&mut self, txs: &[Transaction]) -> Result<std::ops::Range<i64>, StoreError> {
        let first: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM transactions",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.db_err(e))?;
        let path = self.path.clone();
        let db = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut app = tx.appender("transactions").map_err(db)?;
            for (i, t) in txs.iter().enumerate() {
                let headers =
                    |h: &tapline_core::Headers| serde_json::to_string(h).unwrap_or_default();
                app.append_row(params![
                    first + i as i64,
                    t.request_ts_nanos,
                    t.response_ts_nanos,
                    t.sensor_id.as_deref(),
                    t.client.map(|a| a.to_string()),
                    t.server.map(|a| a.to_string()),
                    t.method.as_ref(),
                    t.host,
                    t.uri,
                    t.path(),
                    t.query(),
                    t.version.as_str(),
                    t.status,
                    t.reason.as_deref(),
                    headers(&t.request_headers),
                    headers(&t.response_headers),
                    t.request_body.data,
                    t.request_body.len,
                    t.request_body.truncated,
                    t.response_body.data,
                    t.response_body.len,
                    t.response_body.truncated,
                    t.anomalies.bits(),
                ])
                .map_err(db)?;
            }
            app.flush().map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(first..first + txs.len() as i64)
    }

    /// Number of stored transactions.
    pub fn transaction_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM transactions", [], |r| r.get(0))
            .map_err(|e| self.db_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_core::{Anomalies, Body};

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
