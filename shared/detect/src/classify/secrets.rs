//! Secrets: vendor tokens by their exact prefixes, alphabets and lengths (one Aho-Corasick
//! pass finds every prefix), JWTs whose header decodes, PEM/PGP private key blocks, Basic
//! credentials, URL passwords, and `name = value` assignments whose name says "secret".

use super::checks::entropy;
use super::hint::{Hint, is_placeholder, looks_secret, vendor_class};
use super::{Confidence, DataClass, Scan, is_word};
use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use std::sync::LazyLock;

#[derive(Clone, Copy)]
enum Kind {
    AwsId,
    Gcp,
    Github,
    Gitlab,
    Slack,
    SlackHook,
    Stripe,
    Sendgrid,
    Openai,
    Pem,
    Jwt,
    Basic,
    UrlCreds,
    AzureClientSecret,
    GcpServiceAccount,
}

const PREFIXES: &[(&str, Kind)] = &[
    ("AKIA", Kind::AwsId),
    ("ASIA", Kind::AwsId),
    ("ABIA", Kind::AwsId),
    ("ACCA", Kind::AwsId),
    ("AIza", Kind::Gcp),
    ("ghp_", Kind::Github),
    ("gho_", Kind::Github),
    ("ghu_", Kind::Github),
    ("ghs_", Kind::Github),
    ("ghr_", Kind::Github),
    ("github_pat_", Kind::Github),
    ("glpat-", Kind::Gitlab),
    ("gloas-", Kind::Gitlab),
    ("glrt-", Kind::Gitlab),
    ("glptt-", Kind::Gitlab),
    ("gldt-", Kind::Gitlab),
    ("GR1348941", Kind::Gitlab),
    ("xoxb-", Kind::Slack),
    ("xoxp-", Kind::Slack),
    ("xoxa-", Kind::Slack),
    ("xoxr-", Kind::Slack),
    ("xoxs-", Kind::Slack),
    ("xoxe-", Kind::Slack),
    ("xapp-", Kind::Slack),
    ("hooks.slack.com/", Kind::SlackHook),
    ("sk_live_", Kind::Stripe),
    ("sk_test_", Kind::Stripe),
    ("rk_live_", Kind::Stripe),
    ("rk_test_", Kind::Stripe),
    ("rk_prod_", Kind::Stripe),
    ("SG.", Kind::Sendgrid),
    ("sk-", Kind::Openai),
    ("-----BEGIN ", Kind::Pem),
    ("eyJ", Kind::Jwt),
    ("ewogIC", Kind::Jwt),
    ("Basic ", Kind::Basic),
    ("basic ", Kind::Basic),
    ("://", Kind::UrlCreds),
    ("Q~", Kind::AzureClientSecret),
    ("service_account", Kind::GcpServiceAccount),
];

static AUTOMATON: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(PREFIXES.iter().map(|(p, _)| p))
        .ok()
});

/// Example keys published in SDKs and documentation: not secrets of anyone's.
const PUBLISHED_EXAMPLES: &[&str] = &[
    // firebase-android-sdk sample configuration keys.
    "AIzaSyabcdefghijklmnopqrstuvwxyz1234567",
    "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
    "AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM",
    "AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU",
    "AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0",
    "AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A",
    "AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c",
    "AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4",
    "AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY",
    "AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM",
    "AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ",
    "AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g",
    "AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU",
    "AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw",
    "AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE",
    "AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY",
];

pub(super) fn scan(s: &mut Scan<'_, '_>) {
    let b = s.b;
    if let Some(ac) = AUTOMATON.as_ref() {
        let mut resume = 0;
        for m in ac.find_iter(b) {
            if m.start() < resume {
                continue;
            }
            let (_, kind) = PREFIXES[m.pattern().as_usize()];
            if let Some(end) = token(s, kind, m.start(), m.end()) {
                resume = end;
            }
        }
    }
    assignments(s);
    azure_storage_keys(s);
}

