//! Parsing of a message head (start line and header fields) that is complete in memory.
//!
//! Tolerant like the servers attackers target: bare LF line endings, obsolete line folding,
//! whitespace before the colon and lines without a colon are accepted and flagged, so what a
//! lenient server would act on is what Tapline records.

use std::borrow::Cow;
use tapline_record::{Anomalies, Headers, HttpVersion, method_token, reason_phrase};

/// A parsed request line and headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method token.
    pub method: Cow<'static, str>,
    /// Request target as sent.
    pub target: String,
    /// Protocol version.
    pub version: HttpVersion,
    /// Header fields in order.
    pub headers: Headers,
    /// What was not clean.
    pub anomalies: Anomalies,
}

/// A parsed status line and headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: Cow<'static, str>,
    /// Protocol version.
    pub version: HttpVersion,
    /// Header fields in order.
    pub headers: Headers,
    /// What was not clean.
    pub anomalies: Anomalies,
}

/// Finds the end of a message head: the index just past the empty line, accepting CRLF or LF.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    // One SIMD scan over the buffer rather than a call per line.
    for nl in memchr::memchr_iter(b'\n', buf) {
        let prev_cr = nl > 0 && buf[nl - 1] == b'\r';
        // Browsers also end a head at a line of only spaces/tabs (bare LF), or of only CRs
        // after a bare-LF line; an evasion can use either, so we must read them the same way.
        // Whitespace followed by CRLF stays an (empty) obs-fold continuation.
        let mut j = nl + 1;
        let mut ws = 0;
        while let Some(b' ' | b'\t') = buf.get(j) {
            ws += 1;
            j += 1;
        }
        let mut cr = 0;
        while let Some(b'\r') = buf.get(j) {
            cr += 1;
            j += 1;
        }
        match buf.get(j) {
            None => return None,
            Some(b'\n') => {
                let end = match (ws, cr) {
                    (0, 0 | 1) => true,
                    (0, _) => !prev_cr,
                    (_, 0) => true,
                    _ => false,
                };
                if end {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Like [`find_head_end`] for requests, but an HTTP/0.9 request (`GET /path` and no version)
/// ends with its first line.
pub fn find_request_head_end(buf: &[u8]) -> Option<usize> {
    let nl = memchr::memchr(b'\n', buf)?;
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    if memchr::memmem::find(line, b" HTTP/").is_none() && looks_like_request_line(line) {
        // Header lines may still follow a version-less request line (lenient clients): then
        // the head ends at the empty line as usual.
        let next = &buf[nl + 1..];
        let header_follows = memchr::memchr(b':', &next[..next.len().min(64)])
            .is_some_and(|c| c > 0 && next[..c].iter().all(|&b| is_tchar(b)));
        if !header_follows {
            return Some(nl + 1);
        }
    }
    find_head_end(buf)
}

/// The lines of a head, without line endings. A line ends at LF or CRLF (any number of CRs
/// before the LF). A lone CR does not end a line — browsers keep it inside (http-evader
/// `cr-chunked`, status lines with a CR after the version) — but it is flagged, as is bare LF
/// (both in `bare_lf`). Blank lines that terminate the head are not yielded.
struct Lines<'a> {
    rest: &'a [u8],
    bare_lf: bool,
}

impl<'a> Lines<'a> {
    fn new(head: &'a [u8]) -> Self {
        // Drop the terminating blank line(s), remembering whether the last real line ended
        // with a bare LF.
        let end = head
            .iter()
            .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(0, |i| i + 1);
        let mut bare_lf = false;
        if let Some(nl) = memchr::memchr2(b'\r', b'\n', &head[end..]) {
            bare_lf = head[end + nl] == b'\n';
        }
        Lines {
            rest: &head[..end],
            bare_lf,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let buf = self.rest;
        let (mut line, rest, had_nl) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], &buf[i + 1..], true),
            None => (buf, &buf[buf.len()..], false),
        };
        self.rest = rest;
        match line.last() {
            Some(b'\r') => {
                while let [head @ .., b'\r'] = line {
                    line = head;
                }
            }
            Some(_) if had_nl => self.bare_lf = true,
            _ => {}
        }
        if memchr::memchr(b'\r', line).is_some() {
            self.bare_lf = true;
        }
        Some(line)
    }
}

/// RFC 9110 token characters, as a table: header names are checked byte by byte.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// True when `token` is a plausible method: 1..=24 token characters.
pub fn is_method_token(token: &[u8]) -> bool {
    !token.is_empty() && token.len() <= 24 && token.iter().all(|&b| is_tchar(b))
}

fn parse_version(v: &[u8]) -> Option<HttpVersion> {
    if v.len() < 5 || !v[..5].eq_ignore_ascii_case(b"HTTP/") {
        return None;
    }
    let canonical = v.starts_with(b"HTTP/");
    match &v[5..] {
        // Only the exact spelling is HTTP/1.0 to a browser; anything else reads as 1.1.
        b"1.0" if canonical => Some(HttpVersion::Http10),
        b"0.9" if canonical => Some(HttpVersion::Http09),
        [d, ..] if d.is_ascii_digit() => Some(HttpVersion::Http11),
        _ => None,
    }
}

/// Bytes as text. Invalid UTF-8 is kept visible as `\xNN` escapes (as Zeek logs it) rather
/// than replaced, so no byte of a URI or header is silently lost.
pub fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(chunk.valid());
                for byte in chunk.invalid() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            }
            out
        }
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if *first == b' ' || *first == b'\t' {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if *last == b' ' || *last == b'\t' || *last == b'\r' {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// A piece of the head as text: borrowed from the head when the head is valid UTF-8 (checked
/// once), escaped otherwise.
fn piece<'a>(head: &'a [u8], utf8: Option<&'a str>, part: &'a [u8]) -> Cow<'a, str> {
    let at = offset_in(head, part);
    match utf8.and_then(|s| s.get(at..at + part.len())) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(text(part)),
    }
}

