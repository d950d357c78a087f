//! `tapline-record`: the transaction record — one HTTP request/response exchange as Tapline
//! stores and ships it — and the sensor ⇄ hub wire format ([`wire`]). No Tapline dependency:
//! every other crate reads this one.
//!
//! A record is what every later stage consumes (store, discovery, detectors, exports), so it is
//! plain data: owned, serialisable, versioned on the wire ([`RECORD_VERSION`]). Bodies are kept
//! after de-chunking and decompression, capped; [`Body::len`] always holds the full length.

pub mod finding;
pub mod time;
pub mod wire;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Version of the record layout. Bumped on any change to the serialised form.
pub const RECORD_VERSION: u16 = 2;

/// One HTTP request/response exchange. The response may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Capture time of the first byte of the request, nanoseconds since the Unix epoch.
    pub request_ts_nanos: i64,
    /// Capture time of the first byte of the response, if a response was seen.
    pub response_ts_nanos: Option<i64>,
    /// The client's address (the side that sent the request).
    pub client: Option<SocketAddr>,
    /// The server's address.
    pub server: Option<SocketAddr>,
    /// The sensor that captured it; `None` for records decoded from a file on the workbench.
    /// Shared, not copied, between the records of one sensor.
    pub sensor_id: Option<Arc<str>>,
    /// Request method as sent (`GET`, `POST`, ...). Empty for a response without a request.
    /// The common methods are static strings: no allocation per record.
    pub method: Cow<'static, str>,
    /// The `Host` header, or the authority of an absolute-form target.
    pub host: Option<String>,
    /// The request target exactly as sent (origin, absolute, authority or asterisk form).
    /// [`Transaction::path`] and [`Transaction::query`] are views into it.
    pub uri: String,
    /// HTTP version of the request.
    pub version: HttpVersion,
    /// Response status code, `None` when no response was seen.
    pub status: Option<u16>,
    /// Response reason phrase (the common phrases are static strings).
    pub reason: Option<Cow<'static, str>>,
    /// Request headers in wire order (obs-fold joined, invalid UTF-8 escaped as `\xNN`).
    pub request_headers: Headers,
    /// Response headers in wire order.
    pub response_headers: Headers,
    /// Request body after de-chunking and decompression.
    pub request_body: Body,
    /// Response body after de-chunking and decompression.
    pub response_body: Body,
    /// What the decoder noticed that was not clean HTTP.
    pub anomalies: Anomalies,
    /// Which values a sensor policy redacted before the record left it.
    pub redactions: Vec<Redaction>,
}

impl Transaction {
    /// The first request header with this name (case-insensitive).
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name)
    }

    /// The first response header with this name (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.get(name)
    }

    /// The request's `Content-Type`.
    pub fn request_content_type(&self) -> Option<&str> {
        self.request_header("content-type")
    }

    /// The response's `Content-Type`.
    pub fn response_content_type(&self) -> Option<&str> {
        self.response_header("content-type")
    }

    /// The path part of the target: no query or fragment; an absolute-form target loses its
    /// scheme and authority. Percent-encoding is preserved.
    pub fn path(&self) -> &str {
        split_target(&self.uri).0
    }

    /// The query string without the leading `?`, if any.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.uri).1
    }
}

/// Splits a request target into path and query (see [`Transaction::path`]).
///
/// Every analysis asks for a transaction's path several times, so this walks the bytes once
/// instead of building substring searchers on each call.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let b = target.as_bytes();
    // Absolute form (`http://host/p?q`): letters, then `://`, then the authority.
    let scheme = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let path_part = if b[scheme..].starts_with(b"://") {
        let after = &target[scheme + 3..];
        match after.bytes().position(|c| c == b'/' || c == b'?') {
            Some(j) => &after[j..],
            None => "/",
        }
    } else {
        target
    };
    match path_part.bytes().position(|c| c == b'?' || c == b'#') {
        Some(i) if path_part.as_bytes()[i] == b'?' => {
            let query = &path_part[i + 1..];
            let end = query.bytes().position(|c| c == b'#').unwrap_or(query.len());
            (&path_part[..i], Some(&query[..end]))
        }
        Some(i) => (&path_part[..i], None),
        None => (path_part, None),
    }
}

