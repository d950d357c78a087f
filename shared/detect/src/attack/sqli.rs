//! SQL injection: a SQL tokenizer and judgements over the token stream, in the spirit of
//! libinjection. The value is read three ways — as-is (a number or name context), and as if it
//! started inside a single- or double-quoted string — and each reading is judged on what the
//! tokens *do*: break out of a string then continue with logic, a comparison, `UNION SELECT`, a
//! stacked statement or a comment; call timing or file functions; name the catalog.

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    /// A string literal (or the rest of the string the value started in).
    Str,
    /// A number (decimal, hex, float).
    Num,
    /// `UNION`.
    Union,
    /// A statement keyword (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `DROP`, `EXEC`, ...).
    Stmt,
    /// Other SQL keyword (`FROM`, `WHERE`, `ORDER`, `HAVING`, `LIKE`, `NULL`, ...).
    Kw,
    /// `AND`, `OR`, `XOR`, `&&`, `||`, `NOT`.
    Logic,
    /// A comparison or arithmetic operator.
    Op,
    /// A function call name (a word followed by `(`).
    Func,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// `;`.
    Semi,
    /// A comment (`--`, `#`, `/* */`).
    Comment,
    /// `@var`, `@@version`.
    Var,
    /// Any other word.
    Word,
}

const STATEMENTS: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "exec", "execute", "declare", "create",
    "alter", "truncate", "shutdown", "grant", "revoke", "replace", "merge", "call", "waitfor",
    "load", "handler", "rename", "values",
];

const KEYWORDS: &[&str] = &[
    "from",
    "where",
    "order",
    "group",
    "by",
    "having",
    "limit",
    "offset",
    "into",
    "outfile",
    "dumpfile",
    "like",
    "rlike",
    "regexp",
    "between",
    "in",
    "is",
    "null",
    "exists",
    "case",
    "when",
    "then",
    "else",
    "end",
    "as",
    "all",
    "distinct",
    "top",
    "table",
    "procedure",
    "analyse",
    "delay",
    "sounds",
    "escape",
    "collate",
    "glob",
    "ilike",
    "notnull",
    "isnull",
    "similar",
    "binary",
    "unknown",
    "true",
    "false",
    "boolean",
    "mode",
    "set",
    "join",
    "on",
    "using",
    "div",
    "mod",
    "information_schema",
    "sysobjects",
    "syscolumns",
    "sys",
    "dual",
    "tables",
    "columns",
    "schema",
    "database",
    "asc",
    "desc",
    "returns",
    "language",
    "begin",
    "if",
    "elt",
    "rownum",
];

/// A set of words hashed with foldhash (SipHash showed up in profiles).
type WordSet = std::collections::HashSet<&'static str, foldhash::fast::FixedState>;

static STATEMENT_SET: std::sync::LazyLock<WordSet> =
    std::sync::LazyLock::new(|| STATEMENTS.iter().copied().collect::<WordSet>());
static KEYWORD_SET: std::sync::LazyLock<WordSet> =
    std::sync::LazyLock::new(|| KEYWORDS.iter().copied().collect::<WordSet>());

#[derive(Clone, Copy)]
struct Tok {
    t: T,
    /// Index of the word in `text` (for keyword identity).
    start: usize,
    end: usize,
}