/// Reads the header lines into one compact [`Headers`], field by field (the general path;
/// clean heads take [`parse_request_fast`] / [`parse_response_fast`]).
fn parse_headers<'a>(
    lines: &mut Lines<'a>,
    first: Option<&'a [u8]>,
    head: &[u8],
    anomalies: &mut Anomalies,
) -> Headers {
    // Logical lines: a line that starts with whitespace continues the one before (obs-fold),
    // unless it reads as a field of its own (" Transfer-Encoding: chunked"), which lenient
    // clients take as a new field. Folding may also continue a name ("Transfer-Encoding" /
    // " :chunked"), which is why fields are split only after joining.
    let mut logical: Vec<Cow<'_, [u8]>> = Vec::with_capacity(16);
    for line in first.into_iter().chain(lines) {
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let t = trim(line);
            if looks_like_field(t) || logical.is_empty() {
                // Kept with its leading whitespace: an ambiguous field, which framing honours
                // only when no plain field decides (see `conn::length_framing`).
                anomalies.insert(Anomalies::BAD_HEADER);
                logical.push(Cow::Borrowed(line));
                continue;
            }
            anomalies.insert(Anomalies::OBS_FOLD);
            if let Some(prev) = logical.last_mut()
                && !t.is_empty()
            {
                let joined = prev.to_mut();
                if !trim(joined).is_empty() && !joined.ends_with(b":") {
                    joined.push(b' ');
                }
                joined.extend_from_slice(t);
            }
            continue;
        }
        logical.push(Cow::Borrowed(line));
    }
    let mut headers = Headers::with_capacity(logical.len(), head.len());
    for line in &logical {
        let Some(colon) = memchr::memchr(b':', line) else {
            anomalies.insert(Anomalies::BAD_HEADER);
            continue;
        };
        let name = field_name(&line[..colon]);
        if name.len() != colon || !name.iter().all(|&b| is_tchar(b)) {
            anomalies.insert(Anomalies::BAD_HEADER);
        }
        let value = trim(&line[colon + 1..]);
        if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
            anomalies.insert(Anomalies::BAD_HEADER);
        }
        let (name, value) = match (std::str::from_utf8(&name), std::str::from_utf8(value)) {
            (Ok(n), Ok(v)) => (Cow::Borrowed(n), Cow::Borrowed(v)),
            _ => (Cow::Owned(text(&name)), Cow::Owned(text(value))),
        };
        headers.push(&name, &value);
    }
    headers
}

