//! Cross-site scripting: an HTML tag scanner (tag names, attribute names and values as a
//! browser would split them, tolerant of the junk browsers skip) plus script-context breakouts
//! and script URIs.

const DANGEROUS_TAGS: &[&str] = &[
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "meta", "base", "link",
    "style", "svg", "math", "xml", "import", "form", "isindex", "xss", "template", "portal",
    "animate", "set", "handler", "listener", "layer", "ilayer",
];

const SCRIPT_SCHEMES: &[&str] = &[
    "javascript:",
    "vbscript:",
    "livescript:",
    "mocha:",
    "data:text/html",
    "data:image/svg",
    "data:application/x-",
    "jar:",
];

/// Words that only script calls (an argument list must follow).
const SINKS: &[&str] = &[
    "alert",
    "prompt",
    "confirm",
    "eval",
    "settimeout",
    "setinterval",
    "fromcharcode",
    "document.write",
    "document.cookie",
    "document.domain",
    "window.location",
    "fetch",
    "atob",
    "import",
    "constructor",
    "showmodaldialog",
    "execscript",
];

/// `javascript:` with the tabs, newlines and control characters browsers drop inside it.
fn has_script_scheme(v: &str) -> Option<&'static str> {
    let squeezed: String = v
        .chars()
        .filter(|c| !c.is_whitespace() && (*c as u32) >= 0x20 && *c != '\u{0}')
        .collect();
    SCRIPT_SCHEMES
        .iter()
        .find(|s| squeezed.contains(*s))
        .copied()
}

/// An attribute as a browser splits it: its name and its value (quotes removed).
struct Attr {
    name: String,
    value: String,
}

/// A tag at `b[i] == '<'`: its name and attributes, up to the `>` (or the end).
fn tag_at(b: &[u8], i: usize) -> Option<(String, Vec<Attr>, usize)> {
    let mut j = i + 1;
    if b.get(j) == Some(&b'/') {
        j += 1;
    }
    let name_start = j;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b':' | b'-' | b'_')) {
        j += 1;
    }
    if j == name_start {
        return None;
    }
    let raw = String::from_utf8_lossy(&b[name_start..j]).into_owned();
    // An SVG element injected with its namespace prefix is script-capable markup.
    let name = if raw.starts_with("svg:") {
        "svg".to_owned()
    } else {
        raw.rsplit(':').next().unwrap_or(&raw).to_owned()
    };
    let mut attrs = Vec::new();
    // Attributes: separated by whitespace, `/`, or junk browsers skip.
    while j < b.len() && b[j] != b'>' && b[j] != b'<' {
        let c = b[j];
        if c.is_ascii_alphabetic() {
            let s = j;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b'_' | b':'))
            {
                j += 1;
            }
            let name = String::from_utf8_lossy(&b[s..j]).into_owned();
            let mut value = String::new();
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            if b.get(k) == Some(&b'=') {
                k += 1;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                let from = k;
                match b.get(k) {
                    Some(&q @ (b'"' | b'\'' | b'`')) => {
                        let close = memchr::memchr(q, &b[k + 1..]).map(|e| k + 1 + e);
                        value = String::from_utf8_lossy(&b[k + 1..close.unwrap_or(b.len())])
                            .into_owned();
                        k = close.map_or(b.len(), |c| c + 1);
                    }
                    _ => {
                        while k < b.len() && !b[k].is_ascii_whitespace() && b[k] != b'>' {
                            k += 1;
                        }
                        value = String::from_utf8_lossy(&b[from..k]).into_owned();
                    }
                }
                j = k;
            }
            attrs.push(Attr { name, value });
        } else {
            j += 1;
        }
    }
    Some((name, attrs, j))
}

fn is_event_handler(attr: &str) -> bool {
    attr.len() > 3 && attr.starts_with("on") && attr[2..].bytes().all(|c| c.is_ascii_lowercase())
}

/// A call of a script sink: `alert(1)`, `alert``1```, `eval(...)`.
fn sink_call(v: &str) -> Option<&'static str> {
    SINKS.iter().copied().find(|s| {
        v.match_indices(s).any(|(at, _)| {
            let after = v[at + s.len()..].trim_start();
            let before_ok = at == 0 || !v.as_bytes()[at - 1].is_ascii_alphanumeric();
            before_ok
                && (after.starts_with('(')
                    || after.starts_with('`')
                    || after.starts_with('=') && s.contains('.'))
        })
    })
}