/// Header fields in wire order, stored compactly: one string holds every name and value (for
/// a parsed head, the raw header block itself), so a head costs two allocations however many
/// fields it has, and parsing copies the block once instead of field by field.
#[derive(Clone, Default)]
pub struct Headers {
    text: String,
    /// Per field: name start and end, value start and end, as offsets into `text`.
    spans: Vec<[u32; 4]>,
    /// Bit `len % 64` is set for every field name length present: most lookups (is there a
    /// `Transfer-Encoding`?) are answered without a scan.
    name_lengths: u64,
}

impl Headers {
    /// An empty list with room for `fields` fields and `bytes` bytes of text.
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Headers {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
            name_lengths: 0,
        }
    }

    /// Headers over a block of text with field spans already found in it (the parser's fast
    /// path). A span outside `text` or off a character boundary reads as empty.
    pub fn from_block(text: String, spans: Vec<[u32; 4]>) -> Self {
        let name_lengths = spans.iter().fold(0u64, |m, &[ns, ne, _, _]| {
            m | 1 << (ne.wrapping_sub(ns) % 64)
        });
        Headers {
            text,
            spans,
            name_lengths,
        }
    }

    /// Appends a field. A field that would push the text past 4 GiB is dropped (heads are
    /// capped far below that).
    pub fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        let Ok(end) = u32::try_from(start + name.len() + value.len()) else {
            return;
        };
        self.text.push_str(name);
        self.text.push_str(value);
        self.name_lengths |= 1 << (name.len() % 64);
        // Both fit: `end` does.
        let (start, mid) = (start as u32, (start + name.len()) as u32);
        self.spans.push([start, mid, mid, end]);
    }

    /// Appends text to the last field's value (obs-fold continuation lines). Only valid while
    /// the last field's value ends the text, which holds for lists built with `push`.
    pub fn extend_last_value(&mut self, more: &str) {
        let Some(last) = self.spans.last_mut() else {
            return;
        };
        let Ok(end) = u32::try_from(self.text.len() + more.len()) else {
            return;
        };
        if last[3] as usize != self.text.len() {
            return;
        }
        self.text.push_str(more);
        last[3] = end;
    }

    /// The last field's value.
    pub fn last_value(&self) -> Option<&str> {
        self.spans.last().map(|&s| self.value_of(s))
    }

    fn name_of(&self, [ns, ne, _, _]: [u32; 4]) -> &str {
        self.text.get(ns as usize..ne as usize).unwrap_or("")
    }

    fn value_of(&self, [_, _, vs, ve]: [u32; 4]) -> &str {
        self.text.get(vs as usize..ve as usize).unwrap_or("")
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// `(name, value)` pairs in wire order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + ExactSizeIterator {
        self.spans
            .iter()
            .map(|&s| (self.name_of(s), self.value_of(s)))
    }

    /// The first value of the field `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of the field `name` (case-insensitive), in order.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let maybe = self.name_lengths & (1 << (name.len() % 64)) != 0;
        let fields = if maybe { &self.spans[..] } else { &[] };
        fields
            .iter()
            .map(|&s| (self.name_of(s), self.value_of(s)))
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Headers::default();
        for (n, v) in iter {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

impl Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = ser.serialize_seq(Some(self.len()))?;
        for (n, v) in self.iter() {
            seq.serialize_element(&[n, v])?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(de)?;
        Ok(pairs.into_iter().collect())
    }
}

/// The common method tokens as static strings; others are copied.
pub fn method_token(m: &str) -> Cow<'static, str> {
    const COMMON: &[&str] = &[
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    match COMMON.iter().find(|c| **c == m) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(m.to_owned()),
    }
}

/// The common reason phrases as static strings; others are copied.
pub fn reason_phrase(r: &str) -> Cow<'static, str> {
    const COMMON: &[&str] = &[
        "OK",
        "Created",
        "Accepted",
        "No Content",
        "Moved Permanently",
        "Found",
        "See Other",
        "Not Modified",
        "Bad Request",
        "Unauthorized",
        "Forbidden",
        "Not Found",
        "Method Not Allowed",
        "Conflict",
        "Unprocessable Entity",
        "Too Many Requests",
        "Internal Server Error",
        "Bad Gateway",
        "Service Unavailable",
        "Gateway Timeout",
        "",
    ];
    match COMMON.iter().find(|c| **c == r) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(r.to_owned()),
    }
}

