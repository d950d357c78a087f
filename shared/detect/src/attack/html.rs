//! An HTML tokenizer after the WHATWG tokenizer states (HTML Living Standard §13.2.5): tag
//! names, attributes split exactly where a browser splits them (`<svg/onload=…>`,
//! `<img src="x"onerror=…>`, `<a =x onclick=…>`), comments and bogus comments (`<?…>`,
//! `</1 …>`, `<!…>`) that swallow what looks like markup, `<!-->` closing at once, and the
//! raw-text elements (`script`, `style`, `textarea`, `title`, …) whose content is not markup —
//! except inside `svg`/`math`, where the tree builder leaves the tokenizer in its data state.
//! One departure, for old Internet Explorer: the content of a conditional comment
//! (`<!--[if IE]>…`) is read as markup, as IE read it.
//!
//! A value is tokenized from the state the page would be in where the value lands: between
//! tags, or inside a double-quoted, single-quoted or unquoted attribute value — the contexts
//! libinjection's XSS check also starts from. A value cut off inside a tag yields that tag,
//! since the page's own next `>` closes it.
//!
//! The input is the normalised value (lowercase, character references already decoded), so
//! the tokenizer neither folds case nor decodes references itself.

use std::ops::Range;

/// Where the value lands in the page: the state the tokenizer starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Context {
    /// Between tags: `<p>VALUE</p>`.
    Data,
    /// Inside an attribute value of some tag: `"VALUE"`, `'VALUE'`, `=VALUE`.
    Attribute(Quote),
}

/// How the attribute value the value lands in is quoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Quote {
    Double,
    Single,
    Unquoted,
}

/// An attribute as a browser splits it: its name and its value (quotes removed).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Attr {
    pub name: String,
    pub value: String,
}

/// Whose tag a start tag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// A tag the value opened itself.
    Value,
    /// The page's tag the value started inside; its first attribute is the page's, the rest
    /// the value added by breaking out of the attribute value.
    Enclosing,
}

/// A start tag: name, attributes and where it lies in the input.
#[derive(Debug)]
pub(super) struct StartTag {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub origin: Origin,
    /// From `<` to after `>`, or to the end of the value.
    pub span: Range<usize>,
}

impl StartTag {
    /// The attributes the value wrote (all of them, unless the tag is the page's).
    pub fn added_attrs(&self) -> &[Attr] {
        match self.origin {
            Origin::Value => &self.attrs,
            Origin::Enclosing => self.attrs.get(1..).unwrap_or_default(),
        }
    }
}

/// What the tokenizer emits (text, and the content of raw-text elements, is not needed by
/// the detectors).
#[derive(Debug)]
pub(super) enum Token {
    Start(StartTag),
    End(String),
}

/// The tokens of `input` read from `context`.
pub(super) fn tokens(input: &str, context: Context) -> Vec<Token> {
    let mut t = Tokenizer {
        b: input.as_bytes(),
        i: 0,
        out: Vec::new(),
        tag: None,
        foreign: 0,
    };
    let state = match context {
        Context::Data => State::Data,
        Context::Attribute(quote) => {
            t.tag = Some(TagBuilder {
                name: Vec::new(),
                attrs: vec![(Vec::new(), Vec::new())],
                origin: Origin::Enclosing,
                end_tag: false,
                start: 0,
            });
            State::AttrValue(quote)
        }
    };
    t.run(state);
    t.out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data,
    TagOpen,
    EndTagOpen,
    TagName,
    BeforeAttrName,
    AttrName,
    AfterAttrName,
    BeforeAttrValue,
    AttrValue(Quote),
    AfterAttrValueQuoted,
    SelfClosing,
    MarkupDeclarationOpen,
    BogusComment,
    Comment,
    Done,
}

struct TagBuilder {
    name: Vec<u8>,
    attrs: Vec<(Vec<u8>, Vec<u8>)>,
    origin: Origin,
    end_tag: bool,
    start: usize,
}

struct Tokenizer<'a> {
    b: &'a [u8],
    i: usize,
    out: Vec<Token>,
    tag: Option<TagBuilder>,
    /// Open `svg`/`math` elements: inside them no element switches to raw text.
    foreign: u32,
}

fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b' ' | b'\r')
}

/// Elements whose content the tokenizer reads as text, not markup (in HTML content).
const RAW_TEXT: &[&str] = &[
    "script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title",
];

