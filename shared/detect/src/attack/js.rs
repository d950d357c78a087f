//! JavaScript contexts: a value lands in a script either as code or inside a `'…'`, `"…"` or
//! `` `…` `` literal. Read from each of those states by a small lexer (string escapes,
//! template substitutions, `//`, `/*…*/` and `<!--` comments, identifiers joined by `.`), the
//! value calls script if it reaches code and there calls a sink (`alert(1)`,
//! `alert/**/(1)`, ``alert`1` ``, `window.eval(…)`) or assigns a navigating or writing
//! property (`location=…`, `x.innerhtml=…`) — where JavaScript's grammar allows an
//! expression to start: at the beginning of code or after an operator, never right after
//! another identifier or literal (`please alert(me)` and `O'Reilly (book)` are no script).
//!
//! The input is the normalised value (lowercase, escapes decoded).

/// Where the value lands in a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    Code,
    /// Inside a literal opened by this quote (`'`, `"` or `` ` ``).
    Literal(u8),
}

/// What the value does once it reaches code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// Calls this sink (`alert`, `document.write`).
    Calls(String),
    /// Assigns this property (`location`, `x.innerhtml`).
    Assigns(String),
}

/// Functions whose call is script running on the attacker's behalf.
pub(super) const SINKS: &[&str] = &[
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "function",
    "fromcharcode",
    "atob",
    "import",
    "constructor",
    "showmodaldialog",
    "execscript",
    "document.write",
    "document.writeln",
    "window.open",
];

/// Sinks named like everyday words (`print("hello") in python`): a call counts only after
/// something opened the code — a breakout, an operator, a statement before it — or through an
/// object (`window.print()`), not as the first word of a value read as code.
const WORDLY_SINKS: &[&str] = &["print", "open", "write", "writeln", "fetch", "log"];

/// Properties whose assignment navigates, writes markup or steals.
const ASSIGNED: &[&str] = &[
    "location",
    "href",
    "innerhtml",
    "outerhtml",
    "srcdoc",
    "cookie",
    "onerror",
    "onload",
];

/// The value's first effect when read from `start`, if it reaches code and does something.
pub(super) fn effect(n: &str, start: Start) -> Option<Effect> {
    effect_at_depth(n, start, 0)
}

/// Literals inside code are read as code again (`setTimeout("alert(1)")`, `d="alert(1)"`
/// handed to `eval`), to this depth.
const NESTED_LITERALS: u8 = 2;

fn effect_at_depth(n: &str, start: Start, depth: u8) -> Option<Effect> {
    let mut lexer = Lexer {
        b: n.as_bytes(),
        i: 0,
        expression_may_start: true,
        depth,
        value_start: match start {
            Start::Code => n.len() - n.trim_start().len(),
            Start::Literal(_) => usize::MAX,
        },
    };
    if let Start::Literal(q) = start {
        lexer.literal(q);
    }
    lexer.code()
}

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    /// Whether the previous token lets an expression start here (an operator, `(`, `;`, or
    /// nothing) rather than ending one (an identifier, literal, `)`).
    expression_may_start: bool,
    depth: u8,
    /// Where the value's first token lies when it is read as code from its start.
    value_start: usize,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

