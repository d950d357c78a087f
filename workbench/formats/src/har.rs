//! HAR 1.2 (HTTP Archive) files: browser dev tools, Burp, ZAP and mitmproxy exports in, and
//! the case's transactions out.
//!
//! Import keeps what the record can hold: times, method, URL, headers, bodies (text or base64),
//! status. Export writes standard HAR plus a `_tapline` object per entry (client and server
//! address, anomalies, sensor) so a Tapline → HAR → Tapline round trip loses nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use tapline_record::time::parse_rfc3339;
use tapline_record::{Anomalies, Body, Headers, HttpVersion, Transaction};
use tapline_record::{method_token, reason_phrase, split_target};
use thiserror::Error;

/// A HAR file that could not be read.
#[derive(Debug, Error)]
pub enum HarError {
    /// Not JSON, or JSON without the HAR shape.
    #[error("not a HAR file: {msg} at line {line}, column {column}")]
    Json {
        /// What serde_json said.
        msg: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// An entry that cannot become a transaction.
    #[error("HAR entry {index}: {msg}")]
    Entry {
        /// 0-based entry index.
        index: usize,
        /// What is wrong.
        msg: String,
    },
}

#[derive(Deserialize, Serialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize, Serialize)]
struct Log {
    #[serde(default = "default_version")]
    version: String,
    #[serde(default)]
    creator: Creator,
    entries: Vec<Entry>,
}

fn default_version() -> String {
    "1.2".into()
}

#[derive(Deserialize, Serialize)]
struct Creator {
    name: String,
    version: String,
}

impl Default for Creator {
    fn default() -> Self {
        Creator {
            name: "Tapline".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: String,
    #[serde(default)]
    time: f64,
    request: Request,
    response: Response,
    #[serde(
        rename = "serverIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    server_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    _tapline: Option<Extra>,
}

#[derive(Deserialize, Serialize, Default)]
struct Extra {
    client: Option<String>,
    server: Option<String>,
    sensor: Option<String>,
    anomalies: Vec<String>,
    request_body_len: Option<u64>,
    response_body_len: Option<u64>,
    request_body_truncated: bool,
    response_body_truncated: bool,
    request_ts_ns: Option<i64>,
    response_ts_ns: Option<i64>,
    no_response: bool,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    http_version: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    query_string: Vec<NameValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    post_data: Option<PostData>,
    #[serde(default = "minus_one")]
    headers_size: i64,
    #[serde(default = "minus_one")]
    body_size: i64,
}

fn minus_one() -> i64 {
    -1
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    status: i64,
    #[serde(default)]
    status_text: String,
    #[serde(default)]
    http_version: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    content: Content,
    #[serde(default, rename = "redirectURL")]
    redirect_url: String,
    #[serde(default = "minus_one")]
    headers_size: i64,
    #[serde(default = "minus_one")]
    body_size: i64,
}

#[derive(Deserialize, Serialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encoding: Option<String>,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    size: i64,
    #[serde(default)]
    mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encoding: Option<String>,
}

fn version_of(s: &str) -> HttpVersion {
    match s.to_ascii_uppercase().as_str() {
        "HTTP/1.0" => HttpVersion::Http10,
        "HTTP/0.9" => HttpVersion::Http09,
        _ => HttpVersion::Http11,
    }
}

fn headers_of(list: &[NameValue]) -> Headers {
    // HTTP/2 exports carry pseudo-headers (":authority"); they are not fields.
    list.iter()
        .filter(|h| !h.name.starts_with(':'))
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
}

fn body_of(text: Option<&str>, encoding: Option<&str>, max_body: usize) -> Body {
    let data = match (text, encoding) {
        (Some(t), Some(e)) if e.eq_ignore_ascii_case("base64") => B64
            .decode(t.trim())
            .unwrap_or_else(|_| t.as_bytes().to_vec()),
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let len = data.len() as u64;
    let mut data = data;
    let truncated = data.len() > max_body;
    data.truncate(max_body);
    Body {
        data,
        len,
        truncated,
    }
}

/// Splits an absolute URL into host (authority) and request target.
fn split_url(url: &str) -> (Option<String>, String) {
    match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let target = &after[end..];
            let target = target.split('#').next().unwrap_or("");
            let target = if target.is_empty() || target.starts_with('?') {
                format!("/{target}")
            } else {
                target.to_owned()
            };
            (Some(after[..end].to_owned()), target)
        }
        None => (None, url.to_owned()),
    }
}

/// Reads a HAR document into transactions, bodies cut to `max_body` bytes.
pub fn parse(bytes: &[u8], max_body: usize) -> Result<Vec<Transaction>, HarError> {
    let mut out = Vec::new();
    stream(bytes, max_body, &mut |tx| {
        out.push(tx);
        Flow::Go
    })?;
    Ok(out)
}

/// Whether [`stream`] should go on after a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Hand over the next one.
    Go,
    /// Stop reading (the caller knows why).
    Stop,
}

