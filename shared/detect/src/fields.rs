//! Every value of a transaction with its location and field name: what the sensitive-data
//! scanner classifies and the attack detectors inspect.
//!
//! Locations are dotted paths: `request.header.authorization`, `request.cookie.session`,
//! `request.query.q`, `request.path[2]`, `request.form.password`,
//! `response.body.users[].email`, `response.body` (a text body). JSON bodies are walked with
//! serde's streaming deserializer (no `Value` tree); arrays collapse to `[]` so every element
//! of a list shares one location.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use tapline_record::{Body, Headers, Transaction};

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
    /// XML bodies also whole, as `SIDE.body`, besides their attributes and text: markup
    /// attacks (XSS sent as XML, XXE) are judged on the markup itself.
    pub markup_whole: bool,
}

impl Walk {
    /// Where data lives: both sides, no protocol metadata.
    pub const DATA: Walk = Walk {
        request: true,
        response: true,
        structural_headers: false,
        path_segments: true,
        markup_whole: false,
    };
    /// What a client controls: the request, every header (the path is the caller's, whole).
    pub const REQUEST: Walk = Walk {
        request: true,
        response: false,
        structural_headers: true,
        path_segments: false,
        markup_whole: true,
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
    markup_whole: bool,
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
        self.markup_whole = walk.markup_whole;
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
        cap_location(&mut self.location);
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
            cap_location(&mut self.location);
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
        // Forms, also when the client left the content type out (servers parse them anyway).
        if ct.contains("x-www-form-urlencoded") || (ct.is_empty() && looks_like_form(text)) {
            let prefix = format!("{side}.form");
            self.pairs(&prefix, text, found);
            return;
        }
        if ct.contains("xml") || (ct.is_empty() && trimmed.starts_with('<')) {
            self.xml(side, text, found);
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

/// Cuts a location to [`MAX_LOCATION`] bytes on a character boundary (names come from the
/// traffic and may be any text).
fn cap_location(location: &mut String) {
    if location.len() > MAX_LOCATION {
        let mut at = MAX_LOCATION;
        while !location.is_char_boundary(at) {
            at -= 1;
        }
        location.truncate(at);
    }
}

/// `a=1&b=x%20y`: every pair's name is a plain identifier and nothing is outside a pair.
fn looks_like_form(text: &str) -> bool {
    let text = text.trim_end_matches(['\r', '\n']);
    !text.is_empty()
        && text.split('&').all(|pair| {
            pair.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'%')
                    })
            })
        })
}

impl Walker {
    /// An XML document as values: the prolog when it declares anything (`<!DOCTYPE`, where
    /// external entities live) as `SIDE.body.doctype`, each attribute as
    /// `SIDE.body.ELEMENT@NAME` and each text node as `SIDE.body.ELEMENT` — a payload in one
    /// attribute is then judged alone, not inside the markup around it. Entities and CDATA
    /// stay as written; the detectors' normalisation decodes entities.
    fn xml(&mut self, side: &str, text: &str, found: &mut dyn FnMut(Field<'_>)) {
        let mut element = String::new();
        // The prolog: everything before the first element.
        let mut prolog_end = 0;
        while let Some(at) = text[prolog_end..].find('<') {
            let tag = &text[prolog_end + at..];
            if tag.starts_with("<?") || tag.starts_with("<!") {
                // Declarations may nest brackets (`<!DOCTYPE x [ <!ENTITY …> ]>`).
                let close = if tag.starts_with("<!DOCTYPE") || tag.starts_with("<!doctype") {
                    tag.find("]>")
                        .map(|i| i + 2)
                        .or_else(|| tag.find('>').map(|i| i + 1))
                } else {
                    tag.find('>').map(|i| i + 1)
                };
                prolog_end += at + close.unwrap_or(tag.len());
            } else {
                break;
            }
        }
        if self.markup_whole {
            self.location.clear();
            self.location.push_str(side);
            self.location.push_str(".body");
            self.value(None, text, found);
        } else if text[..prolog_end].contains("<!") {
            self.location.clear();
            self.location.push_str(side);
            self.location.push_str(".body.doctype");
            self.value(None, &text[..prolog_end], found);
        }
        let mut rest = &text[prolog_end..];
        let mut tags = 0;
        while let Some(open) = rest.find('<') {
            tags += 1;
            if tags > 10_000 {
                break; // bounded work per body
            }
            let content = rest[..open].trim();
            if !content.is_empty() && !element.is_empty() {
                self.xml_value(side, &element, None, content, found);
            }
            rest = &rest[open + 1..];
            if let Some(cdata) = rest.strip_prefix("![CDATA[") {
                let end = cdata.find("]]>").unwrap_or(cdata.len());
                if !cdata[..end].trim().is_empty() {
                    self.xml_value(side, &element, None, &cdata[..end], found);
                }
                rest = &cdata[(end + 3).min(cdata.len())..];
                continue;
            }
            let end = rest.find('>').unwrap_or(rest.len());
            let tag = &rest[..end];
            rest = &rest[(end + 1).min(rest.len())..];
            if tag.starts_with(['/', '!', '?']) {
                continue; // closing tags, comments, processing instructions
            }
            let name_end = tag
                .find(|c: char| c.is_whitespace() || c == '/')
                .unwrap_or(tag.len());
            element.clear();
            element.push_str(&tag[..name_end]);
            let mut attrs = &tag[name_end..];
            while let Some(eq) = attrs.find('=') {
                let name = attrs[..eq].trim();
                let after = attrs[eq + 1..].trim_start();
                let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                    break;
                };
                let body = &after[1..];
                let close = body.find(quote).unwrap_or(body.len());
                self.xml_value(side, &element, Some(name), &body[..close], found);
                attrs = &body[(close + 1).min(body.len())..];
            }
        }
    }