impl Lexer<'_> {
    /// Skips to the end of a literal opened by `q` (or the end of the value); a template's
    /// `${` is code, read until its `}`.
    fn literal(&mut self, q: u8) {
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'\n' if q != b'`' => break,
                b'$' if q == b'`' && self.b.get(self.i) == Some(&b'{') => {
                    self.i += 1;
                    self.expression_may_start = true;
                    return;
                }
                c if c == q => break,
                _ => {}
            }
        }
        self.expression_may_start = false;
    }

    fn code(&mut self) -> Option<Effect> {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                // A line break lets a statement start (automatic semicolon insertion).
                b'\n' | b'\r' => {
                    self.i += 1;
                    self.expression_may_start = true;
                }
                c if c.is_ascii_whitespace() => self.i += 1,
                b'/' if self.b.get(self.i + 1) == Some(&b'/') => self.line_comment(),
                b'/' if self.b.get(self.i + 1) == Some(&b'*') => self.block_comment(),
                b'<' if self.b[self.i..].starts_with(b"<!--") => self.line_comment(),
                b'\'' | b'"' | b'`' => {
                    self.i += 1;
                    let from = self.i;
                    self.literal(c);
                    if self.depth < NESTED_LITERALS {
                        let inner =
                            String::from_utf8_lossy(&self.b[from..self.i.min(self.b.len())]);
                        let inner = inner.strip_suffix(c as char).unwrap_or(&inner);
                        if let Some(effect) = effect_at_depth(inner, Start::Code, self.depth + 1) {
                            return Some(effect);
                        }
                    }
                }
                c if is_ident(c) && !c.is_ascii_digit() => {
                    if let Some(effect) = self.identifier() {
                        return Some(effect);
                    }
                }
                c if c.is_ascii_digit() => {
                    self.i += self.b[self.i..]
                        .iter()
                        .take_while(|&&c| is_ident(c) || c == b'.')
                        .count();
                    self.expression_may_start = false;
                }
                b')' | b']' | b'}' => {
                    self.i += 1;
                    self.expression_may_start = false;
                }
                _ => {
                    self.i += 1;
                    self.expression_may_start = true;
                }
            }
        }
        None
    }

    fn line_comment(&mut self) {
        self.i = memchr::memchr(b'\n', &self.b[self.i..]).map_or(self.b.len(), |e| self.i + e);
    }

    fn block_comment(&mut self) {
        self.i = memchr::memmem::find(&self.b[self.i + 2..], b"*/")
            .map_or(self.b.len(), |e| self.i + 2 + e + 2);
    }

    /// Skips whitespace and comments; the next byte.
    fn next_significant(&mut self) -> Option<u8> {
        loop {
            match *self.b.get(self.i)? {
                c if c.is_ascii_whitespace() => self.i += 1,
                b'/' if self.b.get(self.i + 1) == Some(&b'*') => self.block_comment(),
                c => return Some(c),
            }
        }
    }

    /// An identifier path (`a.b.c`) and what follows it: a call or an assignment.
    fn identifier(&mut self) -> Option<Effect> {
        let may_start = self.expression_may_start;
        let first_word = self.i == self.value_start;
        let mut path = String::new();
        loop {
            let len = self.b[self.i..]
                .iter()
                .take_while(|&&c| is_ident(c))
                .count();
            path.push_str(&String::from_utf8_lossy(&self.b[self.i..self.i + len]));
            self.i += len;
            let save = self.i;
            if self.next_significant() == Some(b'.') {
                self.i += 1;
                if self
                    .next_significant()
                    .is_some_and(|c| is_ident(c) && !c.is_ascii_digit())
                {
                    path.push('.');
                    continue;
                }
            }
            self.i = save;
            break;
        }
        // Keywords that lead into an expression (`return alert(1)`, `new Function(…)`).
        let keyword = matches!(
            path.as_str(),
            "return"
                | "new"
                | "typeof"
                | "void"
                | "delete"
                | "in"
                | "of"
                | "throw"
                | "case"
                | "await"
                | "yield"
        );
        self.expression_may_start = keyword;
        if !may_start {
            return None;
        }
        let last = path.rsplit('.').next().unwrap_or(&path);
        let sink = SINKS.contains(&last)
            || SINKS.contains(&path.as_str())
            || WORDLY_SINKS.contains(&last) && (path.contains('.') || !first_word);
        match self.next_significant() {
            Some(b'(' | b'`') if sink => Some(Effect::Calls(path)),
            // Properties of an object (`x.innerhtml=`); `location` also bare (the window's).
            Some(b'=')
                if self.b.get(self.i + 1) != Some(&b'=')
                    && ASSIGNED.contains(&last)
                    && (path.contains('.') || path == "location") =>
            {
                Some(Effect::Assigns(path))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(n: &str, start: Start) -> Option<String> {
        match effect(n, start)? {
            Effect::Calls(s) | Effect::Assigns(s) => Some(s),
        }
    }

    #[test]
    fn breaking_out_of_a_literal_reaches_code() {
        let single = Start::Literal(b'\'');
        assert_eq!(calls("';alert(1)//", single).as_deref(), Some("alert"));
        assert_eq!(calls("'-alert/**/(1)-'", single).as_deref(), Some("alert"));
        assert_eq!(
            calls("x';top.window.eval`1`;'", single).as_deref(),
            Some("top.window.eval")
        );
        assert_eq!(
            calls("';document.location='//evil", single).as_deref(),
            Some("document.location")
        );
        // An escaped quote stays inside; the other quote does not close it.
        assert_eq!(calls("\\';alert(1)//", single), None);
        assert_eq!(calls("\";alert(1)//", single), None);
        assert_eq!(
            calls("\";alert(1)//", Start::Literal(b'"')).as_deref(),
            Some("alert")
        );
        assert_eq!(
            calls("${alert(1)}", Start::Literal(b'`')).as_deref(),
            Some("alert")
        );
    }

    #[test]
    fn prose_is_no_call() {
        for (n, start) in [
            ("o'reilly (book)", Start::Literal(b'\'')),
            ("don't alert(them)", Start::Literal(b'\'')),
            ("please alert(me)", Start::Code),
            ("i will confirm (tomorrow)", Start::Code),
            ("alert == 1", Start::Code),
            ("print(\"hello world\") in python", Start::Code),
        ] {
            assert_eq!(calls(n, start), None, "{n:?}");
        }
        assert_eq!(calls("alert(1)", Start::Code).as_deref(), Some("alert"));
        assert_eq!(calls("x;print()", Start::Code).as_deref(), Some("print"));
        assert_eq!(
            calls("x'\nprint()//", Start::Literal(b'\'')).as_deref(),
            Some("print")
        );
        assert_eq!(
            calls("return new function(x)", Start::Code).as_deref(),
            Some("function")
        );
    }
}