/// Length of the run of bytes from `at` that satisfy `f`.
fn run(b: &[u8], at: usize, f: impl Fn(u8) -> bool) -> usize {
    b.get(at..)
        .map_or(0, |t| t.iter().take_while(|&&c| f(c)).count())
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// A prefix the automaton found: where it starts and ends, and whether a word boundary
/// comes before it.
#[derive(Clone, Copy)]
struct Prefix {
    start: usize,
    pend: usize,
    bounded: bool,
}

/// Validates the token whose prefix is at `start..pend`; records it and returns its end.
fn token(s: &mut Scan<'_, '_>, kind: Kind, start: usize, pend: usize) -> Option<usize> {
    let bounded = start == 0 || !is_word(s.b[start - 1]);
    let p = Prefix {
        start,
        pend,
        bounded,
    };
    match kind {
        Kind::Pem => pem(s, start, pend),
        Kind::AwsId => aws_id(s, p),
        Kind::Gcp => gcp(s, p),
        Kind::Github => github(s, p),
        Kind::Gitlab => gitlab(s, p),
        Kind::Slack => slack(s, p),
        Kind::SlackHook => slack_hook(s, p),
        Kind::Stripe => stripe(s, p),
        Kind::Sendgrid => sendgrid(s, p),
        Kind::Openai => openai(s, p),
        Kind::GcpServiceAccount => gcp_service_account(s, p),
        Kind::Jwt => jwt_token(s, p),
        Kind::Basic => basic(s, p),
        Kind::UrlCreds => url_creds(s, p),
        Kind::AzureClientSecret => azure_client_secret(s, p),
    }
}

/// Records a high-confidence token at `p.start..end` unless its body is a placeholder.
fn accept(s: &mut Scan<'_, '_>, class: DataClass, p: Prefix, end: usize) -> Option<usize> {
    if is_placeholder(&s.b[p.pend..end]) {
        return None;
    }
    s.push(class, p.start, end, Confidence::High);
    Some(end)
}

/// An AWS access key id (`AKIA…`): 16 more upper-case letters or digits; a secret
/// key that follows it is recorded too.
fn aws_id(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let end = p.pend + 16;
    if !p.bounded || n != 16 || b.get(end).is_some_and(|&c| alnum(c)) {
        return None;
    }
    // AWS documentation keys end in EXAMPLE.
    if b[p.start..end].ends_with(b"EXAMPLE") {
        return None;
    }
    s.push(DataClass::AwsAccessKeyId, p.start, end, Confidence::High);
    aws_secret_after(s, end);
    Some(end)
}

/// A Google API key (`AIza…`): 35 base64url characters with a random look.
fn gcp(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, b64url);
    let end = p.pend + 35;
    if !p.bounded || n != 35 {
        return None;
    }
    let key = std::str::from_utf8(&b[p.start..end]).ok()?;
    if PUBLISHED_EXAMPLES.contains(&key) || entropy(&b[p.start..end]) < 3.5 {
        return None;
    }
    accept(s, DataClass::GcpApiKey, p, end)
}

/// A GitHub token (`ghp_…`, `github_pat_…`).
fn github(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, |c| alnum(c) || c == b'_');
    if !p.bounded || !(36..=255).contains(&n) {
        return None;
    }
    accept(s, DataClass::GithubToken, p, p.pend + n)
}

/// A GitLab token (`glpat-…`; `gloas-` with 64 hex digits).
fn gitlab(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, |c| b64url(c) || c == b'.');
    let prefix = &b[p.start..p.pend];
    let ok = if prefix == b"gloas-" {
        n == 64 && b[p.pend..p.pend + n].iter().all(u8::is_ascii_hexdigit)
    } else {
        (20..=255).contains(&n)
    };
    if !p.bounded || !ok {
        return None;
    }
    accept(s, DataClass::GitlabToken, p, p.pend + n)
}

/// A Slack token (`xox…-`), not a template or a channel reference.
fn slack(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, |c| alnum(c) || c == b'-');
    let body = &b[p.pend..p.pend + n];
    let next = b.get(p.pend + n).copied().unwrap_or(b' ');
    if !p.bounded
        || n < 20
        || body.ends_with(b"-")
        || !body.contains(&b'-') && !b[p.start..p.pend].starts_with(b"xoxe")
        || matches!(next, b'#' | b'*' | b'<' | b'{' | b'$' | b'.')
    {
        return None;
    }
    accept(s, DataClass::SlackToken, p, p.pend + n)
}

