//! Small pure helpers the views share: how times, sizes, statuses and values read on screen,
//! masking of sensitive values, curl commands, hex dumps.

use eframe::egui::{Color32, RichText};
use tapline_store::endpoints::Severity;

/// `2026-11-23 10:04:05.123` (UTC).
pub fn time(ns: i64) -> String {
    let s = tapline_record::time::rfc3339_nanos(ns);
    // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ → date, time to milliseconds
    format!("{} {}", &s[..10], &s[11..23])
}

/// Parses what an analyst types as a time: RFC 3339, or `YYYY-MM-DD HH:MM[:SS[.fff]]` taken
/// as UTC, or a bare date.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut t = s.replacen(' ', "T", 1);
    if t.len() == 10 {
        t.push_str("T00:00:00");
    } else if t.len() == 16 {
        t.push_str(":00");
    }
    if !t.ends_with('Z') && !t.get(10..).unwrap_or("").contains(['+', '-']) {
        t.push('Z');
    }
    tapline_record::time::parse_rfc3339(&t)
}

/// `1.2 ms`, `350 µs`, `2.4 s`.
pub fn duration_ns(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `1.5 KB`, `12 MB` (powers of 1000: what people compare with file managers).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `3m 20s`, `45s`.
pub fn eta(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The colour of a status code (by class).
pub fn status_color(status: Option<u16>, dark: bool) -> Color32 {
    match (status, dark) {
        (Some(200..=299), true) => Color32::from_rgb(120, 200, 120),
        (Some(200..=299), false) => Color32::from_rgb(30, 120, 30),
        (Some(300..=399), true) => Color32::from_rgb(120, 170, 230),
        (Some(300..=399), false) => Color32::from_rgb(30, 80, 170),
        (Some(400..=499), true) => Color32::from_rgb(235, 180, 80),
        (Some(400..=499), false) => Color32::from_rgb(170, 100, 0),
        (Some(500..=599), true) => Color32::from_rgb(240, 100, 100),
        (Some(500..=599), false) => Color32::from_rgb(180, 20, 20),
        _ => Color32::GRAY,
    }
}

/// The colour of a severity.
pub fn severity_color(severity: Severity) -> Color32 {
    match severity {
        Severity::Critical => Color32::from_rgb(220, 40, 60),
        Severity::High => Color32::from_rgb(235, 110, 40),
        Severity::Medium => Color32::from_rgb(215, 170, 30),
        Severity::Low => Color32::from_rgb(80, 150, 220),
        Severity::Info => Color32::GRAY,
    }
}

/// A severity as a coloured badge.
pub fn severity_badge(severity: Severity) -> RichText {
    badge(severity.name(), severity)
}

/// `text` as a badge in the colour of `severity`.
pub fn badge(text: &str, severity: Severity) -> RichText {
    RichText::new(format!(" {text} "))
        .strong()
        .color(Color32::WHITE)
        .background_color(severity_color(severity))
}

/// Whether sensitive values are shown (Ctrl+M switches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masking {
    /// Shown masked (the default).
    Masked,
    /// Shown as they are.
    Revealed,
}

impl Masking {
    /// From the remembered setting.
    pub fn from_setting(mask_values: bool) -> Masking {
        if mask_values {
            Masking::Masked
        } else {
            Masking::Revealed
        }
    }
}

/// `text` with every occurrence of each of `secrets` masked (longest first, so a secret that
/// contains another is masked whole).
pub fn mask_all(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    let mut by_length: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in by_length {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), &mask(s, (0, s.len())));
        }
    }
    out
}

/// `value` with the `span` it holds masked: the first and last character of the span stay
/// readable (enough to tell two values apart), the rest becomes `•`.
pub fn mask(value: &str, span: (usize, usize)) -> String {
    let (start, end) = span;
    let (Some(before), Some(hit), Some(after)) =
        (value.get(..start), value.get(start..end), value.get(end..))
    else {
        // A span off character boundaries: mask everything rather than risk showing it.
        return "•".repeat(value.chars().count().min(32));
    };
    let chars: Vec<char> = hit.chars().collect();
    let masked: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let keep = chars.len() > 4 && (i == 0 || i + 1 == chars.len());
            if keep || matches!(c, '@' | '.' | '-' | ' ') {
                c
            } else {
                '•'
            }
        })
        .collect();
    format!("{before}{masked}{after}")
}

