//! Template filters: `{{ value | name }}` or `{{ value | name:argument }}`.
//!
//! The JWT filters forge the broken tokens authentication tests send: a token whose header
//! says `alg: none`, one with its signature damaged, one re-signed with a guessed HS256 key.

use crate::template::TemplateError;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The filters known, for error messages.
pub const KNOWN: &str = "urlencode, base64, base64url, lower, upper, jwt_alg_none, \
jwt_bad_signature, jwt_unsigned, jwt_claim:NAME=VALUE, jwt_sign_hs256:KEY";

/// Applies the filter `spec` (`name` or `name:argument`) to `value` of reference `name`.
pub fn apply(spec: &str, name: &str, value: &str) -> Result<String, TemplateError> {
    let (filter, arg) = match spec.split_once(':') {
        Some((f, a)) => (f.trim(), Some(a)),
        None => (spec.trim(), None),
    };
    let fail = |why: String| TemplateError::Filter {
        name: name.to_owned(),
        filter: filter.to_owned(),
        why,
    };
    Ok(match (filter, arg) {
        ("urlencode", None) => url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        ("base64", None) => STANDARD.encode(value),
        ("base64url", None) => URL_SAFE_NO_PAD.encode(value),
        ("lower", None) => value.to_lowercase(),
        ("upper", None) => value.to_uppercase(),
        ("jwt_alg_none", None) => Jwt::parse(value).map_err(fail)?.alg_none(),
        ("jwt_bad_signature", None) => Jwt::parse(value).map_err(fail)?.bad_signature(),
        ("jwt_unsigned", None) => Jwt::parse(value).map_err(fail)?.unsigned(),
        ("jwt_claim", Some(a)) => {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| fail("write jwt_claim:NAME=VALUE".into()))?;
            Jwt::parse(value)
                .map_err(fail)?
                .with_claim(k, v)
                .map_err(fail)?
        }
        ("jwt_sign_hs256", Some(key)) => Jwt::parse(value).map_err(fail)?.sign_hs256(key),
        _ => {
            return Err(TemplateError::UnknownFilter {
                name: name.to_owned(),
                filter: spec.to_owned(),
                known: KNOWN,
            });
        }
    })
}

/// A compact JWS split into its parts (header and payload decoded).
struct Jwt {
    header: serde_json::Map<String, serde_json::Value>,
    payload: serde_json::Map<String, serde_json::Value>,
    /// The parts as received, reused while unchanged (re-encoding would reorder keys).
    raw_header: Option<String>,
    raw_payload: Option<String>,
    signature: String,
}

impl Jwt {
    fn parse(token: &str) -> Result<Jwt, String> {
        // Tokens usually arrive as "Bearer …".
        let token = token.trim();
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token);
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT (three base64url parts separated by dots)".into());
        };
        let object = |part: &str, what: &str| -> Result<serde_json::Map<_, _>, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|e| format!("the JWT {what} is not base64url: {e}"))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("the JWT {what} is not a JSON object: {e}"))
        };
        Ok(Jwt {
            header: object(h, "header")?,
            payload: object(p, "payload")?,
            raw_header: Some(h.to_owned()),
            raw_payload: Some(p.to_owned()),
            signature: s.to_owned(),
        })
    }

    fn encode(map: &serde_json::Map<String, serde_json::Value>) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map.clone()).to_string())
    }

    fn signing_input(&self) -> String {
        let h = self
            .raw_header
            .clone()
            .unwrap_or_else(|| Jwt::encode(&self.header));
        let p = self
            .raw_payload
            .clone()
            .unwrap_or_else(|| Jwt::encode(&self.payload));
        format!("{h}.{p}")
    }

    fn alg_none(mut self) -> String {
        self.header.insert("alg".into(), "none".into());
        self.raw_header = None;
        format!("{}.", self.signing_input())
    }

    fn unsigned(self) -> String {
        format!("{}.", self.signing_input())
    }

    fn bad_signature(self) -> String {
        // Flip the signature's bits: same length, still base64url, never valid.
        let sig = URL_SAFE_NO_PAD
            .decode(&self.signature)
            .unwrap_or_else(|_| vec![0; 32]);
        let flipped: Vec<u8> = sig.iter().map(|b| b ^ 0x5a).collect();
        let flipped = if flipped.is_empty() {
            vec![0x5a; 32]
        } else {
            flipped
        };
        format!(
            "{}.{}",
            self.signing_input(),
            URL_SAFE_NO_PAD.encode(flipped)
        )
    }

    fn with_claim(mut self, key: &str, value: &str) -> Result<String, String> {
        let v = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::from(value));
        self.payload.insert(key.trim().to_owned(), v);
        self.raw_payload = None;
        Ok(format!("{}.{}", self.signing_input(), self.signature))
    }

    fn sign_hs256(mut self, key: &str) -> String {
        if self.header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            self.header.insert("alg".into(), "HS256".into());
            self.raw_header = None;
        }
        let input = self.signing_input();
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
        let tag = ring::hmac::sign(&k, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }
}

/// Whether `token` (a JWT) is signed HS256 with `key`.
pub fn hs256_key_matches(token: &str, key: &str) -> bool {
    let mut parts = token.rsplitn(2, '.');
    let (Some(sig), Some(input)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::verify(&k, input.as_bytes(), &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(key: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(r#"{"sub":"alice","role":"user"}"#);
        let input = format!("{h}.{p}");
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
        let tag = ring::hmac::sign(&k, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn part(t: &str, i: usize) -> serde_json::Value {
        let p = t.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn forged_tokens_keep_claims_and_break_the_signature() {
        let t = token("secret");
        assert!(hs256_key_matches(&t, "secret"));
        let none = apply("jwt_alg_none", "t", &format!("Bearer {t}")).unwrap();
        assert_eq!(part(&none, 0)["alg"], "none");
        assert_eq!(part(&none, 1)["sub"], "alice");
        assert!(none.ends_with('.'));
        let bad = apply("jwt_bad_signature", "t", &t).unwrap();
        assert!(!hs256_key_matches(&bad, "secret"));
        assert_eq!(bad.split('.').nth(1), t.split('.').nth(1));
        let admin = apply("jwt_claim:role=admin", "t", &t).unwrap();
        assert_eq!(part(&admin, 1)["role"], "admin");
        let resigned = apply("jwt_sign_hs256:secret", "t", &admin).unwrap();
        assert!(hs256_key_matches(&resigned, "secret"));
        assert!(!hs256_key_matches(&resigned, "other"));
    }

    #[test]
    fn filters_refuse_what_they_cannot_use() {
        let e = apply("jwt_alg_none", "t", "not-a-token").unwrap_err();
        assert!(e.to_string().contains("not a JWT"), "{e}");
        assert!(matches!(
            apply("nope", "t", "x"),
            Err(TemplateError::UnknownFilter { .. })
        ));
        assert_eq!(apply("urlencode", "t", "a b&c").unwrap(), "a+b%26c");
    }
}