/// True when a (trimmed) line reads `token:` — a field, not a continuation.
fn looks_like_field(t: &[u8]) -> bool {
    match memchr::memchr(b':', t) {
        Some(c) => c > 0 && trim(&t[..c]).iter().all(|&b| is_tchar(b)) && is_tchar(t[0]),
        None => false,
    }
}

/// A field name as lenient clients read it: whitespace and control bytes before the colon are
/// dropped (`Transfer-Encoding\x0b:`), NUL bytes inside it vanish (`Transfer\0-Encoding`).
/// Anything before the name stays, so the name matches nothing plain (a leading CR hides a
/// field from browsers; a leading space marks it ambiguous).
fn field_name(raw: &[u8]) -> Cow<'_, [u8]> {
    let end = raw.iter().rposition(|&b| b > b' ').map_or(0, |i| i + 1);
    let name = &raw[..end];
    if name.contains(&0) {
        Cow::Owned(name.iter().copied().filter(|&b| b != 0).collect())
    } else {
        Cow::Borrowed(name)
    }
}

/// Offset of `part` inside `whole` (`part` must be a sub-slice of it).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

/// Parses a complete request head (everything up to and including the empty line).
/// Returns `None` when the first line is not a request line.
pub fn parse_request_head(head: &[u8]) -> Option<RequestHead> {
    let mut anomalies = Anomalies::NONE;
    let mut lines = Lines::new(head);
    let first = lines.next()?;
    let sp = memchr::memchr2(b' ', b'\t', first)?;
    let method = &first[..sp];
    if !is_method_token(method) {
        return None;
    }
    let rest = trim(&first[sp..]);
    // The version is the last word when it starts with HTTP/; whatever lies between is the
    // target (lenient servers accept spaces in it, so we keep them).
    let (target, version) = match memchr::memmem::rfind(rest, b"HTTP/") {
        Some(at) if at == 0 || rest[at - 1] == b' ' || rest[at - 1] == b'\t' => {
            (trim(&rest[..at]), parse_version(trim(&rest[at..]))?)
        }
        _ => (rest, HttpVersion::Http09),
    };
    if target.is_empty() && version == HttpVersion::Http09 {
        return None;
    }
    if target.iter().any(|&b| b == b' ' || b == b'\t') {
        if version == HttpVersion::Http09 {
            return None;
        }
        anomalies.insert(Anomalies::BAD_HEADER);
    }
    if version != HttpVersion::Http09 && !canonical_start_line(first, true) {
        anomalies.insert(Anomalies::BAD_START_LINE);
    }
    let utf8 = std::str::from_utf8(head).ok();
    let headers = parse_headers(&mut lines, None, head, &mut anomalies);
    if lines.bare_lf {
        anomalies.insert(Anomalies::BARE_LF);
    }
    Some(RequestHead {
        method: method_token(&piece(head, utf8, method)),
        target: piece(head, utf8, target).into_owned(),
        version,
        headers,
        anomalies,
    })
}