/// DOM events (after `on`) and the prefixes of event families.
const EVENTS: &[&str] = &[
    "abort",
    "blur",
    "change",
    "click",
    "dblclick",
    "copy",
    "cut",
    "paste",
    "load",
    "unload",
    "begin",
    "end",
    "ended",
    "finish",
    "help",
    "input",
    "invalid",
    "pause",
    "play",
    "playing",
    "progress",
    "ratechange",
    "redo",
    "undo",
    "reset",
    "resume",
    "search",
    "seeked",
    "seeking",
    "start",
    "storage",
    "submit",
    "timeerror",
    "toggle",
    "urlflip",
    "volumechange",
    "wheel",
    "message",
    "popstate",
    "hashchange",
    "canplay",
    "emptied",
    "stalled",
    "suspend",
    "waiting",
    "show",
    "cancel",
    "close",
    "auxclick",
    "move",
    "moveend",
    "movestart",
    "zoom",
    "drop",
    "readystatechange",
    "filterchange",
    "propertychange",
    "cellchange",
    "bounce",
    "error",
    "errorupdate",
    "mediaerror",
    "datasetcomplete",
    "datasetchanged",
    "dataavailable",
    "losecapture",
    "contextmenu",
    "select",
    "selectstart",
    "selectionchange",
    "scroll",
    "scrollend",
    "resize",
    "resizestart",
    "resizeend",
    "beforeunload",
];
const EVENT_PREFIXES: &[&str] = &[
    "before",
    "after",
    "mouse",
    "key",
    "drag",
    "pointer",
    "touch",
    "transition",
    "animation",
    "webkit",
    "moz",
    "focus",
    "row",
    "page",
    "media",
    "gotpointer",
    "lostpointer",
];

/// A DOM event handler name (`onmouseover`), not an English word that starts with `on`.
fn is_dom_handler(w: &str) -> bool {
    w.strip_prefix("on").is_some_and(|e| {
        !e.is_empty()
            && e.bytes().all(|c| c.is_ascii_lowercase())
            && (EVENTS.contains(&e) || EVENT_PREFIXES.iter().any(|p| e.starts_with(p)))
    })
}

/// CSS hex escapes (`\0065` is `e`) undone, CSS comments removed.
fn css_plain(n: &str) -> String {
    let mut out = String::with_capacity(n.len());
    let b = n.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let digits = b[i + 1..]
                .iter()
                .take(6)
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if digits > 0 {
                let cp = u32::from_str_radix(&n[i + 1..i + 1 + digits], 16).unwrap_or(0);
                if let Some(c) = char::from_u32(cp) {
                    out.push(c);
                }
                i += 1 + digits;
                if b.get(i) == Some(&b' ') {
                    i += 1;
                }
                continue;
            }
            i += 1;
            continue;
        }
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = n[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            continue;
        }
        let ch = n[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out.to_lowercase()
}

/// Detects XSS in a normalised value.
pub(super) fn detect(n: &str) -> Verdict {
    // US-ASCII with the high bit set (`¼script¾`) reads as tags in old browsers.
    let seven_bit;
    let n = if n.contains('¼') && n.contains('¾') {
        seven_bit = n.replace('¼', "<").replace('¾', ">").replace('¢', "\"");
        seven_bit.as_str()
    } else {
        n
    };
    CHECKS.iter().find_map(|check| check(n))
}