/// Tokenizes `s`, which starts inside a string quoted by `quote` when `quote` is set.
fn tokenize(s: &str, quote: Option<u8>) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    if let Some(q) = quote {
        // The rest of the enclosing string, up to the quote that closes it.
        match memchr::memchr(q, b) {
            Some(end) => {
                out.push(Tok {
                    t: T::Str,
                    start: 0,
                    end,
                });
                i = end + 1;
            }
            None => return Vec::new(),
        }
    }
    while i < b.len() && out.len() < 64 {
        let c = b[i];
        let start = i;
        let t = match c {
            // `+` is a space in query strings (`1+union+select`).
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 | b'+' => {
                i += 1;
                continue;
            }
            b'\'' | b'"' | b'`' => {
                let q = c;
                let mut j = i + 1;
                while j < b.len() {
                    if b[j] == q {
                        if b.get(j + 1) == Some(&q) {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                i = (j + 1).min(b.len());
                if q == b'`' { T::Word } else { T::Str }
            }
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'b')) {
                    i += 2;
                    while i < b.len() && b[i].is_ascii_hexdigit() {
                        i += 1;
                    }
                } else {
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e') {
                        i += 1;
                    }
                }
                T::Num
            }
            // `--` and `#` run to the end of the line (MySQL reads on after a newline).
            b'-' | b'#' if c == b'#' || b.get(i + 1) == Some(&b'-') => {
                i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |e| i + e + 1);
                T::Comment
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // MySQL executes `/*!…*/`; its inside is code, so read on inside it.
                if b.get(i + 2) == Some(&b'!') {
                    i += 3;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                i = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |e| i + 2 + e + 2);
                T::Comment
            }
            b'*' if b.get(i + 1) == Some(&b'/') => {
                i += 2;
                continue;
            }
            b'(' => {
                i += 1;
                T::Open
            }
            b')' => {
                i += 1;
                T::Close
            }
            b',' => {
                i += 1;
                T::Comma
            }
            b';' => {
                i += 1;
                T::Semi
            }
            b'@' => {
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'@' | b'.' | b'$'))
                {
                    i += 1;
                }
                T::Var
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                i += 2;
                T::Logic
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                i += 2;
                T::Logic
            }
            b'=' | b'<' | b'>' | b'!' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' | b'-'
            | b':' => {
                i += 1;
                while i < b.len() && matches!(b[i], b'=' | b'<' | b'>' | b'!') {
                    i += 1;
                }
                T::Op
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || matches!(b[i], b'_' | b'$' | b'.')
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                let w = &s[start..i];
                let w = w.trim_end_matches('.');
                let next = b[i..].iter().find(|c| !c.is_ascii_whitespace()).copied();
                if matches!(w, "and" | "or" | "xor" | "not") {
                    T::Logic
                } else if w == "union" {
                    T::Union
                } else if STATEMENT_SET.contains(w) {
                    T::Stmt
                } else if next == Some(b'(') {
                    T::Func
                } else if KEYWORD_SET.contains(w) {
                    T::Kw
                } else {
                    T::Word
                }
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push(Tok { t, start, end: i });
    }
    out
}

fn word<'a>(s: &'a str, t: &Tok) -> &'a str {
    &s[t.start..t.end]
}

