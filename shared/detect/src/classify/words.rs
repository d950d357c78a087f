//! One pass over the word starts of a value: numbers (see `numbers`), IBANs, NINOs, NIEs,
//! Twilio SIDs and MAC addresses; then e-mail addresses (at each `@`) and IPv6 addresses (at
//! each `:`).

use super::checks::{self, iban_length, iban_mod97, num};
use super::{Confidence, DataClass, Hint, Scan, is_word, numbers};
use std::net::Ipv6Addr;

pub(super) fn scan(s: &mut Scan<'_, '_>) {
    let b = s.b;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !c.is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let wend = b[i..]
            .iter()
            .position(|&c| !is_word(c))
            .map_or(b.len(), |k| i + k);
        let mut next = wend;
        // `_x` continues a word: not a start.
        if i == 0 || !is_word(b[i - 1]) {
            mac(s, i);
            if c.is_ascii_digit() {
                next = numbers::at(s, i).max(i + 1);
            } else {
                letters(s, i, wend);
            }
        }
        i = next;
    }
    if memchr::memchr(b'@', b).is_some() {
        emails(s);
    }
    if memchr::memchr(b':', b).is_some() {
        ipv6(s);
    }
}

fn letters(s: &mut Scan<'_, '_>, i: usize, wend: usize) {
    let b = s.b;
    let w = &b[i..wend];
    if w.len() >= 4
        && w[0].is_ascii_uppercase()
        && w[1].is_ascii_uppercase()
        && w[2].is_ascii_digit()
        && w[3].is_ascii_digit()
    {
        iban(s, i);
    }
    if w.len() >= 2 && w[0].is_ascii_alphabetic() && w[1].is_ascii_alphabetic() {
        nino(s, i);
    }
    if matches!(w[0], b'X' | b'Y' | b'Z' | b'x' | b'y' | b'z') {
        nie(s, i);
    }
    if w.len() == 34 && (w.starts_with(b"AC") || w.starts_with(b"SK")) {
        let body = &w[2..];
        let hex = body
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        if hex {
            s.push(DataClass::TwilioKey, i, wend, Confidence::High);
        } else if body.iter().all(u8::is_ascii_alphanumeric) && s.hint_at(i).has(Hint::TWILIO) {
            s.push(DataClass::TwilioKey, i, wend, Confidence::Medium);
        }
    }
}

/// `CCkk BBAN`: country length from the registry, groups of four separated by one space or
/// dash (or none), uppercase, mod 97.
fn iban(s: &mut Scan<'_, '_>, i: usize) {
    let b = s.b;
    let Some(want) = iban_length(&b[i..i + 2]) else {
        return;
    };
    let mut buf = [0u8; 34];
    let mut n = 0;
    let mut k = i;
    let mut sep: Option<u8> = None;
    while n < want && k < b.len() {
        let c = b[k];
        if c.is_ascii_digit() || c.is_ascii_uppercase() {
            buf[n] = c;
            n += 1;
            k += 1;
        } else if matches!(c, b' ' | b'-')
            && n % 4 == 0
            && sep.is_none_or(|x| x == c)
            && b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            sep = Some(c);
            k += 1;
        } else {
            return;
        }
    }
    if n == want && b.get(k).is_none_or(|&c| !is_word(c)) && iban_mod97(&buf[..n]) {
        let conf = if s.key.has(Hint::IBAN) {
            Confidence::High
        } else {
            Confidence::Medium
        };
        s.push(DataClass::Iban, i, k, conf);
    }
}

/// UK National Insurance number: two letters, six digits (optionally in spaced pairs),
/// a suffix A–D.
fn nino(s: &mut Scan<'_, '_>, i: usize) {
    let b = s.b;
    let mut k = i + 2;
    let space = |k: &mut usize| {
        if b.get(*k) == Some(&b' ') {
            *k += 1;
        }
    };
    space(&mut k);
    let mut digits = 0;
    while digits < 6 {
        if digits > 0 && digits % 2 == 0 {
            space(&mut k);
        }
        if !b.get(k).is_some_and(u8::is_ascii_digit) {
            return;
        }
        digits += 1;
        k += 1;
    }
    space(&mut k);
    let Some(&suffix) = b.get(k) else { return };
    if !suffix.is_ascii_alphabetic() || b.get(k + 1).is_some_and(|&c| is_word(c)) {
        return;
    }
    let lower = b[i].is_ascii_lowercase();
    if lower != b[i + 1].is_ascii_lowercase() || lower != suffix.is_ascii_lowercase() {
        return;
    }
    if checks::uk_nino([b[i], b[i + 1]], suffix) {
        s.push(DataClass::UkNino, i, k + 1, Confidence::Medium);
    }
}