/// Parses a complete response head. Returns `None` when the first line is not a status line.
pub fn parse_response_head(head: &[u8]) -> Option<ResponseHead> {
    let mut anomalies = Anomalies::NONE;
    let mut lines = Lines::new(head);
    let mut first = lines.next()?;
    let sp = first
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r'))
        .unwrap_or(first.len());
    let version = parse_version(&first[..sp])?;
    // A lone CR after the status code ends the status line and what follows is a field
    // ("HTTP/1.1 200\rTransfer-Encoding: chunked"); with no code, the rest of the line is
    // ignored. Both as browsers read it (http-evader 377, 382).
    let mut extra_line: Option<&[u8]> = None;
    if let Some(cr) = memchr::memchr(b'\r', first)
        && cr > sp
        && first[sp + 1..cr].iter().any(u8::is_ascii_digit)
    {
        let after = &first[cr..];
        let skip = after
            .iter()
            .position(|&b| b != b'\r')
            .unwrap_or(after.len());
        extra_line = Some(&after[skip..]);
        first = &first[..cr];
    }
    let rest = trim(&first[sp..]);
    let code_end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    // Browsers take any run of digits ("2", "0200", "2000"); RFC 9112 wants exactly three.
    // A status line with no code at all ("HTTP/1.1\r...") still opens a response to them.
    if code_end > 5 || (code_end == 0 && first.get(sp) != Some(&b'\r')) {
        return None;
    }
    if code_end != 3 {
        anomalies.insert(Anomalies::RESPONSE_PARSE_ERROR);
    }
    let status = if code_end == 0 {
        b"200"
    } else {
        &rest[..code_end]
    }
    .iter()
    .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    .min(u32::from(u16::MAX)) as u16;
    let rest = &rest[code_end..];
    if !canonical_start_line(first, false) {
        anomalies.insert(Anomalies::BAD_START_LINE);
    }
    let utf8 = std::str::from_utf8(head).ok();
    let headers = parse_headers(&mut lines, extra_line, head, &mut anomalies);
    if lines.bare_lf {
        anomalies.insert(Anomalies::BARE_LF);
    }
    Some(ResponseHead {
        status,
        reason: reason_phrase(&piece(head, utf8, trim(rest))),
        version,
        headers,
        anomalies,
    })
}

/// True when a start line has exactly the RFC 9112 shape: `METHOD SP target SP HTTP/1.x` or
/// `HTTP/1.x SP ddd [SP reason]`.
fn canonical_start_line(line: &[u8], request: bool) -> bool {
    let version_ok = |v: &[u8]| v == b"HTTP/1.1" || v == b"HTTP/1.0";
    if request {
        let mut parts = line.split(|&b| b == b' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v), None) => {
                is_method_token(m)
                    && !t.is_empty()
                    && t.iter().all(|&b| b > b' ' && b != 0x7f)
                    && version_ok(v)
            }
            _ => false,
        }
    } else {
        line.len() >= 12
            && version_ok(&line[..8])
            && line[8] == b' '
            && line[9..12].iter().all(u8::is_ascii_digit)
            && (line.len() == 12 || line[12] == b' ')
    }
}

/// Header fields the fast path parses in place; a head with more takes the general path.
const FAST_MAX_HEADERS: usize = 48;