/// A Slack webhook URL (`hooks.slack.com/services/T…`).
fn slack_hook(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let path = &b[p.pend..];
    let ok = path.starts_with(b"services/T")
        || path.starts_with(b"workflows/T")
        || path.starts_with(b"triggers/T");
    let n = run(b, p.pend, |c| alnum(c) || c == b'/' || c == b'_');
    if !ok || n < 30 {
        return None;
    }
    // Include the scheme when it is there.
    let from = if p.start >= 8 && b[..p.start].ends_with(b"https://") {
        p.start - 8
    } else {
        p.start
    };
    s.push(DataClass::SlackWebhook, from, p.pend + n, Confidence::High);
    Some(p.pend + n)
}

/// A Stripe key (`sk_live_…`, `rk_live_…`).
fn stripe(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, alnum);
    if !p.bounded || n < 16 {
        return None;
    }
    accept(s, DataClass::StripeKey, p, p.pend + n)
}

/// A SendGrid key (`SG.` then two base64url parts).
fn sendgrid(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let a = run(b, p.pend, b64url);
    let dot = p.pend + a;
    if !p.bounded || !(16..=32).contains(&a) || b.get(dot) != Some(&b'.') {
        return None;
    }
    let c = run(b, dot + 1, b64url);
    if !(30..=64).contains(&c) {
        return None;
    }
    accept(s, DataClass::SendgridKey, p, dot + 1 + c)
}

/// An OpenAI key (`sk-…`): two random halves around `T3BlbkFJ`, or a project key.
fn openai(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, b64url);
    let body = &b[p.pend..p.pend + n];
    if !p.bounded || n < 20 {
        return None;
    }
    let ok = match memchr::memmem::find(body, b"T3BlbkFJ") {
        Some(at) => {
            // `sk-admin-`/`sk-proj-` lead words are not part of the random halves.
            let lead = [&b"admin-"[..], b"proj-", b"svcacct-"]
                .iter()
                .find(|p| body.starts_with(p))
                .map_or(0, |p| p.len());
            at.saturating_sub(lead) >= 20 && n - at - 8 >= 20
        }
        None => {
            (body.starts_with(b"proj-")
                || body.starts_with(b"svcacct-")
                || body.starts_with(b"admin-"))
                && n >= 40
        }
    };
    if !ok {
        return None;
    }
    accept(s, DataClass::OpenaiKey, p, p.pend + n)
}

/// A Google service-account key file: `"type": "service_account"` with its
/// private key.
fn gcp_service_account(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    // `"type": "service_account"` in a key file that carries its private key.
    let quoted = p.start > 0
        && b[p.start - 1] == b'"'
        && b.get(p.pend).is_some_and(|&c| c == b'"' || c == b'\\');
    let typed = memchr::memmem::find(&b[p.start.saturating_sub(24)..p.start], b"type").is_some();
    if !quoted || !typed || memchr::memmem::find(b, b"private_key").is_none() {
        return None;
    }
    s.push(
        DataClass::GcpServiceAccount,
        p.start,
        p.pend,
        Confidence::High,
    );
    Some(p.pend)
}

/// A JWT at a word boundary.
fn jwt_token(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let end = jwt(b, p.start)?;
    if !p.bounded {
        return None;
    }
    accept(s, DataClass::Jwt, p, end)
}

/// HTTP Basic credentials: base64 of `user:password`.
fn basic(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let n = run(b, p.pend, |c| b64(c) || c == b'=');
    if n < 8 {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&b[p.pend..p.pend + n])
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    if !text.contains(':') || text.chars().any(char::is_control) {
        return None;
    }
    s.push(DataClass::BasicAuth, p.pend, p.pend + n, Confidence::High);
    Some(p.pend + n)
}

/// The password in `scheme://user:password@host`.
fn url_creds(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    // scheme://user:password@host — the password.
    let rest = &b[p.pend..];
    let stop = rest
        .iter()
        .position(|&c| matches!(c, b'/' | b'@' | b' ' | b'"' | b'\'' | b'<' | b'>' | b'\n'))?;
    if rest[stop] != b'@' {
        return None;
    }
    let colon = memchr::memchr(b':', &rest[..stop])?;
    let pw = &rest[colon + 1..stop];
    if pw.is_empty() || is_placeholder(pw) {
        return None;
    }
    s.push(
        DataClass::Password,
        p.pend + colon + 1,
        p.pend + stop,
        Confidence::Medium,
    );
    Some(p.pend + stop)
}