/// A body for reading: pretty JSON when it parses, text when it is UTF-8, else a hex dump.
pub fn body_text(data: &[u8], content_type: Option<&str>) -> (String, BodyKind) {
    if data.is_empty() {
        return (String::new(), BodyKind::Empty);
    }
    let looks_json = content_type.is_some_and(|c| c.contains("json"))
        || matches!(
            data.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
    if looks_json
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(pretty) = serde_json::to_string_pretty(&v)
    {
        return (pretty, BodyKind::Json);
    }
    match std::str::from_utf8(data) {
        Ok(s) if !s.contains('\0') => (s.to_owned(), BodyKind::Text),
        _ => (hex_dump(data, 64 * 1024), BodyKind::Binary),
    }
}

/// How a body was rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No bytes.
    Empty,
    /// Pretty-printed JSON.
    Json,
    /// UTF-8 text as is.
    Text,
    /// Hex dump.
    Binary,
}

/// Classic 16-bytes-a-line hex dump of at most `limit` bytes.
pub fn hex_dump(data: &[u8], limit: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (i, chunk) in data[..data.len().min(limit)].chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    if data.len() > limit {
        let _ = writeln!(out, "… {} more bytes", data.len() - limit);
    }
    out
}

/// The transaction's request as a `curl` command line (POSIX shell quoting). The scheme is
/// a guess: https for port 443, http otherwise.
pub fn curl(tx: &tapline_record::Transaction) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let host = tx
        .host
        .clone()
        .or_else(|| tx.server.map(|s| s.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let scheme = if tx.server.is_some_and(|s| s.port() == 443) {
        "https"
    } else {
        "http"
    };
    let url = if tx.uri.starts_with("http://") || tx.uri.starts_with("https://") {
        tx.uri.clone()
    } else {
        format!("{scheme}://{host}{}", tx.uri)
    };
    let mut out = format!("curl -X {} {}", tx.method, q(&url));
    for (name, value) in tx.request_headers.iter() {
        // curl sets these from the URL and the body.
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        out.push_str(&format!(" \\\n  -H {}", q(&format!("{name}: {value}"))));
    }
    if !tx.request_body.data.is_empty() {
        match std::str::from_utf8(&tx.request_body.data) {
            Ok(s) => out.push_str(&format!(" \\\n  --data-raw {}", q(s))),
            Err(_) => out.push_str(" \\\n  --data-binary @body.bin  # binary body: save it first"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_counts_and_sizes() {
        assert_eq!(time(1_700_000_000_123_456_789), "2023-11-14 22:13:20.123");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(duration_ns(1_500_000), "1.5 ms");
        assert_eq!(eta(std::time::Duration::from_secs(200)), "3m 20s");
    }

    #[test]
    fn parses_times_people_type() {
        let t = 1_700_000_000_000_000_000;
        assert_eq!(parse_time("2023-11-14 22:13:20"), Some(t));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(t));
        assert_eq!(parse_time("2023-11-14 22:13"), Some(t - 20_000_000_000));
        assert_eq!(parse_time("2023-11-14"), Some(t - 80_000_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            parse_time("é"),
            None,
            "short and non-ASCII input is refused, not a panic"
        );
        assert_eq!(parse_time("2023-11-1é 22:13"), None);
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn masks_the_span_and_keeps_the_rest() {
        let v = "mail bob@example.com now";
        let m = mask(v, (5, 20));
        assert_eq!(m, "mail b••@•••••••.••m now");
        assert!(!m.contains("bob"));
        assert_eq!(mask("1234", (0, 4)), "••••", "short values keep nothing");
        assert_eq!(
            mask("é", (0, 1)),
            "•",
            "a span inside a character masks all"
        );
    }

    #[test]
    fn bodies_render_as_json_text_or_hex() {
        let (s, k) = body_text(br#"{"a":1}"#, Some("application/json"));
        assert_eq!(k, BodyKind::Json);
        assert!(s.contains("\"a\": 1"));
        assert_eq!(body_text(b"hello", None).1, BodyKind::Text);
        let (h, k) = body_text(&[0, 1, 2, 0xff], None);
        assert_eq!(k, BodyKind::Binary);
        assert!(h.starts_with("00000000  00 01 02 ff"), "{h}");
        assert_eq!(body_text(b"", None).1, BodyKind::Empty);
    }

    #[test]
    fn curl_quotes_for_the_shell() {
        let mut tx = tapline_record::Transaction {
            method: "POST".into(),
            host: Some("api.example".into()),
            uri: "/login?next=/a'b".into(),
            ..Default::default()
        };
        tx.request_headers.push("Host", "api.example");
        tx.request_headers.push("Content-Type", "application/json");
        tx.request_body.data = br#"{"user":"o'neil"}"#.to_vec();
        let c = curl(&tx);
        assert!(
            c.starts_with(r"curl -X POST 'http://api.example/login?next=/a'\''b'"),
            "{c}"
        );
        assert!(c.contains("-H 'Content-Type: application/json'"));
        assert!(!c.contains("Host:"));
        assert!(c.contains(r#"--data-raw '{"user":"o'\''neil"}'"#), "{c}");
    }
}
