//! The `tapline decode --format jsonl` record: one JSON object a line, fields per DESIGN.md.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use tapline_core::{Headers, Transaction};

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

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
