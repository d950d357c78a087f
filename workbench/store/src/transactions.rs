//! The `transactions` table: bulk append through DuckDB's Appender, and reading rows back as
//! [`Transaction`] records (for exports and re-analysis).

use duckdb::{Row, params};
use std::net::SocketAddr;
use tapline_core::record::{method_token, reason_phrase};
use tapline_core::{Anomalies, Body, Headers, HttpVersion, Transaction};

/// Appends `txs` with ids from `first`, tagged with `source`, inside the caller's transaction.
pub fn append(
    tx: &duckdb::Transaction<'_>,
    source: Option<i64>,
    first: i64,
    txs: &[Transaction],
) -> Result<(), duckdb::Error> {
    let mut app = tx.appender("transactions")?;
    let mut req_headers = String::new();
    let mut resp_headers = String::new();
    for (i, t) in txs.iter().enumerate() {
        headers_json(&t.request_headers, &mut req_headers);
        headers_json(&t.response_headers, &mut resp_headers);
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
            req_headers.as_str(),
            resp_headers.as_str(),
            t.request_body.data,
            t.request_body.len,
            t.request_body.truncated,
            t.response_body.data,
            t.response_body.len,
            t.response_body.truncated,
            t.anomalies.bits(),
            source,
            t.request_content_type(),
            t.response_content_type(),
            None::<i64>,
        ])?;
    }
    app.flush()
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
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
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

/// The columns [`from_row`] reads, in order.
pub const COLUMNS: &str = "id, request_ts_ns, response_ts_ns, sensor_id, client, server, method, host, uri, version, \
     status, reason, request_headers, response_headers, request_body, request_body_len, \
     request_body_truncated, response_body, response_body_len, response_body_truncated, anomalies";

/// A stored row back as a record (its id first).
pub fn from_row(r: &Row<'_>) -> Result<(i64, Transaction), duckdb::Error> {
    let addr = |s: Option<String>| s.and_then(|s| s.parse::<SocketAddr>().ok());
    let headers = |s: String| serde_json::from_str::<Headers>(&s).unwrap_or_default();
    let version = match r.get::<_, String>(9)?.as_str() {
        "HTTP/0.9" => HttpVersion::Http09,
        "HTTP/1.0" => HttpVersion::Http10,
        _ => HttpVersion::Http11,
    };
    let method: String = r.get(6)?;
    let reason: Option<String> = r.get(11)?;
    let tx = Transaction {
        request_ts_nanos: r.get(1)?,
        response_ts_nanos: r.get(2)?,
        sensor_id: r.get::<_, Option<String>>(3)?.map(|s| s.into()),
        client: addr(r.get(4)?),
        server: addr(r.get(5)?),
        method: method_token(&method),
        host: r.get(7)?,
        uri: r.get(8)?,
        version,
        status: r.get(10)?,
        reason: reason.map(|r| reason_phrase(&r)),
        request_headers: headers(r.get(12)?),
        response_headers: headers(r.get(13)?),
        request_body: Body {
            data: r.get::<_, Option<Vec<u8>>>(14)?.unwrap_or_default(),
            len: r.get(15)?,
            truncated: r.get(16)?,
        },
        response_body: Body {
            data: r.get::<_, Option<Vec<u8>>>(17)?.unwrap_or_default(),
            len: r.get(18)?,
            truncated: r.get(19)?,
        },
        anomalies: Anomalies::from_bits(r.get(20)?),
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
}
