//! What a value looks like: the shapes discovery tells apart in path segments, parameters and
//! JSON strings. Pure functions over `&str`, no allocation.

/// The type of a scalar value as OpenAPI would write it: `(type, format)`.
pub fn value_type(v: &str) -> (&'static str, Option<&'static str>) {
    if v.is_empty() {
        return ("string", None);
    }
    if is_integer(v) {
        return ("integer", None);
    }
    if is_number(v) {
        return ("number", None);
    }
    if v == "true" || v == "false" {
        return ("boolean", None);
    }
    ("string", string_format(v))
}

/// The OpenAPI `format` of a string, when it has one.
pub fn string_format(v: &str) -> Option<&'static str> {
    if is_uuid(v) {
        Some("uuid")
    } else if is_date_time(v) {
        Some("date-time")
    } else if is_date(v) {
        Some("date")
    } else if is_email(v) {
        Some("email")
    } else if is_ipv4(v) {
        Some("ipv4")
    } else if v.contains(':') && v.parse::<std::net::Ipv6Addr>().is_ok() {
        Some("ipv6")
    } else if v.starts_with("http://") || v.starts_with("https://") {
        Some("uri")
    } else {
        None
    }
}

/// Decimal digits only, optionally signed, not absurdly long.
pub fn is_integer(v: &str) -> bool {
    let d = v.strip_prefix('-').unwrap_or(v);
    !d.is_empty() && d.len() <= 19 && d.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(v: &str) -> bool {
    let d = v.strip_prefix('-').unwrap_or(v);
    let mut parts = d.splitn(2, '.');
    let (Some(i), Some(f)) = (parts.next(), parts.next()) else {
        return false;
    };
    !i.is_empty()
        && !f.is_empty()
        && i.bytes().all(|b| b.is_ascii_digit())
        && f.bytes().all(|b| b.is_ascii_digit())
}

/// 8-4-4-4-12 hex digits.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `YYYY-MM-DD` with a plausible month and day.
pub fn is_date(s: &str) -> bool {
    date_bytes(s.as_bytes())
}

fn date_bytes(b: &[u8]) -> bool {
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && (1..=12).contains(&((b[5] - b'0') * 10 + (b[6] - b'0')))
        && (1..=31).contains(&((b[8] - b'0') * 10 + (b[9] - b'0')))
}

/// RFC 3339: a date, `T` (or space), `HH:MM`, then anything (seconds, fraction, zone).
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 16
        && date_bytes(&b[..10])
        && (b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        && b[11].is_ascii_digit()
        && b[12].is_ascii_digit()
        && b[13] == b':'
        && b[14].is_ascii_digit()
        && b[15].is_ascii_digit()
}

/// `local@domain.tld`, conservatively.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Why a path segment is an identifier rather than a word of the API, if it is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// Decimal digits.
    Integer,
    /// A UUID.
    Uuid,
    /// A MongoDB ObjectId (24 hex digits).
    ObjectId,
    /// A hex digest or key (16+ hex digits with at least one digit).
    Hex,
    /// A date.
    Date,
    /// An e-mail address.
    Email,
    /// A JWT or an opaque base64/base64url token.
    Token,
    /// Letters and at least three digits (`SKU-00042`, `INV2024001`).
    Code,
}