/// A message body as decoded, possibly capped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The decoded bytes kept (at most the configured cap).
    pub data: Vec<u8>,
    /// Full decoded length, including what was not kept. Counts bytes lost in capture gaps.
    pub len: u64,
    /// True when `data` holds less than `len` bytes (cap, gap, or decompression limit).
    pub truncated: bool,
}

/// HTTP protocol version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/0.9: a bare `GET /path` with no headers and no status line.
    Http09,
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1 (and any other 1.x minor version).
    #[default]
    Http11,
}

impl HttpVersion {
    /// The version as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http09 => "HTTP/0.9",
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value a sensor replaced before the record left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// Where the value was (`request.header.authorization`, `response.body.users[].email`, ...).
    pub location: String,
    /// The data class that triggered the policy.
    pub class: String,
    /// What was done: `mask`, `hash` or `drop`.
    pub action: String,
}

macro_rules! anomalies {
    ($( $(#[$doc:meta])* $name:ident = $bit:expr, $label:literal; )*) => {
        impl Anomalies {
            $( $(#[$doc])* pub const $name: Anomalies = Anomalies(1 << $bit); )*

            /// Every flag with its stable name, in bit order.
            pub const ALL: &'static [(Anomalies, &'static str)] = &[ $( (Anomalies::$name, $label), )* ];
        }
    };
}

/// Decode anomalies as a set of flags. Serialised as a list of stable snake_case names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Anomalies(u32);

anomalies! {
    /// Bytes of the request or response were missing from the capture.
    GAP = 0, "gap";
    /// A request without a response (connection ended or capture stopped first).
    MISSING_RESPONSE = 1, "missing_response";
    /// A response without a request (capture started mid-exchange).
    MISSING_REQUEST = 2, "missing_request";
    /// The request could not be parsed as HTTP.
    REQUEST_PARSE_ERROR = 3, "request_parse_error";
    /// The response could not be parsed as HTTP.
    RESPONSE_PARSE_ERROR = 4, "response_parse_error";
    /// Both `Transfer-Encoding` and `Content-Length` (a request-smuggling sign).
    TE_AND_CL = 5, "te_and_cl";
    /// Several `Content-Length` values that disagree, or one that is not a number.
    BAD_CONTENT_LENGTH = 6, "bad_content_length";
    /// A `Transfer-Encoding` that is not exactly `chunked` last, or obfuscated.
    BAD_TRANSFER_ENCODING = 7, "bad_transfer_encoding";
    /// Malformed chunk framing.
    BAD_CHUNK = 8, "bad_chunk";
    /// The body could not be decompressed as its `Content-Encoding` says.
    DECOMPRESSION_ERROR = 9, "decompression_error";
    /// Decompression stopped at the size cap (possible decompression bomb).
    DECOMPRESSION_LIMIT = 10, "decompression_limit";
    /// Headers were longer than the header cap.
    HEADERS_TOO_LONG = 11, "headers_too_long";
    /// Bare LF line endings instead of CRLF.
    BARE_LF = 12, "bare_lf";
    /// Obsolete line folding in a header.
    OBS_FOLD = 13, "obs_fold";
    /// The message ended before its declared length (connection closed early).
    TRUNCATED_MESSAGE = 14, "truncated_message";
    /// The capture started in the middle of this connection.
    MIDSTREAM = 15, "midstream";
    /// Overlapping TCP segments carried different bytes (an evasion sign).
    OVERLAP_MISMATCH = 16, "overlap_mismatch";
    /// The connection switched protocols (CONNECT, Upgrade); parsing stopped there.
    PROTOCOL_SWITCH = 17, "protocol_switch";
    /// The flow was evicted from the flow table (memory cap) before it ended.
    FLOW_EVICTED = 18, "flow_evicted";
    /// A header line without a colon, or with whitespace before the colon.
    BAD_HEADER = 19, "bad_header";
    /// Several `Host` headers, or a Host that disagrees with an absolute-form target.
    AMBIGUOUS_HOST = 20, "ambiguous_host";
    /// Bytes after the message that do not start a new message.
    JUNK_DATA = 21, "junk_data";
    /// Packets were truncated by the capture's snap length.
    SNAPLEN_TRUNCATED = 22, "snaplen_truncated";
    /// A request or status line that is readable but not in the RFC 9112 form (extra or
    /// missing spaces, tabs, odd version spellings such as `HTTP/01.1`).
    BAD_START_LINE = 23, "bad_start_line";
    /// More requests awaited responses on the connection than the pipelining cap: the oldest
    /// was emitted without its response, which follows as a record of its own. Both carry
    /// this flag; every later response still pairs with its own request.
    PIPELINE_OVERFLOW = 24, "pipeline_overflow";
    /// A request sent after one that closes the connection (HTTP/1.0 without keep-alive,
    /// `Connection: close`): servers do not read it — a request smuggled past the close.
    REQUEST_AFTER_CLOSE = 25, "request_after_close";
}

impl Anomalies {
    /// No anomaly.
    pub const NONE: Anomalies = Anomalies(0);

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Flags from raw bits; unknown bits are kept so newer peers' flags survive a round trip.
    pub fn from_bits(bits: u32) -> Self {
        Anomalies(bits)
    }

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set.
    pub fn contains(self, other: Anomalies) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Anomalies) {
        self.0 |= other.0;
    }

    /// The names of the set flags, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Anomalies::ALL
            .iter()
            .filter(move |(flag, _)| self.0 & flag.0 != 0)
            .map(|(_, name)| *name)
    }

    /// The flag with this stable name.
    pub fn from_name(name: &str) -> Option<Anomalies> {
        Anomalies::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(flag, _)| *flag)
    }
}

