//! Every value of a transaction with its location and field name: what the sensitive-data
//! scanner classifies and the attack detectors inspect.
//!
//! Locations are dotted paths: `request.header.authorization`, `request.cookie.session`,
//! `request.query.q`, `request.path[2]`, `request.form.password`,
//! `response.body.users[].email`, `response.body` (a text body). JSON bodies are walked with
//! serde's streaming deserializer (no `Value` tree); arrays collapse to `[]` so every element
//! of a list shares one location.

use crate::record::{Body, Headers, Transaction};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Headers that carry protocol metadata, never data: not scanned.
const STRUCTURAL_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "etag",
    "expires",
    "host",
    "keep-alive",
    "last-modified",
    "pragma",
    "server",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "content-language",
    "if-none-match",
    "if-modified-since",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "access-control-allow-origin",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
];

static STRUCTURAL: std::sync::LazyLock<
    std::collections::HashSet<&'static str, foldhash::fast::FixedState>,
> = std::sync::LazyLock::new(|| STRUCTURAL_HEADERS.iter().copied().collect());

/// Bytes of a body scanned at most (bodies are already capped by the decoder).
const MAX_SCAN: usize = 256 * 1024;
/// Deepest JSON nesting walked.
const MAX_DEPTH: usize = 64;
/// Longest location kept; deeper paths are cut here.
const MAX_LOCATION: usize = 200;

/// One value of a transaction.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// Where the value was.
    pub location: &'a str,
    /// The field name (header, parameter, cookie or JSON key), if any.
    pub key: Option<&'a str>,
    /// The decoded value.
    pub value: &'a str,
}

/// Which parts of a transaction to walk.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    /// The request's headers, path, query and body.
    pub request: bool,
    /// The response's headers and body.
    pub response: bool,
    /// Also headers that carry protocol metadata (`User-Agent`, `Host`, ...), which attacks
    /// use but data does not live in.
    pub structural_headers: bool,
    /// Each path segment on its own (`request.path[2]`).
    pub path_segments: bool,
}

impl Walk {
    /// Where data lives: both sides, no protocol metadata.
    pub const DATA: Walk = Walk {
        request: true,
        response: true,
        structural_headers: false,
        path_segments: true,
    };
    /// What a client controls: the request, every header (the path is the caller's, whole).
    pub const REQUEST: Walk = Walk {
        request: true,
        response: false,
        structural_headers: true,
        path_segments: false,
    };
}

/// Reusable buffers for walking many transactions on one thread.
#[derive(Default)]
pub struct Walker {
    location: String,
    decoded: String,
    key_buf: String,
    lower: String,
    structural: bool,
    segments: bool,
}

impl fmt::Debug for Walker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Walker")
    }
}