impl Tokenizer<'_> {
    fn run(&mut self, mut state: State) {
        while state != State::Done {
            state = match state {
                State::Data => self.data(),
                State::TagOpen => self.tag_open(),
                State::EndTagOpen => self.end_tag_open(),
                State::TagName => self.tag_name(),
                State::BeforeAttrName
                | State::AttrName
                | State::AfterAttrName
                | State::BeforeAttrValue
                | State::SelfClosing => self.attributes(state),
                State::AttrValue(quote) => self.attr_value(quote),
                State::AfterAttrValueQuoted => self.after_quoted_value(),
                State::MarkupDeclarationOpen => self.markup_declaration(),
                State::BogusComment => self.skip_past(b">"),
                State::Comment => self.comment(),
                State::Done => State::Done,
            };
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn data(&mut self) -> State {
        match memchr::memchr(b'<', &self.b[self.i..]) {
            Some(at) => {
                self.i += at + 1;
                State::TagOpen
            }
            None => State::Done,
        }
    }

    fn tag_open(&mut self) -> State {
        match self.peek() {
            Some(b'!') => {
                self.i += 1;
                State::MarkupDeclarationOpen
            }
            Some(b'/') => {
                self.i += 1;
                State::EndTagOpen
            }
            Some(c) if c.is_ascii_alphabetic() => {
                self.begin_tag(false);
                State::TagName
            }
            Some(b'?') => State::BogusComment,
            _ => State::Data,
        }
    }

    fn end_tag_open(&mut self) -> State {
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => {
                self.begin_tag(true);
                State::TagName
            }
            Some(b'>') => {
                self.i += 1;
                State::Data
            }
            None => State::Done,
            Some(_) => State::BogusComment,
        }
    }

    fn begin_tag(&mut self, end_tag: bool) {
        let start = self.i - if end_tag { 2 } else { 1 };
        self.tag = Some(TagBuilder {
            name: Vec::new(),
            attrs: Vec::new(),
            origin: Origin::Value,
            end_tag,
            start,
        });
    }

    fn tag_name(&mut self) -> State {
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                c if is_space(c) => return State::BeforeAttrName,
                b'/' => return State::SelfClosing,
                b'>' => return self.emit(),
                c => {
                    if let Some(t) = self.tag.as_mut() {
                        t.name.push(c);
                    }
                }
            }
        }
        self.emit()
    }

    /// The states between attributes, up to a value.
    fn attributes(&mut self, mut state: State) -> State {
        loop {
            let Some(c) = self.peek() else {
                return self.emit();
            };
            state = match (state, c) {
                (State::BeforeAttrName | State::AfterAttrName, c) if is_space(c) => state,
                (State::BeforeAttrName, b'/' | b'>') => {
                    state = State::AfterAttrName;
                    continue;
                }
                (State::BeforeAttrName, _) => {
                    self.new_attr(c);
                    State::AttrName
                }
                (State::AttrName, c) if is_space(c) || c == b'/' || c == b'>' => {
                    state = State::AfterAttrName;
                    continue;
                }
                (State::AttrName | State::AfterAttrName, b'=') => State::BeforeAttrValue,
                (State::AttrName, c) => {
                    self.push_name(c);
                    State::AttrName
                }
                (State::AfterAttrName | State::SelfClosing, b'/') => State::SelfClosing,
                (State::AfterAttrName | State::SelfClosing, b'>') => {
                    self.i += 1;
                    return self.emit();
                }
                (State::AfterAttrName, _) => {
                    self.new_attr(c);
                    State::AttrName
                }
                (State::SelfClosing, _) => {
                    state = State::BeforeAttrName;
                    continue;
                }
                (State::BeforeAttrValue, c) if is_space(c) => state,
                (State::BeforeAttrValue, b'"') => {
                    self.i += 1;
                    return State::AttrValue(Quote::Double);
                }
                (State::BeforeAttrValue, b'\'') => {
                    self.i += 1;
                    return State::AttrValue(Quote::Single);
                }
                (State::BeforeAttrValue, b'>') => {
                    self.i += 1;
                    return self.emit();
                }
                (State::BeforeAttrValue, _) => return State::AttrValue(Quote::Unquoted),
                _ => return self.emit(),
            };
            self.i += 1;
        }
    }

    /// A new attribute whose name starts with `first` (even `=`, a parse error browsers keep).
    fn new_attr(&mut self, first: u8) {
        if let Some(t) = self.tag.as_mut() {
            t.attrs.push((vec![first], Vec::new()));
        }
    }

    fn push_name(&mut self, c: u8) {
        if let Some((name, _)) = self.tag.as_mut().and_then(|t| t.attrs.last_mut()) {
            name.push(c);
        }
    }

    fn attr_value(&mut self, quote: Quote) -> State {
        let end = match quote {
            Quote::Double => memchr::memchr(b'"', &self.b[self.i..]),
            Quote::Single => memchr::memchr(b'\'', &self.b[self.i..]),
            Quote::Unquoted => self.b[self.i..]
                .iter()
                .position(|&c| is_space(c) || c == b'>'),
        }
        .map(|e| self.i + e);
        let stop = end.unwrap_or(self.b.len());
        if let Some((_, value)) = self.tag.as_mut().and_then(|t| t.attrs.last_mut()) {
            value.extend_from_slice(&self.b[self.i..stop]);
        }
        self.i = stop;
        match (end, quote) {
            (None, _) => self.emit(),
            (Some(_), Quote::Double | Quote::Single) => {
                self.i += 1;
                State::AfterAttrValueQuoted
            }
            (Some(at), Quote::Unquoted) if self.b[at] == b'>' => {
                self.i += 1;
                self.emit()
            }
            (Some(_), Quote::Unquoted) => State::BeforeAttrName,
        }
    }

    fn after_quoted_value(&mut self) -> State {
        match self.peek() {
            Some(c) if is_space(c) => {
                self.i += 1;
                State::BeforeAttrName
            }
            Some(b'/') => {
                self.i += 1;
                State::SelfClosing
            }
            Some(b'>') => {
                self.i += 1;
                self.emit()
            }
            // `"x"onerror=…`: a missing space is a parse error, not the end of the tag.
            Some(_) => State::BeforeAttrName,
            None => self.emit(),
        }
    }

    fn markup_declaration(&mut self) -> State {
        let rest = &self.b[self.i..];
        if rest.starts_with(b"--") {
            self.i += 2;
            return State::Comment;
        }
        if rest.starts_with(b"[cdata[") && self.foreign > 0 {
            self.i += 7;
            return self.skip_past(b"]]>");
        }
        State::BogusComment
    }

    fn comment(&mut self) -> State {
        let rest = &self.b[self.i..];
        // `<!--[if IE]>…`: Internet Explorer's conditional comment reads on as markup.
        if rest.starts_with(b"[if") {
            return self.skip_past(b">");
        }
        // `<!-->` and `<!--->` are whole (empty) comments.
        for abrupt in [&b">"[..], b"->"] {
            if rest.starts_with(abrupt) {
                self.i += abrupt.len();
                return State::Data;
            }
        }
        let close = memchr::memmem::find(rest, b"-->").map(|e| (e, 3));
        let bang = memchr::memmem::find(rest, b"--!>").map(|e| (e, 4));
        match [close, bang].into_iter().flatten().min() {
            Some((at, len)) => {
                self.i += at + len;
                State::Data
            }
            None => State::Done,
        }
    }

    fn skip_past(&mut self, end: &[u8]) -> State {
        match memchr::memmem::find(&self.b[self.i..], end) {
            Some(at) => {
                self.i += at + end.len();
                State::Data
            }
            None => State::Done,
        }
    }

    /// Emits the current tag; a start tag of a raw-text element skips its content.
    fn emit(&mut self) -> State {
        let Some(t) = self.tag.take() else {
            return State::Data;
        };
        let lossy = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
        let name = lossy(t.name);
        if t.end_tag {
            if matches!(name.as_str(), "svg" | "math") {
                self.foreign = self.foreign.saturating_sub(1);
            }
            self.out.push(Token::End(name));
            return self.next_state();
        }
        if matches!(name.as_str(), "svg" | "math") {
            self.foreign += 1;
        }
        let raw = self.foreign == 0 && RAW_TEXT.contains(&name.as_str());
        let plaintext = self.foreign == 0 && name == "plaintext";
        self.out.push(Token::Start(StartTag {
            attrs: t
                .attrs
                .into_iter()
                .map(|(n, v)| Attr {
                    name: lossy(n),
                    value: lossy(v),
                })
                .collect(),
            name: name.clone(),
            origin: t.origin,
            span: t.start..self.i,
        }));
        if plaintext {
            return State::Done;
        }
        if raw {
            self.i = self.raw_text_end(&name);
        }
        self.next_state()
    }

    fn next_state(&self) -> State {
        if self.i >= self.b.len() {
            State::Done
        } else {
            State::Data
        }
    }

    /// Where a raw-text element's content ends: at its own end tag (`</script` followed by a
    /// space, `/` or `>`), or the end of the value.
    fn raw_text_end(&self, name: &str) -> usize {
        let mut from = self.i;
        while let Some(at) = memchr::memmem::find(&self.b[from..], b"</") {
            let at = from + at;
            let after = at + 2 + name.len();
            let closes = self.b[at + 2..].starts_with(name.as_bytes())
                && self
                    .b
                    .get(after)
                    .is_none_or(|&c| is_space(c) || c == b'/' || c == b'>');
            if closes {
                return at;
            }
            from = at + 2;
        }
        self.b.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(input: &str, context: Context) -> Vec<(String, Vec<(String, String)>)> {
        tokens(input, context)
            .into_iter()
            .filter_map(|t| match t {
                Token::Start(s) => Some((
                    s.name,
                    s.attrs.into_iter().map(|a| (a.name, a.value)).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn attributes_split_where_browsers_split_them() {
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                "<img src='a b' onerror=b>",
                "img",
                &[("src", "a b"), ("onerror", "b")],
            ),
            ("<svg/onload=alert(1)>", "svg", &[("onload", "alert(1)")]),
            (
                "<img src=\"x\"onerror=y>",
                "img",
                &[("src", "x"), ("onerror", "y")],
            ),
            ("<a =x onclick=y>", "a", &[("=x", ""), ("onclick", "y")]),
            ("<img src=x/onerror=y>", "img", &[("src", "x/onerror=y")]),
            ("<p a = \"1\" b>", "p", &[("a", "1"), ("b", "")]),
            ("<x/a/b=c>", "x", &[("a", ""), ("b", "c")]),
        ];
        for (input, name, attrs) in cases {
            assert_eq!(
                starts(input, Context::Data),
                vec![(name.to_string(), pairs(attrs))],
                "{input:?}"
            );
        }
    }

    #[test]
    fn comments_and_raw_text_hide_what_looks_like_markup() {
        for inert in [
            "<!-- <img onerror=x> -->",
            "<? <img onerror=x> ?>",
            "</1 <img onerror=x>",
            "<!doctype <img onerror=x>",
            "< img onerror=x>",
        ] {
            let got = starts(inert, Context::Data);
            assert!(got.iter().all(|(n, _)| n != "img"), "{inert:?}: {got:?}");
        }
        // `<!-->` closes at once; a comment also ends at `--!>`.
        assert_eq!(starts("<!--><img a=1>", Context::Data)[0].0, "img");
        assert_eq!(starts("<!-- x --!><img a=1>", Context::Data)[0].0, "img");
        // Inside <title> markup is text until </title>; inside <svg> <style> is no raw text.
        assert_eq!(starts("<title><img a=1></title>", Context::Data).len(), 1);
        let svg = starts("<svg><style><img a=1>", Context::Data);
        assert_eq!(svg.last().map(|t| t.0.as_str()), Some("img"));
        let script: Vec<_> = tokens("<script>if(a</b)x()</script ><i>", Context::Data);
        assert!(
            matches!(&script[1], Token::End(name) if name == "script"),
            "{script:?}"
        );
        assert_eq!(script.len(), 3, "{script:?}");
    }

    #[test]
    fn values_breaking_out_of_an_attribute_add_attributes_to_the_page_s_tag() {
        let t = tokens("x\" onmouseover=\"y", Context::Attribute(Quote::Double));
        let Some(Token::Start(tag)) = t.first() else {
            panic!("{t:?}");
        };
        assert_eq!(tag.origin, Origin::Enclosing);
        assert_eq!(tag.added_attrs().len(), 1);
        assert_eq!(tag.added_attrs()[0].name, "onmouseover");
        // The same value in single quotes stays inside the value.
        let t = tokens("x\" onmouseover=\"y", Context::Attribute(Quote::Single));
        assert!(matches!(t.first(), Some(Token::Start(s)) if s.added_attrs().is_empty()));
        let t = tokens("x onfocus=y autofocus", Context::Attribute(Quote::Unquoted));
        assert!(matches!(t.first(), Some(Token::Start(s)) if s.added_attrs().len() == 2));
    }

    proptest::proptest! {
        #[test]
        fn any_input_tokenizes_with_spans_inside_it(s in "[<>/=\"' a-z!?-]{0,40}") {
            for context in [
                Context::Data,
                Context::Attribute(Quote::Double),
                Context::Attribute(Quote::Single),
                Context::Attribute(Quote::Unquoted),
            ] {
                for t in tokens(&s, context) {
                    match t {
                        Token::Start(tag) => proptest::prop_assert!(tag.span.end <= s.len()),
                        Token::End(_) => {}
                    }
                }
            }
        }
    }
}
