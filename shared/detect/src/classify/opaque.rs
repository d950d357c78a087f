//! Values inside opaque tokens — UUIDs, hex digests, base64 — are not personal data: a UUID
//! such as `8716984f-18ce-…` holds "8716984F", a valid-looking Spanish NIF, and
//! `…-3351-2493-6248-…` an Aadhaar number with a good check digit. Whatever a pattern finds
//! strictly inside such a token is dropped (secrets are tokens themselves and are kept).

use super::{ClassKind, Hit};

/// Shortest hex run (no separators, letters and digits both) taken for a digest or an id.
const MIN_HEX: usize = 16;
/// Shortest run of base64 characters, with upper, lower case and digits, taken for an
/// encoded blob or a random token.
const MIN_BASE64: usize = 20;

/// Drops personal-data hits that lie inside a larger opaque token of `b`.
pub(super) fn drop_inside_tokens(b: &[u8], hits: &mut Vec<Hit>) {
    if !hits.iter().any(|h| h.class.kind() == ClassKind::Pii) {
        return;
    }
    let spans = opaque_spans(b);
    if spans.is_empty() {
        return;
    }
    hits.retain(|h| {
        h.class.kind() != ClassKind::Pii
            || !spans
                .iter()
                .any(|&(s, e)| s <= h.start && h.end <= e && e - s > h.end - h.start)
    });
}

/// The opaque tokens of `b`, as byte ranges.
fn opaque_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_b64(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_b64(b[i]) {
            i += 1;
        }
        let run = &b[start..i];
        uuids(run, start, &mut spans);
        hex_runs(run, start, &mut spans);
        if run.len() >= MIN_BASE64 && mixed(run) {
            spans.push((start, i));
        }
    }
    spans
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'_' | b'-' | b'=')
}

/// Upper case, lower case and digits all present: how random tokens look, and words do not.
fn mixed(run: &[u8]) -> bool {
    run.iter().any(u8::is_ascii_uppercase)
        && run.iter().any(u8::is_ascii_lowercase)
        && run.iter().any(u8::is_ascii_digit)
}

/// Every 8-4-4-4-12 hex UUID in `run` (which starts at `base`).
fn uuids(run: &[u8], base: usize, spans: &mut Vec<(usize, usize)>) {
    const LAYOUT: [usize; 5] = [8, 4, 4, 4, 12];
    let mut k = 0;
    while k + 36 <= run.len() {
        let mut at = k;
        let fits = LAYOUT.iter().enumerate().all(|(g, &n)| {
            let ok = run[at..at + n].iter().all(u8::is_ascii_hexdigit)
                && (g == 4 || run[at + n] == b'-');
            at += n + 1;
            ok
        });
        let bounded = k == 0 || !run[k - 1].is_ascii_hexdigit();
        let ends = k + 36 == run.len() || !run[k + 36].is_ascii_hexdigit();
        if fits && bounded && ends {
            spans.push((base + k, base + k + 36));
            k += 36;
        } else {
            k += 1;
        }
    }
}

/// Hex runs of [`MIN_HEX`] or more with letters and digits (digests, object ids).
fn hex_runs(run: &[u8], base: usize, spans: &mut Vec<(usize, usize)>) {
    let mut k = 0;
    while k < run.len() {
        if !run[k].is_ascii_hexdigit() {
            k += 1;
            continue;
        }
        let s = k;
        while k < run.len() && run[k].is_ascii_hexdigit() {
            k += 1;
        }
        let hex = &run[s..k];
        let letters = hex.iter().any(u8::is_ascii_alphabetic);
        let digits = hex.iter().any(u8::is_ascii_digit);
        if hex.len() >= MIN_HEX && letters && digits {
            spans.push((base + s, base + k));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::{DataClass, classify_into};

    fn classes(text: &str) -> Vec<DataClass> {
        let mut hits = Vec::new();
        classify_into(text, None, &mut hits);
        hits.iter().map(|h| h.class).collect()
    }

    #[test]
    fn nothing_inside_uuids_digests_or_base64() {
        for token in [
            "8716984f-18ce-cf10-403c-d74fe8a4a067",
            "c1b08934-3351-2493-6248-dfc0d53def94",
            "order 9633120F-49DE-A98E-D828-28EEFB214D2D shipped",
            "sha256 12345678d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
            "blob dGhpcyBpcyAxMjM0NTY3OFogaW5zaWRlIGJhc2U2NA4111111111111111Zx==",
        ] {
            assert_eq!(classes(token), [], "{token}");
        }
    }

    #[test]
    fn twenty_thousand_random_uuids_hold_no_personal_data() {
        // Before: about one UUID in a thousand held a "NIF" or an "Aadhaar number".
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut found = Vec::new();
        for _ in 0..20_000 {
            let (a, b) = (next(), next());
            let u = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff,
                b >> 48,
                b & 0xffff_ffff_ffff
            );
            if !classes(&u).is_empty() {
                found.push(u);
            }
        }
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn values_standing_alone_or_in_text_are_still_found() {
        assert_eq!(classes("DNI 12345678Z"), [DataClass::EsNif]);
        assert_eq!(classes("12345678-Z"), [DataClass::EsNif]);
        assert_eq!(
            classes("card 4111 1111 1111 1111 exp"),
            [DataClass::CreditCard]
        );
        assert_eq!(classes("4111111111111111"), [DataClass::CreditCard]);
        // Beside a UUID, not inside it.
        assert_eq!(
            classes("id 8716984f-18ce-cf10-403c-d74fe8a4a067 nif 12345678Z"),
            [DataClass::EsNif]
        );
        // Secrets are tokens themselves.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(classes(jwt), [DataClass::Jwt]);
    }
}