/// A verdict: the rule that fired and why.
type Verdict = Option<(&'static str, String)>;

/// The checks, in order: markup first, then script and CSS contexts, then probes.
const CHECKS: &[fn(&str) -> Verdict] = &[
    tags,
    attribute_breakout,
    script_uri,
    script_breakout,
    stripped_tag,
    indirect_call,
    navigation,
    handler_attribute,
    css,
    entities,
    probes,
];

/// Tags in the value: event handlers, data binding, dangerous elements, script URIs
/// and CSS in attributes.
fn tags(n: &str) -> Verdict {
    let b = n.as_bytes();
    for i in memchr::memchr_iter(b'<', b) {
        let Some((name, attrs, _end)) = tag_at(b, i) else {
            continue;
        };
        if let Some(h) = attrs.iter().find(|a| is_event_handler(&a.name)) {
            return Some(("xss.event_handler", format!("<{name} {}=…>", h.name)));
        }
        if attrs
            .iter()
            .any(|a| matches!(a.name.as_str(), "datasrc" | "datafld" | "dataformatas"))
        {
            return Some(("xss.data_binding", format!("<{name}> binding data as HTML")));
        }
        if DANGEROUS_TAGS.contains(&name.as_str())
            && !(name == "set" || name == "form" || name == "link")
        {
            return Some(("xss.dangerous_tag", format!("<{name}>")));
        }
        let tag_text = &n[i..n[i..].find('>').map_or(n.len(), |e| i + e)];
        if let Some(scheme) = has_script_scheme(tag_text) {
            return Some((
                "xss.script_uri_attribute",
                format!("<{name}> with {scheme}"),
            ));
        }
        if name == "link" && tag_text.contains("stylesheet") && tag_text.contains("//") {
            return Some((
                "xss.external_stylesheet",
                "<link> to another site's style sheet".into(),
            ));
        }
        if tag_text.contains("expression(")
            || tag_text.contains("expr/*")
            || tag_text.contains("-moz-binding")
            || tag_text.contains("behavior:")
        {
            return Some((
                "xss.css_expression",
                format!("<{name}> with a CSS script expression"),
            ));
        }
        if let Some(why) = attrs.iter().find_map(|a| injected_css(a)) {
            return Some(("xss.css_injection", format!("<{name} style=…> {why}")));
        }
        // SVG animation rewriting a link (`<set attributeName="xlink:href" to="//evil">`).
        let animates_link = matches!(name.as_str(), "set" | "animate")
            && attrs
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case("attributename") && a.value.ends_with("href"));
        if animates_link {
            return Some(("xss.svg_animation", format!("<{name}> rewriting a link")));
        }
        if let Some(a) = attrs.iter().find(|a| loads_from_elsewhere(&name, a)) {
            return Some((
                "xss.html_injection",
                format!("<{name} {}=…> loading from another site", a.name),
            ));
        }
    }
    None
}

/// A `style` attribute that loads something or hides what it says: CSS that fetches
/// (`url(`, `@import`), runs (`expression`, bindings), or is written in escapes (`\3c`) a
/// filter would not read.
fn injected_css(a: &Attr) -> Option<&'static str> {
    if a.name != "style" {
        return None;
    }
    let plain = css_plain(&a.value);
    if plain.contains("url(") || plain.contains("@import") || plain.contains("image-set(") {
        return Some("fetching a resource");
    }
    if plain.contains("expression") || plain.contains("binding") || plain.contains("behavior") {
        return Some("running script");
    }
    let escaped = a
        .value
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && w[1].is_ascii_hexdigit());
    escaped.then_some("written in CSS escapes")
}

/// Elements that fetch or link with an absolute URL to another site (`<img src="http://…">`,
/// `<a href="//evil">`): markup injected to exfiltrate or to phish.
fn loads_from_elsewhere(tag: &str, a: &Attr) -> bool {
    const FETCHING: &[&str] = &[
        "a", "img", "image", "layer", "ilayer", "bgsound", "input", "body", "table", "td", "div",
        "video", "audio", "source", "track", "area", "object", "embed", "frame", "iframe",
    ];
    const URL_ATTRS: &[&str] = &[
        "href",
        "src",
        "background",
        "dynsrc",
        "lowsrc",
        "action",
        "formaction",
        "data",
        "poster",
        "xlink:href",
    ];
    if !FETCHING.contains(&tag) || !URL_ATTRS.contains(&a.name.as_str()) {
        return false;
    }
    let v: String = a
        .value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    v.starts_with("http://")
        || v.starts_with("https://")
        || v.starts_with("ftp://")
        || v.starts_with("//")
}

