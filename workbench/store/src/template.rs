//! Path templates (`/users/{userId}`): the one set of rules for what a template matches, used by
//! discovery (which known endpoint does new traffic belong to), the store's queries (which
//! transactions are an endpoint's) and the views (which endpoints a template hides).
//!
//! A `{parameter}` segment matches any one segment; a literal segment matches only itself.

/// One segment of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A literal segment (`users`).
    Lit(&'a str),
    /// A parameter (`{userId}` → `userId`).
    Param(&'a str),
}

impl<'a> Segment<'a> {
    /// Reads one segment.
    pub fn of(s: &'a str) -> Segment<'a> {
        match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name),
            None => Segment::Lit(s),
        }
    }

    /// Whether every segment `specific` matches, this one matches too.
    pub fn covers(self, specific: Segment<'_>) -> bool {
        match (self, specific) {
            (Segment::Param(_), _) => true,
            (Segment::Lit(a), Segment::Lit(b)) => a == b,
            (Segment::Lit(_), Segment::Param(_)) => false,
        }
    }
}

/// A template's segments after the leading `/` (`/` itself has none).
pub fn segments(template: &str) -> impl Iterator<Item = Segment<'_>> {
    let rest = template.strip_prefix('/').unwrap_or(template);
    rest.split('/')
        .filter(move |_| !rest.is_empty())
        .map(Segment::of)
}

/// Whether every path `specific` matches, `general` matches too: as many segments, each of
/// `general`'s covering `specific`'s (`/users/{id}` covers `/users/me` and itself).
pub fn covers(general: &str, specific: &str) -> bool {
    let mut g = segments(general);
    let mut s = segments(specific);
    loop {
        match (g.next(), s.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.covers(b) => {}
            _ => return false,
        }
    }
}

/// The anchored regular expression (RE2/DuckDB syntax) of the paths a template matches:
/// literal segments escaped, each parameter one segment, and one trailing `/` allowed (as
/// discovery templates `/users/7/` as `/users/{userId}`).
pub fn regex(template: &str) -> String {
    let mut re = String::from("^");
    for seg in segments(template) {
        re.push('/');
        match seg {
            Segment::Lit(s) => escape_into(s, &mut re),
            Segment::Param(_) => re.push_str("[^/]+"),
        }
    }
    re.push_str(if re.len() == 1 { "/" } else { "/?" });
    re.push('$');
    re
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_covers() {
        assert!(covers("/users/{id}", "/users/me"));
        assert!(covers("/users/{id}", "/users/{id}"));
        assert!(covers("/a/{x}/{y}", "/a/{x}/b"));
        assert!(!covers("/users/me", "/users/{id}"));
        assert!(!covers("/users/{id}", "/users/1/orders"));
        assert!(covers("/", "/"));
        assert!(!covers("/", "/a"));
    }

    #[test]
    fn test_regex_matches_one_segment_per_parameter() {
        assert_eq!(regex("/users/{id}/orders"), "^/users/[^/]+/orders/?$");
        assert_eq!(regex("/a.b/{x}"), "^/a\\.b/[^/]+/?$");
        assert_eq!(regex("/"), "^/$");
    }
}