/// Judges one reading; returns a rule and a reason.
fn judge(s: &str, toks: &[Tok], quoted: bool) -> Option<(&'static str, String)> {
    let n = toks.len();
    let ty = |i: usize| toks.get(i).map(|t| t.t);
    // Telling functions and catalog names, in any reading.
    for t in toks {
        let w = word(s, t);
        if t.t == T::Func
            && matches!(
                w,
                "sleep"
                    | "benchmark"
                    | "pg_sleep"
                    | "load_file"
                    | "extractvalue"
                    | "updatexml"
                    | "xp_cmdshell"
                    | "randomblob"
                    | "dbms_pipe.receive_message"
                    | "utl_inaddr.get_host_address"
                    | "pg_read_file"
                    | "gtid_subset"
                    | "name_const"
            )
        {
            return Some(("sqli.function", format!("calls {w}()")));
        }
        if matches!(t.t, T::Kw | T::Word)
            && (w.starts_with("information_schema")
                || w.starts_with("sysobjects")
                || w.starts_with("mysql.user")
                || w.starts_with("pg_catalog")
                || w.starts_with("sqlite_master"))
        {
            return Some(("sqli.catalog", format!("names the catalog {w}")));
        }
        if t.t == T::Var && w.starts_with("@@") {
            return Some(("sqli.system_variable", format!("reads {w}")));
        }
    }
    // UNION [ALL|DISTINCT] SELECT, SELECT … FROM, stacked statements.
    for i in 0..n {
        match toks[i].t {
            T::Union => {
                let mut j = i + 1;
                while matches!(ty(j), Some(T::Kw | T::Comment | T::Open)) {
                    j += 1;
                }
                if ty(j) == Some(T::Stmt) && word(s, &toks[j]) == "select" {
                    return Some(("sqli.union_select", "UNION SELECT".into()));
                }
            }
            T::Semi => {
                if let Some(next) = toks[i + 1..].iter().find(|t| t.t != T::Comment)
                    && (next.t == T::Stmt || (next.t == T::Kw && word(s, next) == "begin"))
                {
                    return Some(("sqli.stacked", format!("; then {}", word(s, next))));
                }
            }
            T::Stmt if word(s, &toks[i]) == "select" => {
                let has_from = toks[i + 1..]
                    .iter()
                    .any(|t| t.t == T::Kw && word(s, t) == "from");
                let in_parens = i > 0 && ty(i - 1) == Some(T::Open);
                if has_from || in_parens {
                    return Some(("sqli.subquery", "SELECT … FROM / (SELECT …)".into()));
                }
            }
            T::Stmt
                if word(s, &toks[i]) == "waitfor"
                    && toks[i + 1..].iter().any(|t| word(s, t) == "delay") =>
            {
                return Some(("sqli.function", "WAITFOR DELAY".into()));
            }
            _ => {}
        }
    }
    // The reading's opening: a string broken out of, or a number/name then logic.
    let operand = |t: Option<T>| {
        matches!(
            t,
            Some(T::Num | T::Str | T::Word | T::Func | T::Var | T::Open | T::Kw)
        )
    };
    let first = if quoted { 1 } else { 0 };
    let mut i = first;
    // Skip what the value itself is: `(1`, `-1`, `abc`, `@a`, a string after a quote
    // (`''1'`), and closing parentheses or modifiers (`1' in boolean mode)`).
    while ty(i) == Some(T::Open) && i < first + 3 {
        i += 1;
    }
    let mut skipped = 0;
    while matches!(ty(i), Some(T::Num | T::Word | T::Var | T::Str)) && skipped < 1
        || ty(i) == Some(T::Op) && i == first && !quoted
    {
        if ty(i) != Some(T::Op) {
            skipped += 1;
        }
        i += 1;
    }
    let mut mods = 0;
    while (ty(i) == Some(T::Close)
        || ty(i) == Some(T::Kw) && matches!(word(s, &toks[i]), "in" | "boolean" | "mode") && quoted)
        && mods < 4
    {
        mods += 1;
        i += 1;
    }
    match ty(i) {
        // …' OR 1=1, …) AND sleep(5), 1 OR x=x
        Some(T::Logic) => {
            let mut j = i + 1;
            while ty(j) == Some(T::Open) || (ty(j) == Some(T::Logic) && word(s, &toks[j]) == "not")
            {
                j += 1;
            }
            if operand(ty(j)) {
                let rest = &toks[j + 1..];
                let compared = rest.iter().take(6).any(|t| {
                    t.t == T::Op
                        || t.t == T::Kw
                            && matches!(
                                word(s, t),
                                "like"
                                    | "rlike"
                                    | "regexp"
                                    | "between"
                                    | "in"
                                    | "is"
                                    | "sounds"
                                    | "glob"
                                    | "ilike"
                                    | "notnull"
                                    | "isnull"
                                    | "similar"
                            )
                });
                let ends = rest.is_empty()
                    || rest
                        .iter()
                        .all(|t| matches!(t.t, T::Comment | T::Close | T::Semi));
                let called = ty(j) == Some(T::Func);
                let chained = rest.iter().any(|t| {
                    t.t == T::Logic
                        || t.t == T::Kw
                            && matches!(word(s, t), "group" | "order" | "having" | "limit")
                });
                let commented = rest.last().is_some_and(|t| t.t == T::Comment);
                if compared
                    || called
                    || (ends && (quoted || ty(j) == Some(T::Num) || ty(j) == Some(T::Str)))
                    || (quoted && chained)
                    || (chained && ty(j) == Some(T::Num))
                    || (commented && matches!(ty(j), Some(T::Num | T::Str | T::Var | T::Open)))
                {
                    return Some((
                        "sqli.tautology",
                        format!("breaks out then {} …", word(s, &toks[i])),
                    ));
                }
            }
        }
        // …'; DROP …, …' -- , …' #
        Some(T::Comment) if quoted || i > 0 && toks[..i].iter().any(|t| t.t == T::Close) => {
            return Some((
                "sqli.comment",
                "closes the value and comments out the rest".into(),
            ));
        }
        // …' ORDER BY 1, …' GROUP BY, …' HAVING, …' INTO OUTFILE, …' LIMIT
        Some(T::Kw)
            if matches!(
                word(s, &toks[i]),
                "order" | "group" | "having" | "into" | "limit" | "procedure" | "where" | "as"
            ) =>
        {
            let next = ty(i + 1);
            // At the very start of a plain value only SQL's own shape counts: `ORDER BY 8`,
            // `WHERE 1=1` (not `where is my order`).
            let at_start = !quoted && i == first;
            let sql_shape = next == Some(T::Num)
                || (next == Some(T::Kw)
                    && word(s, &toks[i + 1]) == "by"
                    && matches!(ty(i + 2), Some(T::Num | T::Func)));
            let clause_follows = matches!(
                next,
                Some(T::Kw | T::Num | T::Word | T::Func | T::Open | T::Str)
            );
            if (at_start && sql_shape) || (!at_start && clause_follows) {
                return Some((
                    "sqli.clause",
                    format!("breaks out into {}", word(s, &toks[i])),
                ));
            }
        }
        // …'='  …'||' …'+(select…  (expression continuing after the quote)
        Some(T::Op) if quoted => {
            let after = ty(i + 1);
            let op = word(s, &toks[i]);
            if matches!(after, Some(T::Str | T::Num | T::Func | T::Open | T::Var))
                && (toks.len() > i + 2
                    || matches!(
                        op,
                        "=" | "<>" | "!=" | "||" | "|" | "&" | "^" | "*" | "/" | "-"
                    ))
            {
                return Some(("sqli.expression", format!("breaks out then {op}")));
            }
        }
        _ => {}
    }
    // …' <SQL> --: out of the string, SQL words, and the rest of the query commented out.
    if quoted
        && n > i + 1
        && toks[n - 1].t == T::Comment
        && toks[i..n - 1]
            .iter()
            .any(|t| matches!(t.t, T::Kw | T::Logic | T::Op))
    {
        return Some((
            "sqli.comment",
            "closes the value, continues in SQL, comments out the rest".into(),
        ));
    }
    None
}