/// Reads a HAR document one entry at a time, handing each transaction to `each` as soon as
/// it is read: memory holds one entry, however large the file. Returns the entries handed
/// over. Fields other than `log.entries` are skipped unread.
pub fn stream(
    bytes: &[u8],
    max_body: usize,
    each: &mut dyn FnMut(Transaction) -> Flow,
) -> Result<usize, HarError> {
    let mut reader = EntryReader {
        each,
        max_body,
        count: 0,
        failure: None,
        stopped: false,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let read = serde::de::DeserializeSeed::deserialize(Document(&mut reader), &mut de)
        .and_then(|()| de.end());
    match (read, reader.failure, reader.stopped) {
        (_, Some(entry), _) => Err(entry),
        (_, None, true) | (Ok(()), None, false) => Ok(reader.count),
        (Err(e), None, false) => Err(HarError::Json {
            msg: e.to_string(),
            line: e.line(),
            column: e.column(),
        }),
    }
}

/// Converts entries as the parser meets them; a failure or a stop is kept here, and the
/// parse is ended with an error that [`stream`] replaces by it.
struct EntryReader<'a> {
    each: &'a mut dyn FnMut(Transaction) -> Flow,
    max_body: usize,
    count: usize,
    failure: Option<HarError>,
    stopped: bool,
}

/// The document: `{"log": {..., "entries": [...]}}`.
struct Document<'r, 'a>(&'r mut EntryReader<'a>);
/// The `log` object.
struct LogObject<'r, 'a>(&'r mut EntryReader<'a>);
/// The `entries` array.
struct Entries<'r, 'a>(&'r mut EntryReader<'a>);

/// Visits an object, handing the value of `wanted` to `seed` and skipping the rest; the
/// field must be there.
fn one_field<'de, A, S>(
    mut map: A,
    wanted: &'static str,
    mut seed: Option<S>,
) -> Result<(), A::Error>
where
    A: serde::de::MapAccess<'de>,
    S: serde::de::DeserializeSeed<'de, Value = ()>,
{
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        match (key == wanted, seed.take()) {
            (true, Some(s)) => map.next_value_seed(s)?,
            (_, s) => {
                seed = s;
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
    }
    match seed {
        Some(_) => Err(serde::de::Error::missing_field(wanted)),
        None => Ok(()),
    }
}

macro_rules! object_with {
    ($ty:ident, $field:literal, $inner:ident, $what:literal) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $ty<'_, '_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de> serde::de::Visitor<'de> for $ty<'_, '_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($what)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
                one_field(map, $field, Some($inner(self.0)))
            }
        }
    };
}
object_with!(
    Document,
    "log",
    LogObject,
    "a HAR document (an object with a `log`)"
);
object_with!(
    LogObject,
    "entries",
    Entries,
    "a HAR `log` object (with `entries`)"
);