/// Attribute breakout without a tag: `" onmouseover="alert(1)`, `' autofocus onfocus=…`.
fn attribute_breakout(n: &str) -> Verdict {
    for (at, _) in n.match_indices("on").filter(|_| n.contains('=')) {
        let before = n[..at].trim_end_matches([' ', '\t', '\n', '/', '+']);
        let quoted = before.ends_with(['"', '\'', '`']);
        let attr_end = n[at..]
            .find(|c: char| !c.is_ascii_lowercase())
            .map_or(n.len(), |e| at + e);
        let attr = &n[at..attr_end];
        let eq = n[attr_end..].trim_start().starts_with('=');
        if quoted && eq && is_event_handler(attr) {
            return Some((
                "xss.attribute_breakout",
                format!("closes an attribute, adds {attr}="),
            ));
        }
    }
    None
}

/// A `javascript:`-style URI where a URI goes.
fn script_uri(n: &str) -> Verdict {
    if let Some(scheme) = n.contains(':').then(|| has_script_scheme(n)).flatten()
        && (n
            .trim_start_matches([' ', '"', '\'', '`', '(', '='])
            .starts_with(scheme.trim_end_matches(':'))
            || sink_call(n).is_some()
            || [
                format!("\"{scheme}"),
                format!("'{scheme}"),
                format!("={scheme}"),
            ]
            .iter()
            .any(|p| n.contains(p.as_str())))
    {
        return Some(("xss.script_uri", format!("{scheme} URI")));
    }
    None
}

/// Script-context breakout: `';alert(1)//`, `"-alert(1)-"`, `</script><script>`.
fn script_breakout(n: &str) -> Verdict {
    if let Some(sink) = n.contains(['(', '`', '=']).then(|| sink_call(n)).flatten() {
        let before = &n[..n.find(sink).unwrap_or(0)];
        if before.contains(['\'', '"', ';', '>', '`', '=', '(', ',', '?'])
            || n.trim_start().starts_with(sink)
        {
            return Some((
                "xss.script_breakout",
                format!("breaks into script and calls {sink}"),
            ));
        }
    }
    None
}

/// Tags whose brackets a filter stripped (`scriptalert(1)/script`).
fn stripped_tag(n: &str) -> Verdict {
    for (at, _) in n.match_indices("script").filter(|_| n.contains(['(', '='])) {
        let after = &n[at + 6..];
        if after.starts_with(|c: char| c.is_ascii_alphabetic())
            && sink_call(after).is_some_and(|s| after.starts_with(s))
        {
            return Some((
                "xss.stripped_tag",
                "script tag without brackets calling script".into(),
            ));
        }
    }
    None
}

/// Indirect calls that dodge a sink's name: `(alert)(1)`, `top["al"+"ert"](1)`.
fn indirect_call(n: &str) -> Verdict {
    for pat in [
        "(alert)(",
        "(prompt)(",
        "(confirm)(",
        "top[",
        "window[",
        "self[",
        "parent[",
        "frames[",
    ]
    .into_iter()
    .filter(|_| n.contains(['(', '[']))
    {
        if let Some(at) = n.find(pat)
            && (pat.starts_with('(') || n[at + pat.len()..].starts_with(['"', '\'', '`']))
        {
            return Some(("xss.indirect_call", format!("script called through {pat}")));
        }
    }
    None
}

/// Navigation by script: `location="…"`, `location.href=…`.
fn navigation(n: &str) -> Verdict {
    for pat in [
        "location=",
        "location.href=",
        "location.replace(",
        "location.assign(",
    ]
    .into_iter()
    .filter(|_| n.contains("location"))
    {
        if let Some(at) = n.find(pat)
            && (at == 0
                || n[..at].trim_end().ends_with([';', '\'', '"', '>'])
                || n[..at].ends_with("document.")
                || n[..at].ends_with("window."))
        {
            return Some(("xss.navigation", format!("script navigation {pat}")));
        }
    }
    None
}

/// A handler attribute without a tag or quote before it: ` onerror=alert(1)>`.
fn handler_attribute(n: &str) -> Verdict {
    for (at, _) in n.match_indices("on").filter(|_| n.contains('=')) {
        if at > 0 && n.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let attr_end = n[at..]
            .find(|c: char| !c.is_ascii_lowercase())
            .map_or(n.len(), |e| at + e);
        let rest = n[attr_end..].trim_start();
        if let Some(value) = rest.strip_prefix('=')
            && is_dom_handler(&n[at..attr_end])
            && (sink_call(value).is_some() || has_script_scheme(value).is_some())
        {
            return Some((
                "xss.handler_attribute",
                format!("{}= calling script", &n[at..attr_end]),
            ));
        }
    }
    None
}

