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
                i = quoted_end(b, i);
                if c == b'`' { T::Word } else { T::Str }
            }
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(b, i);
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
                    i = skip_while(b, i + 3, |c| c.is_ascii_digit());
                    continue;
                }
                i = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |e| i + 2 + e + 2);
                T::Comment
            }
            b'*' if b.get(i + 1) == Some(&b'/') => {
                i += 2;
                continue;
            }
            b'(' | b')' | b',' | b';' => {
                i += 1;
                match c {
                    b'(' => T::Open,
                    b')' => T::Close,
                    b',' => T::Comma,
                    _ => T::Semi,
                }
            }
            b'@' => {
                i = skip_while(b, i + 1, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'.' | b'$')
                });
                T::Var
            }
            b'&' | b'|' if b.get(i + 1) == Some(&c) => {
                i += 2;
                T::Logic
            }
            b'=' | b'<' | b'>' | b'!' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' | b'-'
            | b':' => {
                i = skip_while(b, i + 1, |c| matches!(c, b'=' | b'<' | b'>' | b'!'));
                T::Op
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                i = skip_while(b, i, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.') || c >= 0x80
                });
                let next = b[i..].iter().find(|c| !c.is_ascii_whitespace()).copied();
                word_kind(s[start..i].trim_end_matches('.'), next)
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

/// The first index from `i` whose byte does not satisfy `keep`.
fn skip_while(b: &[u8], i: usize, keep: impl Fn(u8) -> bool) -> usize {
    b[i.min(b.len())..]
        .iter()
        .position(|&c| !keep(c))
        .map_or(b.len(), |p| i + p)
}

/// The index just past the string literal opened by the quote at `i` (doubled quotes and
/// backslash escapes stay inside).
fn quoted_end(b: &[u8], i: usize) -> usize {
    let q = b[i];
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
    (j + 1).min(b.len())
}

/// The index just past the number at `i`: decimal, float, `0x…` hex or `0b…`.
fn number_end(b: &[u8], i: usize) -> usize {
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'b')) {
        skip_while(b, i + 2, |c| c.is_ascii_hexdigit())
    } else {
        skip_while(b, i, |c| c.is_ascii_digit() || c == b'.' || c == b'e')
    }
}

/// What a word is, given the next non-space byte (a `(` makes a name a function call).
fn word_kind(w: &str, next: Option<u8>) -> T {
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

fn word<'a>(s: &'a str, t: &Tok) -> &'a str {
    &s[t.start..t.end]
}

/// A verdict: the rule that fired and why.
type Verdict = Option<(&'static str, String)>;

/// Functions whose call alone tells: timing, file access, error-based extraction.
const TELLING_FUNCTIONS: &[&str] = &[
    "sleep",
    "benchmark",
    "pg_sleep",
    "load_file",
    "extractvalue",
    "updatexml",
    "xp_cmdshell",
    "randomblob",
    "dbms_pipe.receive_message",
    "utl_inaddr.get_host_address",
    "pg_read_file",
    "gtid_subset",
    "name_const",
];

/// Prefixes of the databases' own catalogs.
const CATALOGS: &[&str] = &[
    "information_schema",
    "sysobjects",
    "mysql.user",
    "pg_catalog",
    "sqlite_master",
];

/// Keywords that compare, as an operator does (`x LIKE y`, `x IS NULL`).
const COMPARING_KEYWORDS: &[&str] = &[
    "like", "rlike", "regexp", "between", "in", "is", "sounds", "glob", "ilike", "notnull",
    "isnull", "similar",
];

/// One reading of a value: its text, its tokens, and whether it starts inside a string.
struct Reading<'a> {
    s: &'a str,
    toks: &'a [Tok],
    quoted: bool,
}

impl<'a> Reading<'a> {
    fn ty(&self, i: usize) -> Option<T> {
        self.toks.get(i).map(|t| t.t)
    }