/// An Azure client secret (`…Q~…`, 3 characters then a digit before the marker).
fn azure_client_secret(s: &mut Scan<'_, '_>, p: Prefix) -> Option<usize> {
    let b = s.b;
    let charset = |c: u8| alnum(c) || matches!(c, b'_' | b'~' | b'.');
    if p.start < 4 || !b[p.start - 1].is_ascii_digit() {
        return None;
    }
    let from = p.start - 4;
    if !b[from..p.start - 1].iter().all(|&c| charset(c))
        || (from > 0 && (charset(b[from - 1]) || b[from - 1] == b'-'))
    {
        return None;
    }
    let n = run(b, p.pend, |c| charset(c) || c == b'-');
    if !(31..=34).contains(&n) || b[p.pend..p.pend + n].iter().all(|&c| c == b'~') {
        return None;
    }
    s.push(
        DataClass::AzureClientSecret,
        from,
        p.pend + n,
        Confidence::High,
    );
    Some(p.pend + n)
}

/// A JWS compact token from `start`: header and payload base64url JSON objects (no padding),
/// the header naming an algorithm or type; the signature may be empty (`alg: none`).
fn jwt(b: &[u8], start: usize) -> Option<usize> {
    let h = run(b, start, b64url);
    let dot1 = start + h;
    if h < 10 || b.get(dot1) != Some(&b'.') {
        return None;
    }
    let p = run(b, dot1 + 1, b64url);
    let dot2 = dot1 + 1 + p;
    if p < 4 || !b[dot1 + 1..].starts_with(b"e") || b.get(dot2) != Some(&b'.') {
        return None;
    }
    let sig = run(b, dot2 + 1, b64url);
    let end = dot2 + 1 + sig;
    if b.get(end)
        .is_some_and(|&c| c == b'=' || c == b'.' || is_word(c))
    {
        return None;
    }
    let header = &b[start..dot1];
    let raw = crate::jwt::decode_part(&header[..header.len().min(1024)])?;
    let opens = raw.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{');
    let names = memchr::memmem::find(&raw, b"\"alg\"").is_some()
        || memchr::memmem::find(&raw, b"\"typ\"").is_some();
    (opens && names).then_some(end)
}

fn pem(s: &mut Scan<'_, '_>, start: usize, pend: usize) -> Option<usize> {
    let b = s.b;
    let label_len = memchr::memmem::find(&b[pend..b.len().min(pend + 64)], b"-----")?;
    let label = &b[pend..pend + label_len];
    memchr::memmem::find(label, b"PRIVATE KEY")?;
    let body_start = pend + label_len + 5;
    let rest = &b[body_start..];
    let (body, end) = match memchr::memmem::find(rest, b"-----END") {
        Some(e) => {
            let close =
                memchr::memmem::find(&rest[e + 8..], b"-----").map_or(e + 8, |c| e + 8 + c + 5);
            (&rest[..e], body_start + close)
        }
        None => {
            let n = rest
                .iter()
                .take_while(|&&c| b64(c) || c == b'=' || c.is_ascii_whitespace() || c == b'\\')
                .count();
            (&rest[..n], body_start + n)
        }
    };
    let key_chars = body.iter().filter(|&&c| b64(c)).count();
    if key_chars < 40 || entropy(body) < 3.0 {
        return None;
    }
    s.push(DataClass::PrivateKey, start, end, Confidence::High);
    Some(end)
}

/// A 40-character secret key within a few lines after an AWS key id.
fn aws_secret_after(s: &mut Scan<'_, '_>, from: usize) {
    let b = s.b;
    let window = &b[from..b.len().min(from + 200)];
    let mut i = 0;
    while i < window.len() {
        if b64(window[i]) && (i == 0 || !b64(window[i - 1])) {
            let n = run(window, i, b64);
            if n == 40 && window.get(i + n).is_none_or(|&c| !b64(c) && c != b'=') {
                let tok = &window[i..i + n];
                let mixed = tok.iter().any(u8::is_ascii_lowercase)
                    && tok.iter().any(u8::is_ascii_uppercase);
                if mixed && !is_placeholder(tok) && entropy(tok) > 4.0 {
                    s.push(
                        DataClass::AwsSecretAccessKey,
                        from + i,
                        from + i + n,
                        Confidence::High,
                    );
                    return;
                }
            }
            i += n.max(1);
        } else {
            i += 1;
        }
    }
}

/// An Azure storage account key: 64 random bytes in base64 (88 characters ending `==`), next
/// to a name that says key.
fn azure_storage_keys(s: &mut Scan<'_, '_>) {
    let b = s.b;
    if b.len() < 88 {
        return;
    }
    for eq in memchr::memchr_iter(b'=', &b[86..]).map(|i| i + 86) {
        if b.get(eq + 1) != Some(&b'=') || b.get(eq + 2).is_some_and(|&c| b64(c) || c == b'=') {
            continue;
        }
        let start = eq - 86;
        if !b[start..eq].iter().all(|&c| b64(c)) || (start > 0 && b64(b[start - 1])) {
            continue;
        }
        let window = &b[start.saturating_sub(120)..start];
        let keyish = s.key.has(Hint::SECRET)
            || s.key.has(Hint::AZURE)
            || window.windows(3).any(|w| w.eq_ignore_ascii_case(b"key"));
        if keyish && entropy(&b[start..eq]) > 4.5 {
            s.push(
                DataClass::AzureStorageKey,
                start,
                eq + 2,
                Confidence::Medium,
            );
        }
    }
}

/// `name = value`, `name: value`, `"name": "value"`, `name => value` in free text, where the
/// name says password or secret.
fn assignments(s: &mut Scan<'_, '_>) {
    let b = s.b;
    for sep in memchr::memchr2_iter(b'=', b':', b) {
        let next = b.get(sep + 1).copied().unwrap_or(b' ');
        if next == b'='
            || next == b'/'
            || next == b':'
            || (sep > 0 && matches!(b[sep - 1], b'=' | b':' | b'!' | b'<' | b'>'))
        {
            continue;
        }
        // The name, right to left.
        let mut k = sep;
        while k > 0 && matches!(b[k - 1], b' ' | b'\t') {
            k -= 1;
        }
        if k > 0 && matches!(b[k - 1], b'"' | b'\'') {
            k -= 1;
        }
        let kend = k;
        while k > 0 && (is_word(b[k - 1]) || matches!(b[k - 1], b'-' | b'.')) {
            k -= 1;
        }
        if k == kend || kend - k > 64 {
            continue;
        }
        let Ok(name) = std::str::from_utf8(&b[k..kend]) else {
            continue;
        };
        let hint = Hint::from_key(name);
        if !hint.has(Hint::PASSWORD) && !hint.has(Hint::SECRET) {
            continue;
        }
        // The value, left to right.
        let mut v = sep + 1;
        if next == b'>' {
            v += 1;
        }
        while v < b.len() && matches!(b[v], b' ' | b'\t') {
            v += 1;
        }
        let quote = b
            .get(v)
            .copied()
            .filter(|c| matches!(c, b'"' | b'\'' | b'`'));
        if quote.is_some() {
            v += 1;
        }
        let vend = match quote {
            Some(q) => v + memchr::memchr(q, &b[v..]).unwrap_or(0),
            None => {
                v + b[v..]
                    .iter()
                    .take_while(|&&c| {
                        !c.is_ascii_whitespace()
                            && !matches!(
                                c,
                                b',' | b';'
                                    | b'&'
                                    | b')'
                                    | b'}'
                                    | b']'
                                    | b'<'
                                    | b'>'
                                    | b'"'
                                    | b'\''
                            )
                    })
                    .count()
            }
        };
        let value = &b[v..vend];
        if value.is_empty() {
            continue;
        }
        if hint.has(Hint::PASSWORD) {
            if value.len() <= 128 && !is_placeholder(value) && !value.contains(&b'\n') {
                s.push(DataClass::Password, v, vend, Confidence::Medium);
            }
        } else if looks_secret(value) {
            let class = refine(value, hint);
            s.push(class, v, vend, Confidence::Medium);
        }
    }
}

/// The most specific class of a secret-named value.
pub(super) fn refine(value: &[u8], hint: Hint) -> DataClass {
    if value.len() == 88 && value.ends_with(b"==") {
        return DataClass::AzureStorageKey;
    }
    if value.len() == 40 && hint.has(Hint::AWS) {
        return DataClass::AwsSecretAccessKey;
    }
    vendor_class(hint).unwrap_or(DataClass::GenericSecret)
}
