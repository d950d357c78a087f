//! Who sent a request: the client address and, when the request says so, the principal (JWT
//! subject, Basic user), the API key and the session — the identities findings group by.
//! Keys and sessions are kept shortened (first six characters and a hash tag) so a case never
//! stores a usable credential.

use super::profile::{API_KEY_HEADERS, is_session_cookie};
use base64::Engine as _;
use tapline_core::Transaction;
use tapline_store::endpoints::Actor;

/// A credential shortened to something recognisable but unusable: `abc123…#1f2e`.
pub fn shorten(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    let tag = blake3::hash(secret.as_bytes()).to_hex();
    format!("{head}…#{}", &tag.as_str()[..4])
}

/// The JWT's `sub` claim (or `username`, `email`), without verifying the signature: the token
/// is evidence of who the client claims to be.
fn jwt_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    [
        "sub",
        "username",
        "preferred_username",
        "email",
        "user_id",
        "uid",
    ]
    .iter()
    .find_map(|k| match claims.get(k)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The actor of a transaction's request.
pub fn actor_of(tx: &Transaction) -> Actor {
    let mut a = Actor {
        ip: tx.client.map(|c| c.ip().to_string()),
        ..Actor::default()
    };
    for (name, value) in tx.request_headers.iter() {
        if name.eq_ignore_ascii_case("authorization") {
            let (scheme, cred) = value.trim().split_once(' ').unwrap_or(("", value));
            if scheme.eq_ignore_ascii_case("bearer") {
                match jwt_subject(cred.trim()) {
                    Some(sub) => a.user = Some(sub),
                    None => a.key = Some(shorten(cred.trim())),
                }
            } else if scheme.eq_ignore_ascii_case("basic") {
                let user = base64::engine::general_purpose::STANDARD
                    .decode(cred.trim())
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .and_then(|s| s.split_once(':').map(|(u, _)| u.to_owned()));
                a.user = user;
            }
        } else if API_KEY_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) && a.key.is_none() {
            a.key = Some(shorten(value.trim()));
        } else if name.eq_ignore_ascii_case("cookie") && a.session.is_none() {
            a.session = value.split(';').find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (is_session_cookie(k) && !v.is_empty()).then(|| shorten(v))
            });
        }
    }
    a
}

/// The actor as one line: `alice (127.0.0.66)`, `key abc123…#1f2e (10.0.0.5)`.
pub fn describe(a: &Actor) -> String {
    let who = a
        .user
        .as_ref()
        .map(|u| format!("user {u}"))
        .or_else(|| a.key.as_ref().map(|k| format!("key {k}")))
        .or_else(|| a.session.as_ref().map(|s| format!("session {s}")));
    match (who, &a.ip) {
        (Some(w), Some(ip)) => format!("{w} ({ip})"),
        (Some(w), None) => w,
        (None, Some(ip)) => ip.clone(),
        (None, None) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_from_headers() {
        let mut tx = Transaction {
            client: Some("127.0.0.66:5000".parse().unwrap_or_else(|_| unreachable!())),
            ..Transaction::default()
        };
        // {"sub":"mallory"}
        tx.request_headers.push(
            "Authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2ln",
        );
        tx.request_headers
            .push("Cookie", "theme=dark; sessionid=0123456789abcdef");
        let a = actor_of(&tx);
        assert_eq!(a.ip.as_deref(), Some("127.0.0.66"));
        assert_eq!(a.user.as_deref(), Some("mallory"));
        let s = a.session.clone().unwrap_or_default();
        assert!(
            s.starts_with("012345…#") && !s.contains("0123456789abcdef"),
            "{s}"
        );
        assert_eq!(describe(&a), "user mallory (127.0.0.66)");
    }
}