/// Classifies a path segment that is an identifier on its own, without looking at its siblings.
pub fn identifier_kind(seg: &str) -> Option<IdKind> {
    let b = seg.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some(IdKind::Integer);
    }
    if is_uuid(seg) {
        return Some(IdKind::Uuid);
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if b.iter().all(u8::is_ascii_hexdigit) && digits > 0 {
        if b.len() == 24 {
            return Some(IdKind::ObjectId);
        }
        if b.len() >= 16 {
            return Some(IdKind::Hex);
        }
    }
    if is_date(seg) {
        return Some(IdKind::Date);
    }
    if is_email(seg) {
        return Some(IdKind::Email);
    }
    if is_token(seg) {
        return Some(IdKind::Token);
    }
    // Version segments (`v2`), `oauth2`, `html5` stay words: they have one or two digits.
    if digits >= 3
        && b.iter().any(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && !has_file_extension(seg)
    {
        return Some(IdKind::Code);
    }
    None
}

/// A JWT (three base64url parts, the first a JSON header) or a long random-looking
/// base64/base64url string: mixed case and digits, 20+ characters, no word separators.
fn is_token(s: &str) -> bool {
    if s.starts_with("eyJ") && s.bytes().filter(|&c| c == b'.').count() == 2 {
        return true;
    }
    let b = s.as_bytes();
    b.len() >= 20
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_=+".contains(c))
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
}

/// `report.pdf`, `app.js`: a name, a dot and a known file extension. Only known ones: a dot in
/// a user name or slug (`carol.jones`, `judy.w`) is no extension.
pub fn has_file_extension(seg: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "7z",
        "aac",
        "apk",
        "asp",
        "aspx",
        "avi",
        "avif",
        "bak",
        "bin",
        "bmp",
        "bz2",
        "cfm",
        "cgi",
        "conf",
        "css",
        "csv",
        "dat",
        "deb",
        "dll",
        "dmg",
        "doc",
        "docx",
        "eot",
        "epub",
        "exe",
        "flac",
        "gif",
        "gz",
        "htm",
        "html",
        "ico",
        "ics",
        "ini",
        "iso",
        "jar",
        "jpeg",
        "jpg",
        "js",
        "json",
        "jsp",
        "jsx",
        "key",
        "log",
        "m3u8",
        "map",
        "md",
        "mjs",
        "mov",
        "mp3",
        "mp4",
        "msi",
        "odt",
        "ogg",
        "otf",
        "pdf",
        "pem",
        "php",
        "pl",
        "png",
        "ppt",
        "pptx",
        "proto",
        "py",
        "rar",
        "rb",
        "rpm",
        "rss",
        "rtf",
        "sh",
        "sql",
        "svg",
        "swf",
        "tar",
        "tgz",
        "tif",
        "tiff",
        "toml",
        "ts",
        "tsx",
        "ttf",
        "txt",
        "wasm",
        "wav",
        "webm",
        "webmanifest",
        "webp",
        "woff",
        "woff2",
        "xhtml",
        "xls",
        "xlsx",
        "xml",
        "yaml",
        "yml",
        "zip",
    ];
    match seg.rsplit_once('.') {
        Some((name, ext)) => {
            !name.is_empty()
                && EXTENSIONS
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(ext))
        }
        None => false,
    }
}

/// A path segment as the value it carries: percent-decoded (`The%20Hobbit` → `The Hobbit`).
pub(crate) fn decoded(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    tapline_detect::fields::percent_decode_into(segment, false, &mut out);
    out
}

/// A version segment: `v1`, `v2`, `v1.2`, `2024-01-01` is not one.
pub fn is_version(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.len() >= 2
        && (b[0] == b'v' || b[0] == b'V')
        && b[1].is_ascii_digit()
        && b[1..].iter().all(|c| c.is_ascii_digit() || *c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        use IdKind::*;
        let cases = [
            ("123", Some(Integer)),
            ("0000002a-1b2c-4d5e-8f90-000000000126", Some(Uuid)),
            ("507f1f77bcf86cd799439011", Some(ObjectId)),
            ("d41d8cd98f00b204e9800998ecf8427e", Some(Hex)),
            ("2024-05-01", Some(Date)),
            ("alice@example.org", Some(Email)),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", Some(Token)),
            ("q3B7x9LmN2pR5tV8wY1zA4", Some(Token)),
            ("SKU-00042", Some(Code)),
            ("v1", None),
            ("oauth2", None),
            ("users", None),
            ("me", None),
            ("summary.pdf", None),
            ("garden-tools", None),
            ("deadbeef", None),
            ("report-2024.csv", None),
            ("2024-01-0\u{e9}T10:00", None),
        ];
        for (seg, want) in cases {
            assert_eq!(identifier_kind(seg), want, "{seg}");
        }
    }

    #[test]
    fn value_types() {
        assert_eq!(value_type("42"), ("integer", None));
        assert_eq!(value_type("-4.5"), ("number", None));
        assert_eq!(value_type("true"), ("boolean", None));
        assert_eq!(value_type("a@b.co"), ("string", Some("email")));
        assert_eq!(
            value_type("2024-05-01T10:00:00Z"),
            ("string", Some("date-time"))
        );
        assert_eq!(value_type("10.0.0.1"), ("string", Some("ipv4")));
        assert_eq!(value_type("::1"), ("string", Some("ipv6")));
        assert_eq!(value_type("https://x.test/"), ("string", Some("uri")));
        assert_eq!(value_type("hello"), ("string", None));
        assert!(is_version("v2") && is_version("v1.1") && !is_version("via"));
        assert!(has_file_extension("summary.csv") && !has_file_extension("1.5"));
        assert!(has_file_extension("Logo.PNG") && has_file_extension("app.min.js"));
        assert_eq!(decoded("The%20Hobbit"), "The Hobbit");
        assert!(!has_file_extension("carol.jones") && !has_file_extension("judy.w"));
    }
}