    /// One XML value at `SIDE.body.ELEMENT` or `SIDE.body.ELEMENT@ATTRIBUTE`.
    fn xml_value(
        &mut self,
        side: &str,
        element: &str,
        attribute: Option<&str>,
        value: &str,
        found: &mut dyn FnMut(Field<'_>),
    ) {
        self.set_location(side, "body", element);
        if let Some(a) = attribute {
            self.location.push('@');
            self.location.push_str(a);
            cap_location(&mut self.location);
        }
        found(Field {
            location: &self.location,
            key: Some(attribute.unwrap_or(element)),
            value,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(ct: Option<&str>, body: &str) -> Vec<(String, Option<String>, String)> {
        walk_with(ct, body, Walk::DATA)
    }

    fn walk_with(ct: Option<&str>, body: &str, how: Walk) -> Vec<(String, Option<String>, String)> {
        let mut tx = Transaction {
            method: "POST".into(),
            uri: "/x".into(),
            ..Transaction::default()
        };
        if let Some(ct) = ct {
            tx.request_headers.push("Content-Type", ct);
        }
        tx.request_body.data = body.as_bytes().to_vec();
        let mut out = Vec::new();
        Walker::default().walk(&tx, how, &mut |f| {
            if f.location.starts_with("request.body") || f.location.starts_with("request.form") {
                out.push((
                    f.location.to_owned(),
                    f.key.map(str::to_owned),
                    f.value.to_owned(),
                ));
            }
        });
        out
    }

    #[test]
    fn xml_bodies_are_walked_into_attributes_and_text() {
        let got = walk(
            Some("application/xml"),
            r#"<?xml version="1.0"?><root><a probe="1 OR 1=1" b='x'>hello &amp; bye</a><c><![CDATA[<b>]]></c></root>"#,
        );
        let want = [
            ("request.body.a@probe", "probe", "1 OR 1=1"),
            ("request.body.a@b", "b", "x"),
            ("request.body.a", "a", "hello &amp; bye"),
            ("request.body.c", "c", "<b>"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((loc, key, value), (l, k, v)) in got.iter().zip(want) {
            assert_eq!(
                (loc.as_str(), key.as_deref(), value.as_str()),
                (l, Some(k), v)
            );
        }
    }

    #[test]
    fn an_xml_doctype_is_one_value_for_the_xxe_detector() {
        let body = r#"<?xml version="1.0"?><!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]><foo>&xxe;</foo>"#;
        let got = walk(None, body);
        assert_eq!(got[0].0, "request.body.doctype");
        assert!(got[0].2.contains("<!ENTITY xxe SYSTEM"), "{got:?}");
        assert_eq!(
            got[1],
            (
                "request.body.foo".into(),
                Some("foo".into()),
                "&xxe;".into()
            )
        );
    }

    #[test]
    fn attack_walks_also_see_markup_whole() {
        let body = "<a><script>alert(1)</script></a>";
        let got = walk_with(Some("text/xml"), body, Walk::REQUEST);
        assert_eq!(got[0], ("request.body".into(), None, body.into()));
        assert!(got.len() > 1);
    }

    #[test]
    fn untyped_bodies_that_look_like_forms_are_forms() {
        let got = walk(None, "var=1234%20OR%201=1&b=2");
        assert_eq!(
            got[0],
            (
                "request.form.var".into(),
                Some("var".into()),
                "1234 OR 1=1".into()
            )
        );
        // Prose with an equals sign is not a form.
        let got = walk(None, "if a = b then");
        assert_eq!(got, [("request.body".into(), None, "if a = b then".into())]);
    }

    #[test]
    fn long_names_are_cut_on_character_boundaries() {
        // Found by the `walk` fuzz target: a 200-byte cut inside a multi-byte character.
        let name = format!("{}é", "a".repeat(186));
        let got = walk(None, &format!("<{name}>x</{name}><r {name}='y'/>"));
        assert_eq!(got.len(), 2);
        assert!(
            got.iter().all(|(l, _, _)| l.len() <= MAX_LOCATION),
            "{got:?}"
        );
    }

    #[test]
    fn broken_xml_ends_without_panicking() {
        for body in [
            "<",
            "<a",
            "<a b=",
            "<a b='x",
            "<![CDATA[",
            "<?xml",
            "<!DOCTYPE [",
            "<a>é<b é='é'>",
        ] {
            walk(Some("text/xml"), body);
        }
    }
}