    fn word(&self, i: usize) -> &'a str {
        word(self.s, &self.toks[i])
    }

    /// The index of the reading's first token: after the rest of the string it started in.
    fn first(&self) -> usize {
        usize::from(self.quoted)
    }

    /// Telling functions, catalog names and system variables, anywhere in the reading.
    fn telling_names(&self) -> Verdict {
        for t in self.toks {
            let w = word(self.s, t);
            if t.t == T::Func && TELLING_FUNCTIONS.contains(&w) {
                return Some(("sqli.function", format!("calls {w}()")));
            }
            if matches!(t.t, T::Kw | T::Word) && CATALOGS.iter().any(|c| w.starts_with(c)) {
                return Some(("sqli.catalog", format!("names the catalog {w}")));
            }
            if t.t == T::Var && w.starts_with("@@") {
                return Some(("sqli.system_variable", format!("reads {w}")));
            }
        }
        None
    }

    /// `UNION [ALL|DISTINCT] SELECT`, `SELECT … FROM`, stacked statements, `WAITFOR DELAY`.
    fn statements(&self) -> Verdict {
        let toks = self.toks;
        for i in 0..toks.len() {
            match toks[i].t {
                T::Union => {
                    let mut j = i + 1;
                    while matches!(self.ty(j), Some(T::Kw | T::Comment | T::Open)) {
                        j += 1;
                    }
                    if self.ty(j) == Some(T::Stmt) && self.word(j) == "select" {
                        return Some(("sqli.union_select", "UNION SELECT".into()));
                    }
                }
                T::Semi => {
                    if let Some(next) = toks[i + 1..].iter().find(|t| t.t != T::Comment)
                        && (next.t == T::Stmt || (next.t == T::Kw && word(self.s, next) == "begin"))
                    {
                        return Some(("sqli.stacked", format!("; then {}", word(self.s, next))));
                    }
                }
                T::Stmt if self.word(i) == "select" => {
                    let has_from = toks[i + 1..]
                        .iter()
                        .any(|t| t.t == T::Kw && word(self.s, t) == "from");
                    let in_parens = i > 0 && self.ty(i - 1) == Some(T::Open);
                    if has_from || in_parens {
                        return Some(("sqli.subquery", "SELECT … FROM / (SELECT …)".into()));
                    }
                }
                T::Stmt
                    if self.word(i) == "waitfor"
                        && toks[i + 1..].iter().any(|t| word(self.s, t) == "delay") =>
                {
                    return Some(("sqli.function", "WAITFOR DELAY".into()));
                }
                _ => {}
            }
        }
        None
    }

    /// Skips what the value itself is — `(1`, `-1`, `abc`, `@a`, a string after a quote
    /// (`''1'`), then closing parentheses or modifiers (`1' in boolean mode)`) — and returns
    /// the index of the first token that is not the value.
    fn after_value(&self) -> usize {
        let first = self.first();
        let mut i = first;
        while self.ty(i) == Some(T::Open) && i < first + 3 {
            i += 1;
        }
        let mut skipped = 0;
        while matches!(self.ty(i), Some(T::Num | T::Word | T::Var | T::Str)) && skipped < 1
            || self.ty(i) == Some(T::Op) && i == first && !self.quoted
        {
            if self.ty(i) != Some(T::Op) {
                skipped += 1;
            }
            i += 1;
        }
        let mut mods = 0;
        while (self.ty(i) == Some(T::Close)
            || self.ty(i) == Some(T::Kw)
                && matches!(self.word(i), "in" | "boolean" | "mode")
                && self.quoted)
            && mods < 4
        {
            mods += 1;
            i += 1;
        }
        i
    }

    /// What follows the value at `i`: logic, a comment, a clause, or an operator.
    fn breakout(&self, i: usize) -> Verdict {
        match self.ty(i) {
            Some(T::Logic) => self.logic(i),
            // …'; DROP …, …' -- , …' #
            Some(T::Comment)
                if self.quoted || i > 0 && self.toks[..i].iter().any(|t| t.t == T::Close) =>
            {
                Some((
                    "sqli.comment",
                    "closes the value and comments out the rest".into(),
                ))
            }
            Some(T::Kw) => self.clause(i),
            Some(T::Op) if self.quoted => self.expression(i),
            _ => None,
        }
    }

    /// …' OR 1=1, …) AND sleep(5), 1 OR x=x: logic whose operand is compared, called,
    /// chained or ends the value.
    fn logic(&self, i: usize) -> Verdict {
        let mut j = i + 1;
        while self.ty(j) == Some(T::Open) || (self.ty(j) == Some(T::Logic) && self.word(j) == "not")
        {
            j += 1;
        }
        let operand = self.ty(j);
        if !matches!(
            operand,
            Some(T::Num | T::Str | T::Word | T::Func | T::Var | T::Open | T::Kw)
        ) {
            return None;
        }
        let rest = &self.toks[j + 1..];
        let compared = rest
            .iter()
            .take(6)
            .any(|t| t.t == T::Op || t.t == T::Kw && COMPARING_KEYWORDS.contains(&word(self.s, t)));
        let ends = rest
            .iter()
            .all(|t| matches!(t.t, T::Comment | T::Close | T::Semi));
        let called = operand == Some(T::Func);
        let chained = rest.iter().any(|t| {
            t.t == T::Logic
                || t.t == T::Kw && matches!(word(self.s, t), "group" | "order" | "having" | "limit")
        });
        let commented = rest.last().is_some_and(|t| t.t == T::Comment);
        let literal = matches!(operand, Some(T::Num | T::Str));
        let fires = compared
            || called
            || (ends && (self.quoted || literal))
            || (self.quoted && chained)
            || (chained && operand == Some(T::Num))
            || (commented && matches!(operand, Some(T::Num | T::Str | T::Var | T::Open)));
        fires.then(|| {
            (
                "sqli.tautology",
                format!("breaks out then {} …", self.word(i)),
            )
        })
    }

    /// …' ORDER BY 1, …' GROUP BY, …' HAVING, …' INTO OUTFILE, …' LIMIT
    fn clause(&self, i: usize) -> Verdict {
        let kw = self.word(i);
        if !matches!(
            kw,
            "order" | "group" | "having" | "into" | "limit" | "procedure" | "where" | "as"
        ) {
            return None;
        }
        let next = self.ty(i + 1);
        // At the very start of a plain value only SQL's own shape counts: `ORDER BY 8`,
        // `WHERE 1=1` (not `where is my order`).
        let at_start = !self.quoted && i == self.first();
        let sql_shape = next == Some(T::Num)
            || (next == Some(T::Kw)
                && self.word(i + 1) == "by"
                && matches!(self.ty(i + 2), Some(T::Num | T::Func)));
        let clause_follows = matches!(
            next,
            Some(T::Kw | T::Num | T::Word | T::Func | T::Open | T::Str)
        );
        ((at_start && sql_shape) || (!at_start && clause_follows))
            .then(|| ("sqli.clause", format!("breaks out into {kw}")))
    }

    /// …'='  …'||' …'+(select…: an expression continuing after the quote.
    fn expression(&self, i: usize) -> Verdict {
        let after = self.ty(i + 1);
        let op = self.word(i);
        let operand_follows = matches!(after, Some(T::Str | T::Num | T::Func | T::Open | T::Var));
        let binary = matches!(
            op,
            "=" | "<>" | "!=" | "||" | "|" | "&" | "^" | "*" | "/" | "-"
        );
        (operand_follows && (self.toks.len() > i + 2 || binary))
            .then(|| ("sqli.expression", format!("breaks out then {op}")))
    }

    /// …' <SQL> --: out of the string, SQL words, and the rest of the query commented out.
    fn commented_tail(&self, i: usize) -> Verdict {
        let n = self.toks.len();
        let tail = self.quoted
            && n > i + 1
            && self.toks[n - 1].t == T::Comment
            && self.toks[i..n - 1]
                .iter()
                .any(|t| matches!(t.t, T::Kw | T::Logic | T::Op));
        tail.then(|| {
            (
                "sqli.comment",
                "closes the value, continues in SQL, comments out the rest".into(),
            )
        })
    }
}

/// Judges one reading; returns a rule and a reason.
fn judge(s: &str, toks: &[Tok], quoted: bool) -> Verdict {
    let r = Reading { s, toks, quoted };
    if let Some(v) = r.telling_names().or_else(|| r.statements()) {
        return Some(v);
    }
    let i = r.after_value();
    r.breakout(i).or_else(|| r.commented_tail(i))
}

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

/// Detects SQL injection in a normalised value.
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