impl std::ops::BitOr for Anomalies {
    type Output = Anomalies;
    fn bitor(self, rhs: Anomalies) -> Anomalies {
        Anomalies(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Anomalies {
    fn bitor_assign(&mut self, rhs: Anomalies) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Anomalies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Serialize for Anomalies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(self.names())
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Anomalies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let names = Vec::<String>::deserialize(d)?;
            let mut flags = Anomalies::NONE;
            for name in names {
                match Anomalies::from_name(&name) {
                    Some(flag) => flags |= flag,
                    None => {
                        return Err(serde::de::Error::custom(format!(
                            "unknown anomaly name {name:?}"
                        )));
                    }
                }
            }
            Ok(flags)
        } else {
            u32::deserialize(d).map(Anomalies)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reading of a target before it was made a single pass, kept as the oracle.
    fn split_target_by_searches(target: &str) -> (&str, Option<&str>) {
        let path_part = match target.find("://") {
            Some(i) if target[..i].bytes().all(|b| b.is_ascii_alphabetic()) => {
                let after = &target[i + 3..];
                match after.find(['/', '?']) {
                    Some(j) => &after[j..],
                    None => "/",
                }
            }
            _ => target,
        };
        let without_fragment = path_part.split('#').next().unwrap_or(path_part);
        match without_fragment.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (without_fragment, None),
        }
    }

    #[test]
    fn targets_split_as_the_substring_searches_did() {
        let alphabet = [
            "a", "/", "?", "#", ":", "//", "://", "h", "é", "=", "&", "1",
        ];
        // Every target of up to five pieces from the alphabet: 271,453 of them.
        let mut targets = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            frontier = frontier
                .iter()
                .flat_map(|t| alphabet.iter().map(move |p| format!("{t}{p}")))
                .collect();
            targets.extend(frontier.iter().cloned());
        }
        for t in &targets {
            assert_eq!(split_target(t), split_target_by_searches(t), "{t:?}");
        }
        assert_eq!(split_target("http://h:80/a?b=1#f"), ("/a", Some("b=1")));
    }

    #[test]
    fn anomaly_names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (flag, name) in Anomalies::ALL {
            assert!(seen.insert(*name), "duplicate anomaly name {name}");
            assert_eq!(Anomalies::from_name(name), Some(*flag));
        }
        let set = Anomalies::GAP | Anomalies::TE_AND_CL;
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["gap","te_and_cl"]"#);
        assert_eq!(serde_json::from_str::<Anomalies>(&json).unwrap(), set);
    }

    #[test]
    fn header_lookup_ignores_case() {
        let tx = Transaction {
            request_headers: [("Content-Type", "application/json")].into_iter().collect(),
            ..Transaction::default()
        };
        assert_eq!(tx.request_content_type(), Some("application/json"));
        assert_eq!(tx.response_content_type(), None);
    }
}
