//! The transaction record: one HTTP request/response exchange as Tapline stores and ships it.
//!
//! A record is what every later stage consumes (store, discovery, detectors, exports), so it is
//! plain data: owned, serialisable, versioned on the wire ([`RECORD_VERSION`]). Bodies are kept
//! after de-chunking and decompression, capped; [`Body::len`] always holds the full length.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Version of the record layout. Bumped on any change to the serialised form.
pub const RECORD_VERSION: u16 = 1;

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
    pub sensor_id: Option<String>,
    /// Request method as sent (`GET`, `POST`, ...). Empty for a response without a request.
    pub method: String,
    /// The `Host` header, or the authority of an absolute-form target.
    pub host: Option<String>,
    /// The request target exactly as sent (origin, absolute, authority or asterisk form).
    pub uri: String,
    /// The path part of the target (no query), percent-encoding preserved.
    pub path: String,
    /// The query string without the leading `?`, if any.
    pub query: Option<String>,
    /// HTTP version of the request.
    pub version: HttpVersion,
    /// Response status code, `None` when no response was seen.
    pub status: Option<u16>,
    /// Response reason phrase.
    pub reason: Option<String>,
    /// Request headers in wire order (obs-fold joined, values decoded lossily as UTF-8).
    pub request_headers: Vec<Header>,
    /// Response headers in wire order.
    pub response_headers: Vec<Header>,
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
        find_header(&self.request_headers, name)
    }

    /// The first response header with this name (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        find_header(&self.response_headers, name)
    }

    /// The request's `Content-Type`.
    pub fn request_content_type(&self) -> Option<&str> {
        self.request_header("content-type")
    }

    /// The response's `Content-Type`.
    pub fn response_content_type(&self) -> Option<&str> {
        self.response_header("content-type")
    }
}

fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// One header field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Field name as sent (case preserved).
    pub name: String,
    /// Field value, surrounding whitespace trimmed.
    pub value: String,
}

impl Header {
    /// A header from name and value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
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
            request_headers: vec![Header::new("Content-Type", "application/json")],
            ..Transaction::default()
        };
        assert_eq!(tx.request_content_type(), Some("application/json"));
        assert_eq!(tx.response_content_type(), None);
    }
}