impl<'de> serde::de::DeserializeSeed<'de> for Entries<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Entries<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the `entries` array of HAR entries")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let r = self.0;
        while let Some(entry) = seq.next_element::<Entry>()? {
            let tx = transaction_of(r.count, entry, r.max_body).map_err(|e| {
                r.failure = Some(e);
                serde::de::Error::custom("entry")
            })?;
            r.count += 1;
            if (r.each)(tx) == Flow::Stop {
                r.stopped = true;
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// One HAR entry as a transaction; `index` names it in errors.
fn transaction_of(index: usize, e: Entry, max_body: usize) -> Result<Transaction, HarError> {
    let extra = e._tapline.unwrap_or_default();
    let started = match extra.request_ts_ns {
        Some(ns) => ns,
        None => parse_rfc3339(&e.started_date_time).ok_or_else(|| HarError::Entry {
            index,
            msg: format!(
                "startedDateTime {:?} is not an ISO 8601 time",
                e.started_date_time
            ),
        })?,
    };
    let (url_host, uri) = split_url(&e.request.url);
    let req_headers = headers_of(&e.request.headers);
    let host = req_headers.get("host").map(str::to_owned).or(url_host);
    let has_response = e.response.status > 0 && !extra.no_response;
    let addr = |s: &Option<String>| s.as_deref().and_then(|a| a.parse::<SocketAddr>().ok());
    let mut tx = Transaction {
        request_ts_nanos: started,
        response_ts_nanos: extra
            .response_ts_ns
            .or(has_response.then(|| started + (e.time.max(0.0) * 1e6) as i64)),
        client: addr(&extra.client),
        server: addr(&extra.server),
        sensor_id: extra.sensor.map(Into::into),
        method: method_token(&e.request.method),
        host,
        uri,
        version: version_of(&e.request.http_version),
        status: has_response.then(|| e.response.status.clamp(0, 999) as u16),
        reason: has_response.then(|| reason_phrase(&e.response.status_text)),
        request_headers: req_headers,
        response_headers: headers_of(&e.response.headers),
        request_body: e
            .request
            .post_data
            .as_ref()
            .map(|p| body_of(p.text.as_deref(), p.encoding.as_deref(), max_body))
            .unwrap_or_default(),
        response_body: body_of(
            e.response.content.text.as_deref(),
            e.response.content.encoding.as_deref(),
            max_body,
        ),
        anomalies: extra
            .anomalies
            .iter()
            .filter_map(|n| Anomalies::from_name(n))
            .fold(Anomalies::NONE, |a, b| a | b),
        redactions: Vec::new(),
    };
    if let Some(n) = extra.request_body_len {
        tx.request_body.len = n;
        tx.request_body.truncated |= extra.request_body_truncated;
    }
    if let Some(n) = extra.response_body_len {
        tx.response_body.len = n;
        tx.response_body.truncated |= extra.response_body_truncated;
    }
    if !has_response {
        tx.anomalies.insert(Anomalies::MISSING_RESPONSE);
    }
    Ok(tx)
}

fn post_or_content(data: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(data) {
        Ok(t) => (Some(t.to_owned()), None),
        Err(_) => (Some(B64.encode(data)), Some("base64".into())),
    }
}

fn name_values(h: &Headers) -> Vec<NameValue> {
    h.iter()
        .map(|(n, v)| NameValue {
            name: n.to_owned(),
            value: v.to_owned(),
        })
        .collect()
}

fn entry_of(t: &Transaction) -> Entry {
    let host = t.host.clone().unwrap_or_else(|| {
        t.server
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into())
    });
    let url = if t.uri.contains("://") {
        t.uri.clone()
    } else {
        format!("http://{host}{}", t.uri)
    };
    let (_, query) = split_target(&t.uri);
    let query_string = query
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, v) = p.split_once('=').unwrap_or((p, ""));
                    NameValue {
                        name: n.to_owned(),
                        value: v.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let (req_text, req_enc) = post_or_content(&t.request_body.data);
    let (resp_text, resp_enc) = post_or_content(&t.response_body.data);
    let latency_ms = t
        .response_ts_nanos
        .map_or(0.0, |r| (r - t.request_ts_nanos) as f64 / 1e6);
    Entry {
        started_date_time: tapline_record::time::rfc3339_nanos(t.request_ts_nanos),
        time: latency_ms.max(0.0),
        request: Request {
            method: t.method.to_string(),
            url,
            http_version: t.version.as_str().into(),
            headers: name_values(&t.request_headers),
            query_string,
            post_data: (!t.request_body.data.is_empty() || t.request_body.len > 0).then(|| {
                PostData {
                    mime_type: t.request_content_type().unwrap_or_default().into(),
                    text: req_text,
                    encoding: req_enc,
                }
            }),
            headers_size: -1,
            body_size: t.request_body.len as i64,
        },
        response: Response {
            status: t.status.map_or(0, i64::from),
            status_text: t.reason.as_deref().unwrap_or("").into(),
            http_version: t.version.as_str().into(),
            headers: name_values(&t.response_headers),
            content: Content {
                size: t.response_body.len as i64,
                mime_type: t.response_content_type().unwrap_or_default().into(),
                text: resp_text,
                encoding: resp_enc,
            },
            redirect_url: t.response_header("location").unwrap_or("").into(),
            headers_size: -1,
            body_size: t.response_body.len as i64,
        },
        server_ip_address: t.server.map(|s| s.ip().to_string()),
        _tapline: Some(Extra {
            client: t.client.map(|a| a.to_string()),
            server: t.server.map(|a| a.to_string()),
            sensor: t.sensor_id.as_deref().map(str::to_owned),
            anomalies: t.anomalies.names().map(str::to_owned).collect(),
            request_body_len: Some(t.request_body.len),
            response_body_len: Some(t.response_body.len),
            request_body_truncated: t.request_body.truncated,
            response_body_truncated: t.response_body.truncated,
            request_ts_ns: Some(t.request_ts_nanos),
            response_ts_ns: t.response_ts_nanos,
            no_response: t.status.is_none(),
        }),
    }
}

/// Writes transactions as one HAR document.
pub fn write<'a>(
    txs: impl IntoIterator<Item = &'a Transaction>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let har = Har {
        log: Log {
            version: "1.2".into(),
            creator: Creator::default(),
            entries: txs.into_iter().map(entry_of).collect(),
        },
    };
    serde_json::to_writer_pretty(&mut *out, &har)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_har_becomes_transactions() {
        let har = br#"{"log":{"version":"1.2","creator":{"name":"Firefox","version":"120"},"entries":[
          {"startedDateTime":"2024-01-02T03:04:05.678Z","time":12.5,
           "request":{"method":"POST","url":"https://api.test/v1/login?x=1","httpVersion":"HTTP/2",
             "headers":[{"name":":authority","value":"api.test"},{"name":"Content-Type","value":"application/json"}],
             "queryString":[],"postData":{"mimeType":"application/json","text":"{\"u\":\"a\"}"},"headersSize":-1,"bodySize":9},
           "response":{"status":401,"statusText":"Unauthorized","httpVersion":"HTTP/2","headers":[],
             "content":{"size":2,"mimeType":"application/json","text":"e30=","encoding":"base64"},"redirectURL":"","headersSize":-1,"bodySize":2},
           "cache":{},"timings":{"send":0,"wait":12,"receive":0.5}}]}}"#;
        let txs = parse(har, 1 << 20).unwrap();
        assert_eq!(txs.len(), 1);
        let t = &txs[0];
        assert_eq!(t.method, "POST");
        assert_eq!(t.host.as_deref(), Some("api.test"));
        assert_eq!(t.uri, "/v1/login?x=1");
        assert_eq!(t.status, Some(401));
        assert_eq!(t.request_body.data, br#"{"u":"a"}"#);
        assert_eq!(t.response_body.data, b"{}");
        assert_eq!(t.request_headers.len(), 1, "pseudo-headers are dropped");
        assert_eq!(
            t.response_ts_nanos.unwrap() - t.request_ts_nanos,
            12_500_000
        );
    }

    fn entry(i: usize) -> String {
        format!(
            r#"{{"startedDateTime":"2024-01-02T03:04:05Z","request":{{"method":"GET","url":"http://a.test/p/{i}"}},"response":{{"status":200}}}}"#
        )
    }

    fn document(entries: &[String], before: &str) -> Vec<u8> {
        format!(
            r#"{{"log":{{{before}"entries":[{}],"pages":[{{"id":"x"}}]}},"extra":1}}"#,
            entries.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn entries_are_handed_over_one_at_a_time_and_a_stop_stops_the_read() {
        let doc = document(
            &(0..100).map(entry).collect::<Vec<_>>(),
            r#""creator":{"name":"x","version":"1"},"#,
        );
        let mut seen = Vec::new();
        let n = stream(&doc, 64, &mut |t| {
            seen.push(t.uri);
            if seen.len() == 10 {
                Flow::Stop
            } else {
                Flow::Go
            }
        });
        assert_eq!(n.ok(), Some(10));
        assert_eq!(seen.last().map(String::as_str), Some("/p/9"));
        assert_eq!(parse(&doc, 64).map(|t| t.len()).ok(), Some(100));
    }

    #[test]
    fn a_bad_entry_is_named_and_a_document_without_entries_is_refused() {
        let bad = r#"{"startedDateTime":"yesterday","request":{"method":"GET","url":"/"},"response":{"status":200}}"#;
        let doc = document(&[entry(0), entry(1), bad.to_owned()], "");
        let e = parse(&doc, 64)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("HAR entry 2:") && e.contains("yesterday"),
            "{e}"
        );
        for (doc, says) in [
            (
                &br#"{"log":{"version":"1.2"}}"#[..],
                "missing field `entries`",
            ),
            (br#"{"other":{}}"#, "missing field `log`"),
            (br#"{"log":{"entries":[]}} trailing"#, "trailing characters"),
            (br#"{"log":{"entries":{}}}"#, "entries"),
        ] {
            let e = parse(doc, 64)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_written_har_reads_back_the_same() {
        let txs =
            parse(&document(&(0..5).map(entry).collect::<Vec<_>>(), ""), 64).unwrap_or_default();
        let mut out = Vec::new();
        write(&txs, &mut out).unwrap_or_else(|e| panic!("{e}"));
        let back = parse(&out, 64).unwrap_or_default();
        assert_eq!(back.len(), 5);
        assert!(
            txs.iter()
                .zip(&back)
                .all(|(a, b)| a.uri == b.uri && a.status == b.status)
        );
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let err = parse(b"{\n  \"log\": [", 10).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