/// Parses a clean request head at the start of `data` with httparse (SIMD scanning), returning
/// it and its length. `None` — incomplete, or anything the lenient parser would flag (bare LF,
/// obs-fold, odd spacing, non-UTF-8 bytes, HTTP/0.9) — sends the bytes to the general path,
/// which gives the same result as this for every head this accepts.
pub fn parse_request_fast(data: &[u8]) -> Option<(RequestHead, usize)> {
    let mut fields = [httparse::EMPTY_HEADER; FAST_MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let parsed = req.parse(data);
    let head = clean_head(data, parsed, req.headers)?;
    let len = head.len();
    let version = fast_version(req.version?);
    let method = req.method?;
    if !is_method_token(method.as_bytes()) {
        return None; // e.g. longer than a method we believe in: the lenient parser decides
    }
    let method = method_token(method);
    let target = req.path?.to_owned();
    let headers = fast_block(head, req.headers)?;
    Some((
        RequestHead {
            method,
            target,
            version,
            headers,
            anomalies: Anomalies::NONE,
        },
        len,
    ))
}

/// The response counterpart of [`parse_request_fast`].
pub fn parse_response_fast(data: &[u8]) -> Option<(ResponseHead, usize)> {
    let mut fields = [httparse::EMPTY_HEADER; FAST_MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let parsed = resp.parse(data);
    let head = clean_head(data, parsed, resp.headers)?;
    let len = head.len();
    let version = fast_version(resp.version?);
    let status = resp.code?;
    // The reason from the raw line ("HTTP/1.1 200 OK": byte 12 on), as the lenient parser
    // reads it, not as httparse normalises it.
    let line_end = memchr::memchr(b'\r', head)?;
    let reason = std::str::from_utf8(trim(head.get(12..line_end).unwrap_or_default())).ok()?;
    let headers = fast_block(head, resp.headers)?;
    Some((
        ResponseHead {
            status,
            reason: reason_phrase(reason),
            version,
            headers,
            anomalies: Anomalies::NONE,
        },
        len,
    ))
}

/// The head httparse found complete at the start of `data`, if the lenient parser would read
/// it the same way: no empty lines before it (httparse skips them; the lenient parser leaves
/// that to its caller) and CRLF line ends only.
fn clean_head<'d>(
    data: &'d [u8],
    parsed: httparse::Result<usize>,
    fields: &[httparse::Header<'_>],
) -> Option<&'d [u8]> {
    if matches!(data.first(), Some(b'\r' | b'\n')) {
        return None;
    }
    let httparse::Status::Complete(len) = parsed.ok()? else {
        return None;
    };
    let head = &data[..len];
    crlf_only(head, fields).then_some(head)
}

/// httparse's minor version (it accepts only HTTP/1.0 and HTTP/1.1).
fn fast_version(minor: u8) -> HttpVersion {
    if minor == 0 {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    }
}

/// True when every line of a head httparse accepted ends in CRLF (httparse also takes bare
/// LF, which the lenient parser flags). Checks the bytes between fields, not the whole head.
fn crlf_only(head: &[u8], fields: &[httparse::Header<'_>]) -> bool {
    let crlf_before = |at: usize| at >= 2 && &head[at - 2..at] == b"\r\n";
    if !head.ends_with(b"\r\n\r\n") {
        return false;
    }
    for f in fields {
        // The line before this field ended right before its name.
        if !crlf_before(offset_in(head, f.name.as_bytes())) {
            return false;
        }
    }
    // The last field's line (or, with no fields, the start line) ends in the tail's first
    // CRLF.
    true
}

/// The fields httparse found, as spans into one copy of the header block.
fn fast_block(head: &[u8], fields: &[httparse::Header<'_>]) -> Option<Headers> {
    let (Some(first), Some(last)) = (fields.first(), fields.last()) else {
        return Some(Headers::default());
    };
    let start = offset_in(head, first.name.as_bytes());
    let end = offset_in(head, last.value) + last.value.len();
    let block = std::str::from_utf8(head.get(start..end)?).ok()?;
    let mut spans = Vec::with_capacity(fields.len());
    for f in fields {
        let value = trim(f.value);
        let ns = offset_in(head, f.name.as_bytes()) - start;
        let vs = offset_in(head, value) - start;
        spans.push([
            ns as u32,
            (ns + f.name.len()) as u32,
            vs as u32,
            (vs + value.len()) as u32,
        ]);
    }
    Some(Headers::from_block(block.to_owned(), spans))
}

/// True when `line` (without line ending) looks like the start of a request:
/// `METHOD SP target [SP HTTP/x.y]`.
pub fn looks_like_request_line(line: &[u8]) -> bool {
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    if !is_method_token(&line[..sp]) {
        return false;
    }
    let rest = &line[sp + 1..];
    if rest.is_empty() || rest[0] == b' ' {
        return false;
    }
    match memchr::memmem::rfind(rest, b" HTTP/") {
        Some(at) => {
            let v = &rest[at + 1..];
            v.len() >= 8 && parse_version(trim(v)).is_some()
        }
        // HTTP/0.9: "GET /path" (lenient servers accept other methods too).
        None => {
            line[..sp].iter().all(u8::is_ascii_uppercase)
                && rest.starts_with(b"/")
                && !rest.contains(&b' ')
        }
    }
}

/// True when `line` looks like a status line: `HTTP/x.y SP ddd`.
pub fn looks_like_status_line(line: &[u8]) -> bool {
    line.len() >= 12
        && line[..5].eq_ignore_ascii_case(b"HTTP/")
        && line[5].is_ascii_digit()
        && line[8] == b' '
        && line[9..12].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_request() {
        let head = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y:  z \r\n\r\n";
        assert_eq!(find_head_end(head), Some(head.len()));
        let r = parse_request_head(head).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/a?b=1");
        assert_eq!(r.version, HttpVersion::Http11);
        assert_eq!(
            r.headers,
            [("Host", "x"), ("X-Y", "z")]
                .into_iter()
                .collect::<Headers>()
        );
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn test_bare_lf_and_obs_fold() {
        let head = b"POST / HTTP/1.0\nA: 1\n  2\n\n";
        assert_eq!(find_head_end(head), Some(head.len()));
        let r = parse_request_head(head).unwrap();
        assert_eq!(r.headers, [("A", "1 2")].into_iter().collect::<Headers>());
        assert!(r.anomalies.contains(Anomalies::BARE_LF));
        assert!(r.anomalies.contains(Anomalies::OBS_FOLD));
    }

    #[test]
    fn test_http09_request() {
        let r = parse_request_head(b"GET /index.html\r\n").unwrap();
        assert_eq!(r.version, HttpVersion::Http09);
        assert_eq!(r.target, "/index.html");
        assert!(looks_like_request_line(b"GET /index.html"));
    }

    #[test]
    fn test_parse_response() {
        let r =
            parse_response_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.reason, "Not Found");
        assert!(parse_response_head(b"HTTP/1.1 OK\r\n\r\n").is_none());
        let odd = parse_response_head(b"http/1.1 0200 ok\r\n\r\n").unwrap();
        assert_eq!(odd.status, 200);
        assert!(odd.anomalies.contains(Anomalies::RESPONSE_PARSE_ERROR));
        assert!(looks_like_status_line(b"HTTP/1.1 200 OK"));
        assert!(!looks_like_status_line(b"HTTP/1.1 2x0 OK"));
    }

    #[test]
    fn test_space_in_target() {
        let r = parse_request_head(b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(r.target, "/a b");
        assert!(r.anomalies.contains(Anomalies::BAD_HEADER));
    }

    #[test]
    fn test_fast_path_agrees_with_lenient_parser() {
        let heads: &[&[u8]] = &[
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y:  z \r\n\r\n",
            b"POST /api HTTP/1.0\r\nContent-Length: 3\r\nA:\r\n\r\n",
            b"GET http://h/p HTTP/1.1\r\n\r\n",
            // Found by the http_head fuzz target: httparse skips a leading empty line, and
            // takes methods of any length.
            b"\nGET /a?b=1 HTTP/1.1\r\nHos7t:ontent3\r\n\r\n",
            b"1vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvGErTHb /151 HTTP/1.1\r\nHo1st: g\r\n\r\n",
        ];
        for head in heads {
            if let Some((fast, len)) = parse_request_fast(head) {
                assert_eq!(Some(fast), parse_request_head(&head[..len]), "{head:?}");
            }
        }
        assert!(parse_request_fast(heads[0]).is_some());
        assert!(parse_request_fast(heads[3]).is_none());
        // The second found by the fuzz target: a tab in the reason phrase is allowed.
        for resp in [
            &b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\t(x)\r\nHost: g\r\n\r\n",
        ] {
            let (fast, len) = parse_response_fast(resp).unwrap();
            assert_eq!(Some(fast), parse_response_head(&resp[..len]));
        }
    }

    #[test]
    fn test_not_a_request() {
        assert!(parse_request_head(b"\x16\x03\x01\x02\x00\x01\r\n\r\n").is_none());
        assert!(!looks_like_request_line(b"SSH-2.0-OpenSSH_9.0"));
    }
}
