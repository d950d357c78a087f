//! The `transactions` table: bulk append through DuckDB's Appender, and reading rows back as
//! [`Transaction`] records (for exports and re-analysis).

use crate::StoreError;
use duckdb::Row;
use duckdb::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanArray, Int64Array, StringBuilder, UInt16Array, UInt32Array,
    UInt64Array,
};
use duckdb::arrow::datatypes::{Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tapline_record::{Anomalies, Body, Headers, HttpVersion, Transaction};
use tapline_record::{method_token, reason_phrase};

/// Appends `txs` with ids from `first`, tagged with `source`, inside the connection's open
/// DuckDB transaction.
///
/// Rows go in as Arrow record batches (columnar, DuckDB copies whole vectors) rather than
/// value by value: binding each of 27 values per row dominated import time.
pub fn append(
    tx: &duckdb::Connection,
    source: Option<i64>,
    first: i64,
    txs: &[Transaction],
) -> Result<(), duckdb::Error> {
    let refs: Vec<&Transaction> = txs.iter().collect();
    append_refs(tx, source, first, &refs)
}

/// Rows per Arrow batch handed to an appender: DuckDB's vector size, so the batches' buffers
/// stay small enough for the allocator to reuse, instead of fresh pages the kernel must zero
/// for every batch.
pub(crate) const ARROW_ROWS: usize = 2048;

/// [`append`] for records held elsewhere (several sensor batches stored together).
pub fn append_refs(
    tx: &duckdb::Connection,
    source: Option<i64>,
    first: i64,
    txs: &[&Transaction],
) -> Result<(), duckdb::Error> {
    if txs.is_empty() {
        return Ok(());
    }
    let mut app = tx.appender("stored_transactions")?;
    for batch in record_batches(source, first, txs)
        .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?
    {
        app.append_record_batch(batch)?;
    }
    app.flush()
}

/// The table's columns, in order: the names a live segment's columns take.
pub(crate) const TABLE_COLUMNS: [&str; 28] = [
    "id",
    "source_id",
    "request_ts_ns",
    "response_ts_ns",
    "sensor_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "method",
    "host",
    "uri",
    "path",
    "query",
    "version",
    "status",
    "reason",
    "request_headers",
    "response_headers",
    "request_content_type",
    "response_content_type",
    "request_body",
    "request_body_len",
    "request_body_truncated",
    "response_body",
    "response_body_len",
    "response_body_truncated",
    "anomalies",
];

/// `txs` with ids from `first` as Arrow batches of at most [`ARROW_ROWS`] rows, in the
/// table's column order (positional names: an appender matches by position).
pub(crate) fn record_batches(
    source: Option<i64>,
    first: i64,
    txs: &[&Transaction],
) -> Result<Vec<RecordBatch>, duckdb::arrow::error::ArrowError> {
    if txs.is_empty() {
        // One batch without rows still carries the columns' types (a segment's schema).
        return Ok(vec![record_batch(source, first, txs)?]);
    }
    txs.chunks(ARROW_ROWS)
        .enumerate()
        .map(|(i, chunk)| record_batch(source, first + (i * ARROW_ROWS) as i64, chunk))
        .collect()
}

/// One of possibly several writers storing an import's transactions at once, each on its own
/// DuckDB connection and thread.
///
/// Rows accumulate in the writer's open DuckDB transaction until [`BatchWriter::commit`]. A
/// commit of at least a row group (122,880 rows) lets DuckDB compress full row groups straight
/// into the case file on the appending thread instead of logging every value to the WAL first,
/// and writers on separate threads compress in parallel. Dropping a writer with uncommitted
/// rows rolls them back.
pub struct BatchWriter {
    conn: duckdb::Connection,
    path: PathBuf,
    source: Option<i64>,
    open: bool,
}

impl BatchWriter {
    pub(crate) fn new(conn: duckdb::Connection, path: PathBuf, source: Option<i64>) -> Self {
        BatchWriter {
            conn,
            path,
            source,
            open: false,
        }
    }

    fn err(&self, source: duckdb::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            error: source,
        }
    }

    /// Adds `txs`, numbered from `first`, to the open DuckDB transaction (opening one if needed).
    pub fn append(&mut self, first: i64, txs: &[Transaction]) -> Result<(), StoreError> {
        if !self.open {
            self.conn
                .execute_batch("BEGIN TRANSACTION")
                .map_err(|e| self.err(e))?;
            self.open = true;
        }
        append(&self.conn, self.source, first, txs).map_err(|e| self.err(e))
    }

    /// Makes every row appended so far durable.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if std::mem::take(&mut self.open) {
            self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Discards the rows appended since the last commit.
    pub fn rollback(&mut self) -> Result<(), StoreError> {
        if std::mem::take(&mut self.open) {
            self.conn
                .execute_batch("ROLLBACK")
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

impl Drop for BatchWriter {
    fn drop(&mut self) {
        // Nothing to report to: uncommitted rows were never promised to anyone.
        let _ = self.rollback();
    }
}

fn record_batch(
    source: Option<i64>,
    first: i64,
    txs: &[&Transaction],
) -> Result<RecordBatch, duckdb::arrow::error::ArrowError> {
    let n = txs.len();
    let strings = |f: &dyn Fn(&Transaction) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for t in txs {
            b.append_option(f(t));
        }
        Arc::new(b.finish())
    };
    let blobs = |f: &dyn Fn(&Transaction) -> &[u8]| -> ArrayRef {
        let mut b = BinaryBuilder::with_capacity(n, txs.iter().map(|t| f(t).len()).sum());
        for t in txs {
            b.append_value(f(t));
        }
        Arc::new(b.finish())
    };
    let headers = |f: &dyn Fn(&Transaction) -> &Headers| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 128);
        let mut buf = String::new();
        for t in txs {
            headers_json(f(t), &mut buf);
            b.append_value(&buf);
        }
        Arc::new(b.finish())
    };
    let ips = |f: &dyn Fn(&Transaction) -> Option<SocketAddr>| -> ArrayRef {
        use std::fmt::Write;
        let mut b = StringBuilder::with_capacity(n, n * 16);
        let mut buf = String::with_capacity(48);
        for t in txs {
            match f(t) {
                Some(a) => {
                    buf.clear();
                    let _ = write!(buf, "{}", a.ip());
                    b.append_value(&buf);
                }
                None => b.append_null(),
            }
        }
        Arc::new(b.finish())
    };
    let ports = |f: &dyn Fn(&Transaction) -> Option<SocketAddr>| -> ArrayRef {
        Arc::new(UInt16Array::from_iter(
            txs.iter().map(|t| f(t).map(|a| a.port())),
        ))
    };
    // In the table's column order (schema v3).
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(first..first + n as i64)),
        Arc::new(Int64Array::from_iter(txs.iter().map(|_| source))),
        Arc::new(Int64Array::from_iter_values(
            txs.iter().map(|t| t.request_ts_nanos),
        )),
        Arc::new(Int64Array::from_iter(
            txs.iter().map(|t| t.response_ts_nanos),
        )),
        strings(&|t| t.sensor_id.as_deref()),
        ips(&|t| t.client),
        ports(&|t| t.client),
        ips(&|t| t.server),
        ports(&|t| t.server),
        strings(&|t| Some(&t.method)),
        strings(&|t| t.host.as_deref()),
        strings(&|t| Some(&t.uri)),
        strings(&|t| Some(t.path())),
        strings(&|t| t.query()),
        strings(&|t| Some(t.version.as_str())),
        Arc::new(UInt16Array::from_iter(txs.iter().map(|t| t.status))),
        strings(&|t| t.reason.as_deref()),
        headers(&|t| &t.request_headers),
        headers(&|t| &t.response_headers),
        strings(&|t| t.request_content_type()),
        strings(&|t| t.response_content_type()),
        blobs(&|t| &t.request_body.data),
        Arc::new(UInt64Array::from_iter_values(
            txs.iter().map(|t| t.request_body.len),
        )),
        Arc::new(BooleanArray::from_iter(
            txs.iter().map(|t| Some(t.request_body.truncated)),
        )),
        blobs(&|t| &t.response_body.data),
        Arc::new(UInt64Array::from_iter_values(
            txs.iter().map(|t| t.response_body.len),
        )),
        Arc::new(BooleanArray::from_iter(
            txs.iter().map(|t| Some(t.response_body.truncated)),
        )),
        Arc::new(UInt32Array::from_iter_values(
            txs.iter().map(|t| t.anomalies.bits()),
        )),
    ];
    // Named as the table's columns: an appender matches by position, a live segment by name.
    let fields: Vec<Field> = columns
        .iter()
        .zip(TABLE_COLUMNS)
        .map(|(c, name)| Field::new(name, c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Headers as a JSON array of `[name, value]` pairs, written into a reused buffer.
fn headers_json(h: &Headers, out: &mut String) {
    out.clear();
    out.push('[');
    for (i, (n, v)) in h.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        json_string(n, out);
        out.push(',');
        json_string(v, out);
        out.push(']');
    }
    out.push(']');
}

fn json_string(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    if !needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` holds a byte JSON escapes; tested a block at a time without early exits, which
/// the compiler turns into vector compares (header values are mostly clean).
fn needs_escape(s: &[u8]) -> bool {
    s.chunks(32).any(|block| {
        block.iter().fold(false, |hit, &b| {
            hit | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

/// An address from its stored parts (`ip`, `port`).
pub fn socket_addr(ip: Option<String>, port: Option<u16>) -> Option<SocketAddr> {
    Some(SocketAddr::new(ip?.parse().ok()?, port?))
}

/// The columns [`from_row`] reads, in order.
pub const COLUMNS: &str = "id, request_ts_ns, response_ts_ns, sensor_id, client_ip, client_port, server_ip, server_port, \
     method, host, uri, version, status, reason, request_headers, response_headers, request_body, \
     request_body_len, request_body_truncated, response_body, response_body_len, \
     response_body_truncated, anomalies";

/// A stored row back as a record (its id first).
pub fn from_row(r: &Row<'_>) -> Result<(i64, Transaction), duckdb::Error> {
    let headers = |s: String| serde_json::from_str::<Headers>(&s).unwrap_or_default();
    let version = match r.get::<_, String>(11)?.as_str() {
        "HTTP/0.9" => HttpVersion::Http09,
        "HTTP/1.0" => HttpVersion::Http10,
        _ => HttpVersion::Http11,
    };
    let method: String = r.get(8)?;
    let reason: Option<String> = r.get(13)?;
    let tx = Transaction {
        request_ts_nanos: r.get(1)?,
        response_ts_nanos: r.get(2)?,
        sensor_id: r.get::<_, Option<String>>(3)?.map(|s| s.into()),
        client: socket_addr(r.get(4)?, r.get(5)?),
        server: socket_addr(r.get(6)?, r.get(7)?),
        method: method_token(&method),
        host: r.get(9)?,
        uri: r.get(10)?,
        version,
        status: r.get(12)?,
        reason: reason.map(|r| reason_phrase(&r)),
        request_headers: headers(r.get(14)?),
        response_headers: headers(r.get(15)?),
        request_body: Body {
            data: r.get::<_, Option<Vec<u8>>>(16)?.unwrap_or_default(),
            len: r.get(17)?,
            truncated: r.get(18)?,
        },
        response_body: Body {
            data: r.get::<_, Option<Vec<u8>>>(19)?.unwrap_or_default(),
            len: r.get(20)?,
            truncated: r.get(21)?,
        },
        anomalies: Anomalies::from_bits(r.get(22)?),
        redactions: Vec::new(),
    };
    Ok((r.get(0)?, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_json_pairs() {
        let h: Headers = [("A", "x\"y"), ("B\n", "\u{1}")].into_iter().collect();
        let mut s = String::new();
        headers_json(&h, &mut s);
        assert_eq!(s, r#"[["A","x\"y"],["B\n","\u0001"]]"#);
        assert_eq!(serde_json::from_str::<Headers>(&s).unwrap(), h);
    }

    #[test]
    fn an_escape_is_found_wherever_it_sits_in_a_long_value() {
        let clean = "a".repeat(100);
        assert!(!needs_escape(clean.as_bytes()));
        for at in [0, 31, 32, 33, 63, 64, 99] {
            for bad in [b'"', b'\\', b'\n', 0x1f] {
                let mut v = clean.clone().into_bytes();
                v[at] = bad;
                assert!(needs_escape(&v), "byte {bad:#x} at {at}");
            }
        }
        assert!(
            !needs_escape("é ~\x7f".as_bytes()),
            "only JSON's escapes count"
        );
    }
}
