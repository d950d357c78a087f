//! Cross-site scripting: markup read by an HTML tokenizer ([`super::html`]) from each context a
//! value can land in, plus script-context breakouts and script URIs.

use super::html::{self, Attr, Context, Origin, Quote, StartTag, Token};
use super::js;

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

/// Besides the script engine's sinks ([`js::SINKS`]): properties read or written for effect.
const PROPERTY_SINKS: &[&str] = &[
    "document.cookie",
    "document.domain",
    "window.location",
    "fetch",
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

fn is_event_handler(attr: &str) -> bool {
    // Old engines dropped NUL in names (`onerror%00=`).
    let attr = attr.trim_end_matches('\0');
    attr.len() > 3 && attr.starts_with("on") && attr[2..].bytes().all(|c| c.is_ascii_lowercase())
}

/// A call of a script sink: `alert(1)`, `alert``1```, `eval(...)`.
fn sink_call(v: &str) -> Option<&'static str> {
    js::SINKS.iter().chain(PROPERTY_SINKS).copied().find(|s| {
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
    script_uri,
    script_context,
    stripped_tag,
    indirect_call,
    navigation,
    handler_attribute,
    css,
    entities,
    probes,
];

/// Markup in the value, read by the HTML tokenizer from every context the value could land
/// in: tags it opens, and attributes it adds to the page's tag by closing an attribute value.
fn tags(n: &str) -> Verdict {
    markup(n).or_else(|| {
        // In a query string or form body, `+` is the space the application reads.
        let form_decoded = n.contains('+') && !n.contains(' ');
        form_decoded.then(|| markup(&n.replace('+', " "))).flatten()
    })
}

fn markup(n: &str) -> Verdict {
    let b = n.as_bytes();
    let mut contexts = Vec::with_capacity(4);
    if memchr::memchr(b'<', b).is_some() {
        contexts.push(Context::Data);
    }
    // Out of an attribute value, a value only matters by adding an attribute with a value.
    if memchr::memchr(b'=', b).is_some() {
        if memchr::memchr(b'"', b).is_some() {
            contexts.push(Context::Attribute(Quote::Double));
        }
        if memchr::memchr(b'\'', b).is_some() {
            contexts.push(Context::Attribute(Quote::Single));
        }
        if b.iter().any(u8::is_ascii_whitespace) {
            contexts.push(Context::Attribute(Quote::Unquoted));
        }
    }
    contexts.into_iter().find_map(|context| {
        html::tokens(n, context).iter().find_map(|t| match t {
            Token::Start(tag) => match tag.origin {
                Origin::Value => judge_tag(n, tag),
                Origin::Enclosing => judge_added(tag),
            },
            Token::End(name) if RAW_TEXT_CLOSERS.contains(&name.as_str()) => Some((
                "xss.raw_text_breakout",
                format!("</{name}> closes the element the value landed in"),
            )),
            _ => None,
        })
    })
}

/// End tags that leave a raw-text element (script, style, …) for markup, or foreign content
/// (`svg`, `math`) for HTML — the breakouts, and the parser switches mutation XSS rides on.
const RAW_TEXT_CLOSERS: &[&str] = &[
    "script", "style", "title", "textarea", "iframe", "noscript", "xmp", "noembed", "noframes",
    "template", "svg", "math",
];

/// A tag the value opened: event handlers, data binding, dangerous elements, script URIs and
/// CSS in attributes, markup loading from elsewhere.
fn judge_tag(n: &str, tag: &StartTag) -> Verdict {
    let name = tag_name(&tag.name);
    let attrs = &tag.attrs;
    if let Some(h) = attrs.iter().find(|a| is_event_handler(&a.name)) {
        return Some(("xss.event_handler", format!("<{name} {}=…>", h.name)));
    }
    if attrs
        .iter()
        .any(|a| matches!(a.name.as_str(), "datasrc" | "datafld" | "dataformatas"))
    {
        return Some(("xss.data_binding", format!("<{name}> binding data as HTML")));
    }
    if DANGEROUS_TAGS.contains(&name) && !(name == "set" || name == "form" || name == "link") {
        return Some(("xss.dangerous_tag", format!("<{name}>")));
    }
    let tag_text = &n[tag.span.clone()];
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
    if let Some(why) = attrs.iter().find_map(injected_css) {
        return Some(("xss.css_injection", format!("<{name} style=…> {why}")));
    }
    // SVG animation rewriting a link (`<set attributeName="xlink:href" to="//evil">`).
    // Animation (SVG, or IE's time behaviour) rewriting a link, a handler or markup
    // (`<set attributeName="xlink:href" to="//evil">`, `attributename="onmouseover"`).
    let animates = matches!(name, "set" | "animate")
        && attrs.iter().any(|a| {
            a.name == "attributename"
                && (a.value.ends_with("href")
                    || is_event_handler(&a.value)
                    || matches!(a.value.as_str(), "innerhtml" | "outerhtml" | "src"))
        });
    if animates {
        return Some((
            "xss.svg_animation",
            format!("<{name}> rewriting an attribute"),
        ));
    }
    if let Some(a) = attrs.iter().find(|a| loads_from_elsewhere(name, a)) {
        return Some((
            "xss.html_injection",
            format!("<{name} {}=…> loading from another site", a.name),
        ));
    }
    None
}

/// A tag's local name: `svg:svg` is `svg`, `x:script` is `script`.
fn tag_name(raw: &str) -> &str {
    if raw.starts_with("svg:") {
        "svg"
    } else {
        raw.rsplit(':').next().unwrap_or(raw)
    }
}

/// Attributes a value added to the page's tag by closing the attribute value it landed in
/// (`" onmouseover="…`, `x autofocus onfocus=…`). Unquoted, a space is enough to add one,
/// so there only DOM event names count (`online=1` is prose), or a handler that calls script.
fn judge_added(tag: &StartTag) -> Verdict {
    for a in tag.added_attrs() {
        // A handler without a value runs nothing (`see onerror in the docs`).
        let handler = !a.value.is_empty() && is_dom_handler(&a.name)
            || is_event_handler(&a.name)
                && (sink_call(&a.value).is_some() || has_script_scheme(&a.value).is_some());
        if handler {
            return Some((
                "xss.attribute_breakout",
                format!("closes an attribute, adds {}=", a.name),
            ));
        }
        if let Some(why) = injected_css(a) {
            return Some(("xss.css_injection", format!("adds style=… {why}")));
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

/// The value read as script from each context it could land in (code, or a quoted literal it
/// closes): a sink called or a navigating property assigned where an expression may start.
fn script_context(n: &str) -> Verdict {
    if !n.contains(['(', '`', '=']) {
        return None;
    }
    let b = n.as_bytes();
    let literals = [b'\'', b'"', b'`']
        .into_iter()
        .filter(|q| memchr::memchr(*q, b).is_some());
    let mut found = std::iter::once(js::Start::Code)
        .chain(literals.clone().map(js::Start::Literal))
        .find_map(|start| js::effect(n, start).map(|e| (start, e, "")));
    // An application that escapes the quote but not the backslash (`\"` becomes `\\"`) lets
    // the value's own backslash cancel the escape.
    for q in literals.filter(|&q| n.contains(&format!("\\{}", q as char))) {
        if found.is_some() {
            break;
        }
        let escaped = n.replace(q as char, &format!("\\{}", q as char));
        found = js::effect(&escaped, js::Start::Literal(q))
            .map(|e| (js::Start::Literal(q), e, " escaped by the application"));
    }
    found.map(|(start, effect, escaped)| {
        let from = match start {
            js::Start::Code => "as script".to_owned(),
            js::Start::Literal(q) => format!("after closing a {} literal{escaped}", q as char),
        };
        let does = match effect {
            js::Effect::Calls(sink) => format!("calls {sink}"),
            js::Effect::Assigns(p) => format!("assigns {p}"),
        };
        ("xss.script_breakout", format!("{from}, {does}"))
    })
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
    // Server-side includes run a command or pull a file into the page.
    if n.contains("<!--#exec") || n.contains("<!--#include") {
        return Some((
            "xss.server_side_include",
            "server-side include directive".into(),
        ));
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
    fn test_handler_names_are_told_from_words() {
        assert!(is_event_handler("onmouseover") && !is_event_handler("one"));
        assert!(is_dom_handler("onfocus") && !is_dom_handler("online"));
    }

    #[test]
    fn test_values_that_break_out_of_an_attribute_are_found() {
        for v in [
            "x\" onmouseover=\"alert(1)",
            "x' onfocus='alert(1)' autofocus='",
            "x onfocus=alert(1) autofocus",
            "\"style=\"background:url(//evil/x)",
        ] {
            assert!(rule(v).is_some(), "{v:?}");
        }
        for v in ["he said \"hi\" online=1", "o'neil online", "size=3 one=4"] {
            assert_eq!(rule(v), None, "{v:?}");
        }
    }
}