/// CSS that runs script: `expression(…)`, `behavior:`, `binding:` (escapes and comments
/// undone first).
fn css(n: &str) -> Verdict {
    if n.contains("expression")
        || n.contains("behavio")
        || n.contains("binding")
        || n.contains("url(")
        || n.contains('\\')
    {
        let css = css_plain(n);
        if css.contains("expression(")
            || css.contains("behavior:")
            || css.contains("behaviour:")
            || css.contains("-moz-binding")
        {
            return Some(("xss.css_expression", "CSS that runs script".into()));
        }
        if css.contains("url(")
            && let Some(scheme) = has_script_scheme(&css)
        {
            return Some(("xss.css_script_uri", format!("CSS url() with {scheme}")));
        }
    }
    None
}

/// Netscape JavaScript entities `&{…};`, style sheets pulled into XML.
fn entities(n: &str) -> Verdict {
    if let Some(at) = n.find("&{")
        && n[at..].contains('}')
    {
        return Some(("xss.js_entity", "&{…} script entity".into()));
    }
    if n.contains("<?xml-stylesheet") || n.contains("<xsl:stylesheet") {
        return Some(("xss.stylesheet", "XML style sheet instruction".into()));
    }
    None
}

/// Probes: a lone handler name, a lone encoded `<` (testing what a filter lets through).
fn probes(n: &str) -> Verdict {
    let t = n.trim();
    if is_dom_handler(t) {
        return Some((
            "xss.handler_probe",
            format!("the value is the handler name {t}"),
        ));
    }
    // UTF-7 `+ADw-script+AD4-`.
    if n.contains("+adw-") && (n.contains("script") || n.contains("+ad4-")) {
        return Some(("xss.utf7", "UTF-7 encoded tag".into()));
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
    fn test_tags_handlers_and_script_uris_are_found() {
        for v in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "%3Csvg%20onload%3Dalert(1)%3E",
            "<iframe src=javascript:alert(1)>",
        ] {
            let r = rule(v).unwrap_or_else(|| panic!("{v:?} not found"));
            assert!(r.starts_with("xss."), "{v:?}: {r}");
        }
        assert_eq!(
            rule("<img src=x onerror=alert(1)>"),
            Some("xss.event_handler")
        );
    }

    #[test]
    fn test_markup_without_script_and_prose_are_not_xss() {
        for v in [
            "<b>bold</b> and <i>italic</i>",
            "a < b and c > d",
            "1 <= 2",
            "see onerror in the docs",
            "<p class=\"note\">hi</p>",
            "<p style=\"color: red; font-weight: bold\">hi</p>",
            "<a href=\"/docs/intro\">intro</a>",
            "<img src=\"logo.png\" alt=\"logo\">",
        ] {
            assert_eq!(rule(v), None, "{v:?}");
        }
    }

    #[test]
    fn test_css_that_fetches_or_hides_and_markup_loading_from_elsewhere_are_found() {
        for (v, want) in [
            (
                "<div style=\"background:url(http://evil/x.png)\">",
                "xss.css_injection",
            ),
            (
                "<div style=content:url(test.svg)></div>",
                "xss.css_injection",
            ),
            (
                "<p style=\"font-family:'\\22\\3e\\3cimg'\">",
                "xss.css_injection",
            ),
            (
                "<a href=\"http://evil.example/login\">sign in</a>",
                "xss.html_injection",
            ),
            (
                "<IMG SRC=\"//evil.example/x.php?c=1\">",
                "xss.html_injection",
            ),
        ] {
            assert_eq!(rule(v), Some(want), "{v:?}");
        }
    }

    #[test]
    fn test_tag_at_reads_a_tag_and_its_attributes() {
        let b = b"x <img src='a b' onerror=b> y";
        let (name, attrs, _end) = tag_at(b, 2).expect("a tag");
        assert_eq!(name, "img");
        let pairs: Vec<(&str, &str)> = attrs
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(pairs, [("src", "a b"), ("onerror", "b")]);
        assert!(is_event_handler("onmouseover") && !is_event_handler("one"));
    }
}
