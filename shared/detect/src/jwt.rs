//! JSON Web Tokens as evidence: the one decoder of a JWS compact token's parts, used by the
//! secret classifier (is this a token?), endpoint profiles (algorithm, claim names) and actors
//! (who the client claims to be). Signatures are never verified: a token in traffic says who
//! the client claims to be, not who it is.

use base64::Engine as _;
use serde_json::{Map, Value};

/// The longest token part decoded (bounds work on hostile input).
const MAX_PART_BYTES: usize = 16 << 10;

/// Decodes one base64url part of a token (padding optional; a dangling partial quantum is
/// dropped, as lenient decoders do).
pub fn decode_part(part: &[u8]) -> Option<Vec<u8>> {
    let part = part
        .strip_suffix(b"==")
        .or(part.strip_suffix(b"="))
        .unwrap_or(part);
    if part.len() > MAX_PART_BYTES {
        return None;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    b64.decode(part)
        .or_else(|_| b64.decode(&part[..part.len() / 4 * 4]))
        .ok()
}

/// A decoded token: its header and claims as JSON objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Jwt {
    /// The JOSE header (`alg`, `typ`, `kid`, …).
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

impl Jwt {
    /// Parses `header.payload.signature` (the signature may be empty, as with `alg: none`).
    pub fn parse(token: &str) -> Option<Jwt> {
        let mut parts = token.trim().split('.');
        let (h, p, _sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !h.starts_with("eyJ") {
            return None;
        }
        let object = |part: &str| -> Option<Map<String, Value>> {
            serde_json::from_slice(&decode_part(part.as_bytes())?).ok()
        };
        Some(Jwt {
            header: object(h)?,
            claims: object(p)?,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg")?.as_str()
    }

    /// The claim names, sorted.
    pub fn claim_names(&self) -> impl Iterator<Item = &str> {
        self.claims.keys().map(String::as_str)
    }

    /// Who the token speaks for: `sub`, else `username`, `preferred_username`, `email`,
    /// `user_id` or `uid` (a string or a number).
    pub fn subject(&self) -> Option<String> {
        [
            "sub",
            "username",
            "preferred_username",
            "email",
            "user_id",
            "uid",
        ]
        .iter()
        .find_map(|k| match self.claims.get(*k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.c2ln", b64.encode(header), b64.encode(claims))
    }

    #[test]
    fn test_parse_reads_header_and_claims() {
        let t = Jwt::parse(&token(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"alice","role":"admin"}"#,
        ))
        .expect("a token");
        assert_eq!(t.alg(), Some("HS256"));
        assert_eq!(t.subject().as_deref(), Some("alice"));
        assert_eq!(t.claim_names().collect::<Vec<_>>(), ["role", "sub"]);
    }

    #[test]
    fn test_subject_falls_back_and_takes_numbers() {
        let t = Jwt::parse(&token(r#"{"alg":"none"}"#, r#"{"user_id":42}"#)).expect("a token");
        assert_eq!(t.subject().as_deref(), Some("42"));
    }

    #[test]
    fn test_not_tokens() {
        for s in [
            "",
            "a.b.c",
            "eyJ.eyJ",
            "eyJhbGciOiJub25lIn0.bm90IGpzb24.x",
            "a.b.c.d",
        ] {
            assert_eq!(Jwt::parse(s), None, "{s}");
        }
        assert_eq!(decode_part(&[b'A'; MAX_PART_BYTES + 4]), None);
    }

    #[test]
    fn test_decode_part_tolerates_padding_and_a_partial_quantum() {
        assert_eq!(decode_part(b"eyJ9").as_deref(), Some(&b"{\"}"[..]));
        assert_eq!(decode_part(b"YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_part(b"YWJjZ").as_deref(), Some(&b"abc"[..]));
    }
}