/// Spanish NIE: X/Y/Z, seven digits, control letter (optionally after a dash).
fn nie(s: &mut Scan<'_, '_>, i: usize) {
    let b = s.b;
    let digits = &b[i + 1..];
    if digits.len() < 8 || !digits[..7].iter().all(u8::is_ascii_digit) {
        return;
    }
    let mut k = i + 8;
    if b.get(k) == Some(&b'-') {
        k += 1;
    }
    let Some(&letter) = b.get(k) else { return };
    if !letter.is_ascii_alphabetic() || b.get(k + 1).is_some_and(|&c| is_word(c)) {
        return;
    }
    let lead = u32::from(b[i].to_ascii_uppercase() - b'X');
    let n = lead * 10_000_000 + num(&digits[..7]);
    if checks::es_nif_letter(n) == letter.to_ascii_uppercase() {
        s.push(DataClass::EsNif, i, k + 1, Confidence::Medium);
    }
}

/// `01:23:45:67:89:ab`, `01-23-45-67-89-ab` or `0123.4567.89ab`; not all zeros or all ones.
fn mac(s: &mut Scan<'_, '_>, i: usize) {
    let b = s.b;
    let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
    let end = if b.get(i + 2).is_some_and(|&c| c == b':' || c == b'-') {
        let sep = b[i + 2];
        let ok = (0..6).all(|g| {
            let k = i + g * 3;
            hex(k) && hex(k + 1) && (g == 5 || b.get(k + 2) == Some(&sep))
        });
        if !ok {
            return;
        }
        i + 17
    } else if b.get(i + 4) == Some(&b'.') {
        let ok = (0..3).all(|g| {
            let k = i + g * 5;
            (0..4).all(|x| hex(k + x)) && (g == 2 || b.get(k + 4) == Some(&b'.'))
        });
        if !ok {
            return;
        }
        i + 14
    } else {
        return;
    };
    if b.get(end)
        .is_some_and(|&c| is_word(c) || matches!(c, b':' | b'-' | b'.'))
    {
        return;
    }
    let digits = b[i..end].iter().filter(|c| c.is_ascii_hexdigit());
    let mut zeros = true;
    let mut ones = true;
    for &c in digits {
        zeros &= c == b'0';
        ones &= c.eq_ignore_ascii_case(&b'f');
    }
    if !zeros && !ones {
        s.push(DataClass::MacAddress, i, end, Confidence::Medium);
    }
}

fn emails(s: &mut Scan<'_, '_>) {
    let b = s.b;
    let local_char = |c: u8| c.is_ascii_alphanumeric() || b"._%+-'".contains(&c);
    let domain_char = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    for at in memchr::memchr_iter(b'@', b) {
        let mut l = at;
        while l > 0 && local_char(b[l - 1]) {
            l -= 1;
        }
        while l < at && !b[l].is_ascii_alphanumeric() {
            l += 1;
        }
        let mut r = at + 1;
        while r < b.len() && domain_char(b[r]) {
            r += 1;
        }
        while r > at + 1 && matches!(b[r - 1], b'.' | b'-') {
            r -= 1;
        }
        if l == at || r <= at + 1 {
            continue;
        }
        let domain = &b[at + 1..r];
        let Some(dot) = memchr::memrchr(b'.', domain) else {
            continue;
        };
        let tld = &domain[dot + 1..];
        let tld_ok = (tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
            || (tld.len() > 4 && tld.starts_with(b"xn--"));
        let labels_ok = domain
            .split(|&c| c == b'.')
            .all(|l| !l.is_empty() && l[0] != b'-' && l[l.len() - 1] != b'-');
        if tld_ok && labels_ok {
            let conf = if s.hint_at(l).has(Hint::EMAIL) {
                Confidence::High
            } else {
                Confidence::Medium
            };
            s.push(DataClass::Email, l, r, conf);
        }
    }
}

fn ipv6(s: &mut Scan<'_, '_>) {
    let b = s.b;
    let tok = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut resume = 0;
    for colon in memchr::memchr_iter(b':', b) {
        if colon < resume {
            continue;
        }
        let mut l = colon;
        while l > 0 && tok(b[l - 1]) {
            l -= 1;
        }
        let mut r = colon;
        while r < b.len() && tok(b[r]) {
            r += 1;
        }
        resume = r;
        // Trailing sentence punctuation is not part of the address.
        while r > l && b[r - 1] == b'.' {
            r -= 1;
        }
        if (l > 0 && is_word(b[l - 1])) || (r < b.len() && is_word(b[r])) {
            continue;
        }
        let t = &b[l..r];
        let colons = t.iter().filter(|&&c| c == b':').count();
        let compressed = t.windows(2).any(|w| w == b"::");
        if !(compressed || colons == 7) || colons > 7 {
            continue;
        }
        let Ok(text) = std::str::from_utf8(t) else {
            continue;
        };
        if text.parse::<Ipv6Addr>().is_err() {
            continue;
        }
        let conf = if t == b"::" {
            Confidence::Low
        } else if t.iter().any(u8::is_ascii_digit) {
            Confidence::Medium
        } else {
            continue;
        };
        let mut end = r;
        if b.get(r) == Some(&b'/') {
            let digits = b[r + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let after = r + 1 + digits;
            if (1..=3).contains(&digits)
                && num(&b[r + 1..after]) <= 128
                && b.get(after).is_none_or(|&c| !is_word(c))
            {
                end = after;
            }
        }
        s.push(DataClass::IpAddress, l, end, conf);
    }
}
