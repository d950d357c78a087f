//! `{{ name }}` substitution in test strings.
//!
//! A reference is a variable (`token`), the run's target (`target`), the environment
//! (`env.NAME`: the env file, then the process environment) or an identity's login variable
//! (`identity.alice.token`), optionally through filters (`{{ token | jwt_alg_none }}`). What a
//! name means is the caller's [`Scope`]; this module only parses and splices.

use std::borrow::Cow;

/// A parsed `{{ … }}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The dotted name, trimmed.
    pub name: &'a str,
    /// Filters applied left to right.
    pub filters: Vec<&'a str>,
}

/// Why a template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum TemplateError {
    #[error("`{{{{` at byte {at} is never closed with `}}}}`")]
    Unclosed { at: usize },
    #[error("`{{{{}}}}` names nothing (at byte {at})")]
    Empty { at: usize },
    #[error("{{{{{name}}}}} is not defined here{hint}")]
    Undefined { name: String, hint: &'static str },
    #[error("unknown filter `{filter}` in {{{{{name} | …}}}} (known: {known})")]
    UnknownFilter {
        name: String,
        filter: String,
        known: &'static str,
    },
    #[error("filter `{filter}` cannot use {{{{{name}}}}}: {why}")]
    Filter {
        name: String,
        filter: String,
        why: String,
    },
}

/// Resolves names to values.
pub trait Scope {
    /// The value of `name`, or `None` when it is not defined.
    fn get(&self, name: &str) -> Option<Cow<'_, str>>;
    /// Said after "not defined here" to help the author.
    fn hint(&self) -> &'static str {
        ""
    }
}

/// Every reference in `text`, in order.
pub fn references(text: &str) -> Result<Vec<Reference<'_>>, TemplateError> {
    let mut out = Vec::new();
    for piece in pieces(text) {
        if let Piece::Reference(r) = piece? {
            out.push(r);
        }
    }
    Ok(out)
}

/// `text` with every reference replaced by its value.
pub fn render(text: &str, scope: &dyn Scope) -> Result<String, TemplateError> {
    render_with(text, scope, &|s| Cow::Borrowed(s))
}

/// [`render`], passing each substituted value through `escape` (regex patterns quote them).
pub fn render_with(
    text: &str,
    scope: &dyn Scope,
    escape: &dyn Fn(&str) -> Cow<'_, str>,
) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece? {
            Piece::Text(t) => out.push_str(t),
            Piece::Reference(r) => {
                let value = scope.get(r.name).ok_or_else(|| TemplateError::Undefined {
                    name: r.name.to_owned(),
                    hint: scope.hint(),
                })?;
                let mut value = value.into_owned();
                for f in &r.filters {
                    value = crate::filters::apply(f, r.name, &value)?;
                }
                out.push_str(&escape(&value));
            }
        }
    }
    Ok(out)
}

enum Piece<'a> {
    Text(&'a str),
    Reference(Reference<'a>),
}

fn pieces(text: &str) -> impl Iterator<Item = Result<Piece<'_>, TemplateError>> {
    let mut rest = text;
    let mut offset = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(open) = rest.find("{{") else {
            let t = std::mem::take(&mut rest);
            return Some(Ok(Piece::Text(t)));
        };
        if open > 0 {
            let (t, r) = rest.split_at(open);
            rest = r;
            offset += open;
            return Some(Ok(Piece::Text(t)));
        }
        let at = offset;
        let Some(close) = rest[2..].find("}}") else {
            rest = "";
            return Some(Err(TemplateError::Unclosed { at }));
        };
        let inner = &rest[2..2 + close];
        rest = &rest[close + 4..];
        offset += close + 4;
        let mut parts = inner.split('|').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Some(Err(TemplateError::Empty { at }));
        }
        Some(Ok(Piece::Reference(Reference {
            name,
            filters: parts.collect(),
        })))
    })
}

/// A scope from a list of maps, searched in order.
pub struct Layers<'a>(pub Vec<&'a dyn Scope>);

impl Scope for Layers<'_> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0.iter().find_map(|s| s.get(name))
    }
}

impl<S: std::hash::BuildHasher> Scope for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        std::collections::HashMap::get(self, name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

impl Scope for indexmap::IndexMap<String, String> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        indexmap::IndexMap::get(self, name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_are_replaced_and_text_kept() {
        let v = vars(&[("id", "42"), ("env.HOST", "h")]);
        assert_eq!(
            render("/books/{{id}}?h={{ env.HOST }}&x={", &v).unwrap(),
            "/books/42?h=h&x={"
        );
        assert_eq!(render("no refs", &v).unwrap(), "no refs");
    }

    #[test]
    fn mistakes_say_what_and_where() {
        let v = vars(&[]);
        assert_eq!(render("a {{b", &v), Err(TemplateError::Unclosed { at: 2 }));
        assert_eq!(render("{{ }}", &v), Err(TemplateError::Empty { at: 0 }));
        let e = render("x{{nope}}", &v).unwrap_err().to_string();
        assert!(e.contains("{{nope}} is not defined"), "{e}");
        let e = render("{{nope | frobnicate}}", &vars(&[("nope", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown filter `frobnicate`"), "{e}");
    }

    #[test]
    fn substituted_values_can_be_escaped() {
        let v = vars(&[("p", "a.b")]);
        let out = render_with("^{{p}}$", &v, &|s| Cow::Owned(regex::escape(s))).unwrap();
        assert_eq!(out, r"^a\.b$");
    }

    proptest::proptest! {
        #[test]
        fn any_text_renders_or_errs_without_panicking(s in ".{0,64}") {
            let v = vars(&[("a", "1")]);
            let _ = render(&s, &v);
            let _ = references(&s);
        }
    }
}