impl Walker {
    /// Calls `found` for every value of the parts of `tx` that `walk` names.
    pub fn walk(&mut self, tx: &Transaction, walk: Walk, found: &mut dyn FnMut(Field<'_>)) {
        self.structural = walk.structural_headers;
        self.segments = walk.path_segments;
        if walk.request {
            self.request(tx, found);
        }
        if walk.response {
            self.headers("response", &tx.response_headers, found);
            self.body(
                "response",
                tx.response_content_type(),
                &tx.response_body,
                found,
            );
        }
    }

    fn request(&mut self, tx: &Transaction, found: &mut dyn FnMut(Field<'_>)) {
        self.headers("request", &tx.request_headers, found);
        let path = tx.path();
        let segments = if self.segments { path } else { "" };
        for (i, seg) in segments.split('/').filter(|s| !s.is_empty()).enumerate() {
            self.location.clear();
            use fmt::Write as _;
            let _ = write!(self.location, "request.path[{i}]");
            percent_decode_into(seg, false, &mut self.decoded);
            let value = std::mem::take(&mut self.decoded);
            self.value(None, &value, found);
            self.decoded = value;
        }
        if let Some(q) = tx.query() {
            self.pairs("request.query", q, found);
        }
        self.body(
            "request",
            tx.request_content_type(),
            &tx.request_body,
            found,
        );
    }

    fn value(&mut self, key: Option<&str>, value: &str, found: &mut dyn FnMut(Field<'_>)) {
        found(Field {
            location: &self.location,
            key,
            value,
        });
    }

    fn headers(&mut self, side: &str, headers: &Headers, found: &mut dyn FnMut(Field<'_>)) {
        for (name, value) in headers.iter() {
            let mut lower = std::mem::take(&mut self.lower);
            lower.clear();
            lower.push_str(name);
            lower.make_ascii_lowercase();
            self.header(side, &lower, value, found);
            self.lower = lower;
        }
    }

    fn header(&mut self, side: &str, lower: &str, value: &str, found: &mut dyn FnMut(Field<'_>)) {
        if !self.structural && STRUCTURAL.contains(lower) {
            return;
        }
        if lower == "cookie" {
            for pair in value.split(';') {
                let (k, v) = pair.split_once('=').unwrap_or(("", pair));
                self.set_location(side, "cookie", k.trim());
                self.value(Some(k.trim()), v.trim(), found);
            }
        } else if lower == "set-cookie" {
            let first = value.split(';').next().unwrap_or("");
            let (k, v) = first.split_once('=').unwrap_or(("", first));
            self.set_location(side, "cookie", k.trim());
            self.value(Some(k.trim()), v.trim(), found);
        } else {
            self.set_location(side, "header", lower);
            self.value(Some(lower), value, found);
        }
    }

    fn set_location(&mut self, side: &str, part: &str, name: &str) {
        self.location.clear();
        self.location.push_str(side);
        self.location.push('.');
        self.location.push_str(part);
        self.location.push('.');
        self.location.push_str(name);
        self.location.truncate(MAX_LOCATION);
    }

    /// `a=1&b=2`: every pair, percent-decoded.
    fn pairs(&mut self, prefix: &str, text: &str, found: &mut dyn FnMut(Field<'_>)) {
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            percent_decode_into(k, true, &mut self.key_buf);
            percent_decode_into(v, true, &mut self.decoded);
            self.location.clear();
            self.location.push_str(prefix);
            self.location.push('.');
            self.location.push_str(&self.key_buf);
            self.location.truncate(MAX_LOCATION);
            let key = std::mem::take(&mut self.key_buf);
            let value = std::mem::take(&mut self.decoded);
            self.value(Some(&key), &value, found);
            self.key_buf = key;
            self.decoded = value;
        }
    }

    fn body(
        &mut self,
        side: &str,
        ct: Option<&str>,
        body: &Body,
        found: &mut dyn FnMut(Field<'_>),
    ) {
        if body.data.is_empty() {
            return;
        }
        let data = &body.data[..body.data.len().min(MAX_SCAN)];
        let ct = ct.unwrap_or("").to_ascii_lowercase();
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            // A cut inside a character at the cap: scan up to it.
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or("")
            }
            Err(_) => return, // binary
        };
        let trimmed = text.trim_start();
        if ct.contains("json")
            || (ct.is_empty() && (trimmed.starts_with('{') || trimmed.starts_with('[')))
        {
            self.location.clear();
            self.location.push_str(side);
            self.location.push_str(".body");
            let mut de = serde_json::Deserializer::from_str(text);
            let walked = JsonWalk {
                scanner: self,
                key: None,
                depth: 0,
                found,
            }
            .deserialize(&mut de);
            if walked.is_ok() {
                return;
            }
            // Not JSON after all (or cut by the body cap): scan it as text below. Hits the walk
            // already reported stand; the text pass may report them again under `body`.
        }
        if ct.contains("x-www-form-urlencoded") {
            let prefix = format!("{side}.form");
            self.pairs(&prefix, text, found);
            return;
        }
        if ct.is_empty()
            || ct.starts_with("text/")
            || ct.contains("xml")
            || ct.contains("json")
            || ct.contains("multipart")
            || ct.contains("javascript")
        {
            self.location.clear();
            self.location.push_str(side);
            self.location.push_str(".body");
            self.value(None, text, found);
        }
    }
}

/// Percent-decodes `s` into `out` (`+` is a space in forms and queries); invalid escapes stay
/// as they are, invalid UTF-8 is replaced.
pub fn percent_decode_into(s: &str, plus_is_space: bool, out: &mut String) {
    out.clear();
    if !s.contains(['%', '+']) {
        out.push_str(s);
        return;
    }
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        bytes.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        bytes.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                bytes.push(b' ');
                i += 1;
            }
            c => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
}

/// Walks one JSON value, reporting strings and long numbers.
struct JsonWalk<'s, 'f> {
    scanner: &'s mut Walker,
    key: Option<&'s str>,
    depth: usize,
    found: &'f mut dyn FnMut(Field<'_>),
}

impl<'de> DeserializeSeed<'de> for JsonWalk<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl JsonWalk<'_, '_> {
    fn leaf(self, v: &str) {
        let key = self.key;
        self.scanner.value(key, v, self.found);
    }
}

impl<'de> Visitor<'de> for JsonWalk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(v);
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        // Numbers of seven digits and more can be phones, cards, national ids.
        if v >= 1_000_000 {
            self.leaf(&v.to_string());
        }
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let mark = self.scanner.location.len();
        if mark + 2 <= MAX_LOCATION {
            self.scanner.location.push_str("[]");
        }
        let key_owned = self.key.map(str::to_owned);
        loop {
            let next = JsonWalk {
                scanner: self.scanner,
                key: key_owned.as_deref(),
                depth: self.depth + 1,
                found: self.found,
            };
            if seq.next_element_seed(next)?.is_none() {
                break;
            }
        }
        self.scanner.location.truncate(mark);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(());
        }
        let mark = self.scanner.location.len();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if mark + 1 + key.len() <= MAX_LOCATION {
                self.scanner.location.push('.');
                self.scanner.location.push_str(&key);
            }
            map.next_value_seed(JsonWalk {
                scanner: self.scanner,
                key: Some(&key),
                depth: self.depth + 1,
                found: self.found,
            })?;
            self.scanner.location.truncate(mark);
        }
        Ok(())
    }
}