/// Detects SQL injection in a normalised value.
/// Words that can carry an injection without any punctuation (`1 or 1`, `order by 2`).
const BARE_SQL_WORDS: &[&str] = &[
    "or",
    "and",
    "xor",
    "not",
    "union",
    "select",
    "order",
    "group",
    "having",
    "where",
    "waitfor",
    "insert",
    "delete",
    "drop",
    "update",
    "exec",
    "execute",
    "div",
    "like",
    "rlike",
    "regexp",
    "in",
    "is",
    "limit",
    "case",
    "procedure",
    "into",
    "declare",
    "sleep",
    "benchmark",
    "between",
    "sounds",
    "null",
    "true",
    "false",
    "shutdown",
    "begin",
    "if",
    "iif",
    "mod",
];
static BARE_SQL: std::sync::LazyLock<WordSet> =
    std::sync::LazyLock::new(|| BARE_SQL_WORDS.iter().copied().collect::<WordSet>());

/// Cheap test first: punctuation SQL needs, a comment, or a SQL word.
fn could_be_sql(n: &str) -> bool {
    let b = n.as_bytes();
    b.iter().any(|&c| {
        matches!(
            c,
            b'\''
                | b'"'
                | b'('
                | b'#'
                | b';'
                | b'='
                | b'|'
                | b'&'
                | b'@'
                | b'`'
                | b'<'
                | b'>'
                | b'*'
        )
    }) || n.contains("--")
        || n.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|w| BARE_SQL.contains(w))
}

pub(super) fn detect(n: &str) -> Option<(&'static str, String)> {
    if n.len() < 2 || !could_be_sql(n) {
        return None;
    }
    let plain = tokenize(n, None);
    if let Some(hit) = judge(n, &plain, false) {
        return Some(hit);
    }
    for q in [b'\'', b'"'] {
        if memchr::memchr(q, n.as_bytes()).is_some() {
            let toks = tokenize(n, Some(q));
            if let Some((rule, why)) = judge(n, &toks, true) {
                return Some((rule, format!("inside {}-quoted text: {why}", q as char)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::normalize;

    fn rule(value: &str) -> Option<&'static str> {
        detect(&normalize(value)).map(|(rule, _)| rule)
    }

    #[test]
    fn test_tokenize_reads_strings_numbers_and_words() {
        let toks = tokenize("1 union select 'a'", None);
        let kinds: Vec<T> = toks.iter().map(|t| t.t).collect();
        assert_eq!(kinds.first(), Some(&T::Num));
        assert!(kinds.contains(&T::Union));
        assert_eq!(kinds.last(), Some(&T::Str));
        // A value that starts inside a quoted string: the first token is the rest of it.
        let inside = tokenize("x' or '1'='1", Some(b'\''));
        assert_eq!(inside.first().map(|t| t.t), Some(T::Str));
    }

    #[test]
    fn test_injections_in_each_reading_are_found() {
        for v in [
            "' OR '1'='1' --",
            "1 UNION SELECT username, password FROM users--",
            "1; DROP TABLE users",
            "admin'--",
            "1 AND SLEEP(5)",
            "\" or \"\"=\"",
        ] {
            let r = rule(v).unwrap_or_else(|| panic!("{v:?} not found"));
            assert!(r.starts_with("sqli."), "{v:?}: {r}");
        }
    }

    #[test]
    fn test_prose_and_ordinary_values_are_not_sql() {
        for v in [
            "O'Reilly",
            "select a plan that fits",
            "rock 'n' roll",
            "1-800-555-0199",
            "union station",
            "it's 5 o'clock",
        ] {
            assert_eq!(rule(v), None, "{v:?}");
        }
    }
}
