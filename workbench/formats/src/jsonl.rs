//! The `tapline decode --format jsonl` record: one JSON object a line, fields per DESIGN.md.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use tapline_record::time::rfc3339_nanos;
use tapline_record::{Headers, Transaction};

/// One transaction as a JSON line.
#[derive(Serialize)]
pub struct JsonlRecord<'a> {
    /// Request time, RFC 3339 UTC with nanoseconds.
    pub ts: String,
    /// Response time, when a response was seen.
    pub response_ts: Option<String>,
    /// `ip:port` of the client.
    pub client: Option<String>,
    /// `ip:port` of the server.
    pub server: Option<String>,
    /// Sensor that captured it.
    pub sensor_id: Option<&'a str>,
    /// Request method.
    pub method: &'a str,
    /// Host header (or absolute-form authority).
    pub host: Option<&'a str>,
    /// Request target as sent.
    pub uri: &'a str,
    /// HTTP version.
    pub version: &'static str,
    /// Response status.
    pub status: Option<u16>,
    /// Reason phrase.
    pub reason: Option<&'a str>,
    /// `[name, value]` pairs.
    pub request_headers: Vec<[&'a str; 2]>,
    /// `[name, value]` pairs.
    pub response_headers: Vec<[&'a str; 2]>,
    /// Decoded request body (de-chunked, decompressed, capped), base64.
    pub request_body_b64: String,
    /// Decoded response body, base64.
    pub response_body_b64: String,
    /// Full decoded request body length.
    pub request_body_len: u64,
    /// Full decoded response body length.
    pub response_body_len: u64,
    /// True when the request body was cut (cap, gap).
    pub request_body_truncated: bool,
    /// True when the response body was cut.
    pub response_body_truncated: bool,
    /// Decode anomaly names.
    pub anomalies: Vec<&'static str>,
}

fn pairs(h: &Headers) -> Vec<[&str; 2]> {
    h.iter().map(|(n, v)| [n, v]).collect()
}

fn body_b64(data: &[u8], max: usize) -> String {
    B64.encode(&data[..data.len().min(max)])
}

impl<'a> JsonlRecord<'a> {
    /// The JSON form of `tx`, bodies cut to `max_body` bytes.
    pub fn new(tx: &'a Transaction, max_body: usize) -> Self {
        JsonlRecord {
            ts: rfc3339_nanos(tx.request_ts_nanos),
            response_ts: tx.response_ts_nanos.map(rfc3339_nanos),
            client: tx.client.map(|a| a.to_string()),
            server: tx.server.map(|a| a.to_string()),
            sensor_id: tx.sensor_id.as_deref(),
            method: &tx.method,
            host: tx.host.as_deref(),
            uri: &tx.uri,
            version: tx.version.as_str(),
            status: tx.status,
            reason: tx.reason.as_deref(),
            request_headers: pairs(&tx.request_headers),
            response_headers: pairs(&tx.response_headers),
            request_body_b64: body_b64(&tx.request_body.data, max_body),
            response_body_b64: body_b64(&tx.response_body.data, max_body),
            request_body_len: tx.request_body.len,
            response_body_len: tx.response_body.len,
            request_body_truncated: tx.request_body.truncated
                || tx.request_body.data.len() > max_body,
            response_body_truncated: tx.response_body.truncated
                || tx.response_body.data.len() > max_body,
            anomalies: tx.anomalies.names().collect(),
        }
    }
}
