//! Signed block lists: an Ed25519 signature over the exported bytes, kept beside them
//! (`FILE.sig`), so an agent that fetches a bundle from a shared place can check it came from
//! this workbench and was not edited on the way.
//!
//! The signature file is one line: `tapline-ed25519 KEYID SIGNATURE` (KEYID: the first 16 hex
//! digits of SHA-256 of the public key; SIGNATURE: base64). The public key file is one line of
//! base64 (the raw 32 bytes), what agents are given.

use base64::Engine as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

const TAG: &str = "tapline-ed25519";

/// Why signing or checking failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key file is not a PKCS#8 Ed25519 key.
    #[error("the signing key is not a PKCS#8 Ed25519 key")]
    BadKey,
    /// The system's random source failed.
    #[error("the system's random source failed")]
    Random,
    /// The public key file is not base64 of 32 bytes.
    #[error("the public key is not base64 of 32 bytes")]
    BadPublicKey,
    /// The signature file is not `tapline-ed25519 KEYID SIGNATURE`.
    #[error("the signature file is not `{TAG} KEYID SIGNATURE`")]
    BadSignatureFile,
    /// Signed by another key.
    #[error("signed by key {found}, not by the given key {expected}")]
    OtherKey {
        /// The signature's key id.
        found: String,
        /// The given key's id.
        expected: String,
    },
    /// The bytes were changed after signing (or the signature was).
    #[error("the signature does not match the file: it was changed after signing")]
    Mismatch,
}

/// A new signing key, PKCS#8 (keep it private).
pub fn new_key() -> Result<Vec<u8>, SignError> {
    Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| SignError::Random)
}

fn key_id(public: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, public).as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The public key of a PKCS#8 key, as the public key file holds it.
pub fn public_key(pkcs8: &[u8]) -> Result<String, SignError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SignError::BadKey)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref()))
}

/// The signature line for `data`.
pub fn sign(pkcs8: &[u8], data: &[u8]) -> Result<String, SignError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SignError::BadKey)?;
    let sig = base64::engine::general_purpose::STANDARD.encode(pair.sign(data).as_ref());
    Ok(format!(
        "{TAG} {} {sig}\n",
        key_id(pair.public_key().as_ref())
    ))
}

/// Checks `signature` (a signature line) over `data` against `public` (a public key line).
pub fn verify(public: &str, data: &[u8], signature: &str) -> Result<(), SignError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let public = b64
        .decode(public.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or(SignError::BadPublicKey)?;
    let mut parts = signature.split_whitespace();
    let (Some(TAG), Some(id), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignError::BadSignatureFile);
    };
    let expected = key_id(&public);
    if id != expected {
        return Err(SignError::OtherKey {
            found: id.to_owned(),
            expected,
        });
    }
    let sig = b64.decode(sig).map_err(|_| SignError::BadSignatureFile)?;
    UnparsedPublicKey::new(&ED25519, &public)
        .verify(data, &sig)
        .map_err(|_| SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_bundle_verifies_and_any_change_is_caught() {
        let key = new_key().unwrap();
        let public = public_key(&key).unwrap();
        let data = br#"{"format":"tapline-blocklist/1"}"#;
        let sig = sign(&key, data).unwrap();
        verify(&public, data, &sig).unwrap();
        assert!(matches!(
            verify(&public, br#"{"format":"tapline-blocklist/2"}"#, &sig),
            Err(SignError::Mismatch)
        ));
        let other = public_key(&new_key().unwrap()).unwrap();
        assert!(matches!(
            verify(&other, data, &sig),
            Err(SignError::OtherKey { .. })
        ));
        assert!(matches!(
            verify(&public, data, "nope"),
            Err(SignError::BadSignatureFile)
        ));
    }
}
