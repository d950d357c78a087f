//! Check-digit algorithms and number-plan rules the classifiers validate candidates with.
//!
//! Every function takes ASCII digits (or alphanumerics where the scheme uses them) and never
//! panics: anything outside the scheme's alphabet is simply invalid.

/// Luhn (mod 10) over ASCII digits: payment cards, Canadian SINs.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        if !d.is_ascii_digit() {
            return false;
        }
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card brand an issuer identification number (the leading digits) belongs to, if any
/// well-known scheme issues it.
pub fn card_brand(digits: &[u8]) -> Option<&'static str> {
    let n = digits.len();
    let prefix = |k: usize| -> u32 {
        digits[..k.min(n)]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
    };
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    match digits.first()? {
        b'4' if matches!(n, 13 | 16 | 19) => Some("visa"),
        b'3' if n == 15 && (p2 == 34 || p2 == 37) => Some("amex"),
        b'3' if (14..=19).contains(&n) && (300..=305).contains(&p3) => Some("diners"),
        b'3' if (14..=19).contains(&n) && matches!(p2, 36 | 38 | 39) => Some("diners"),
        b'3' if (16..=19).contains(&n) && (3528..=3589).contains(&p4) => Some("jcb"),
        b'5' if n == 16 && (51..=55).contains(&p2) => Some("mastercard"),
        b'2' if n == 16 && (222_100..=272_099).contains(&p6) => Some("mastercard"),
        b'6' if (16..=19).contains(&n) && (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)) => {
            Some("discover")
        }
        b'6' if (16..=19).contains(&n) && p2 == 62 => Some("unionpay"),
        // Maestro and the national debit schemes (Dankort, Bankcard, Switch/Solo, RuPay...)
        // live in 50 and 56–69.
        b'5' | b'6' if (12..=19).contains(&n) && (p2 == 50 || (56..=69).contains(&p2)) => {
            Some("maestro")
        }
        _ => None,
    }
}

/// ISO 13616 IBAN check (mod 97 == 1) over an uppercase alphanumeric IBAN without spaces.
pub fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    let rotated = iban[4..].iter().chain(&iban[..4]);
    for &c in rotated {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// The IBAN length of a country (ISO 13616 registry), `None` for a country without IBANs.
pub fn iban_length(cc: &[u8]) -> Option<usize> {
    #[rustfmt::skip]
    const TABLE: &[(&[u8; 2], u8)] = &[
        (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20),
        (b"BE", 16), (b"BG", 22), (b"BH", 22), (b"BI", 27), (b"BR", 29), (b"BY", 28),
        (b"CH", 21), (b"CR", 22), (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DJ", 27),
        (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24), (b"FI", 18),
        (b"FK", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23),
        (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HN", 28), (b"HR", 21), (b"HU", 28),
        (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30),
        (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20),
        (b"LU", 20), (b"LV", 21), (b"LY", 25), (b"MC", 27), (b"MD", 24), (b"ME", 22),
        (b"MK", 19), (b"MN", 20), (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NI", 28),
        (b"NL", 18), (b"NO", 15), (b"OM", 23), (b"PK", 24), (b"PL", 28), (b"PS", 29),
        (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"RU", 33), (b"SA", 24),
        (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27),
        (b"SO", 23), (b"ST", 25), (b"SV", 28), (b"TL", 23), (b"TN", 24), (b"TR", 26),
        (b"UA", 29), (b"VA", 22), (b"VG", 24), (b"XK", 20), (b"YE", 30),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c.as_slice() == cc)
        .map(|&(_, n)| usize::from(n))
}

/// US Social Security Number rules: area not 000, 666 or 900–999; group not 00; serial not
/// 0000; and not one of the numbers the SSA has publicly voided.
pub fn us_ssn(d: &[u8; 9]) -> bool {
    let area = num(&d[..3]);
    let group = num(&d[3..5]);
    let serial = num(&d[5..]);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    // Woolworth's wallet card and the 1962 advertising number.
    !matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999))
        && !d.iter().all(|&c| c == d[0])
}

/// UK NHS number: ten digits, mod 11 check digit.
pub fn uk_nhs(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &c)| u32::from(c - b'0') * (10 - i as u32))
        .sum();
    let check = (11 - sum % 11) % 11;
    check != 10 && check == u32::from(d[9] - b'0')
}

/// Verhoeff check used by Aadhaar numbers.
pub fn verhoeff(d: &[u8]) -> bool {
    const M: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, &x) in d.iter().rev().enumerate() {
        if !x.is_ascii_digit() {
            return false;
        }
        c = M[usize::from(c)][usize::from(P[i % 8][usize::from(x - b'0')])];
    }
    c == 0
}

/// Polish PESEL: weighted check digit and a real birth date (the month encodes the century;
/// the 2100s and 2200s encodings are not accepted: nobody alive was born then).
pub fn pl_pesel(d: &[u8]) -> bool {
    if d.len() != 11 {
        return false;
    }
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = d[..10]
        .iter()
        .zip(W)
        .map(|(&c, w)| u32::from(c - b'0') * w)
        .sum();
    if (10 - sum % 10) % 10 != u32::from(d[10] - b'0') {
        return false;
    }
    let yy = num(&d[..2]);
    let mm = num(&d[2..4]);
    let dd = num(&d[4..6]);
    let (century, month) = match mm {
        1..=12 => (1900, mm),
        21..=32 => (2000, mm - 20),
        81..=92 => (1800, mm - 80),
        _ => return false,
    };
    valid_date(century + yy, month, dd)
}

/// Spanish DNI/NIF control letter for a number.
pub fn es_nif_letter(n: u32) -> u8 {
    b"TRWAGMYFPDXBNJZSQVHLCKE"[(n % 23) as usize]
}

/// UK National Insurance number prefix and suffix rules.
pub fn uk_nino(prefix: [u8; 2], suffix: u8) -> bool {
    let [a, b] = prefix.map(|c| c.to_ascii_uppercase());
    let bad_first = b"DFIQUV";
    let bad_second = b"DFIOQUV";
    !bad_first.contains(&a)
        && !bad_second.contains(&b)
        && !matches!(
            &[a, b],
            b"BG" | b"GB" | b"NK" | b"KN" | b"TN" | b"NT" | b"ZZ"
        )
        && matches!(suffix.to_ascii_uppercase(), b'A'..=b'D')
}

/// A calendar date that exists (proleptic Gregorian).
pub fn valid_date(y: u32, m: u32, d: u32) -> bool {
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// The decimal value of ASCII digits (saturating; callers pass short runs).
pub fn num(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |acc, &c| {
        acc.saturating_mul(10)
            .saturating_add(u32::from(c.wrapping_sub(b'0')))
    })
}

/// Shannon entropy in bits per byte.
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &c in s {
        counts[usize::from(c)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_neighbours() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b""));
        assert!(!luhn(b"41x1"));
    }

    #[test]
    fn brands_by_iin() {
        assert_eq!(card_brand(b"4111111111111111"), Some("visa"));
        assert_eq!(card_brand(b"378282246310005"), Some("amex"));
        assert_eq!(card_brand(b"5555555555554444"), Some("mastercard"));
        assert_eq!(card_brand(b"2221000000000009"), Some("mastercard"));
        assert_eq!(card_brand(b"6011111111111117"), Some("discover"));
        assert_eq!(card_brand(b"3530111333300000"), Some("jcb"));
        assert_eq!(card_brand(b"30569309025904"), Some("diners"));
        assert_eq!(card_brand(b"1000000000000008"), None);
    }

    #[test]
    fn iban_checks() {
        assert!(iban_mod97(b"GB29NWBK60161331926819"));
        assert!(!iban_mod97(b"GB29NWBK60161331926818"));
        assert_eq!(iban_length(b"DE"), Some(22));
        assert_eq!(iban_length(b"US"), None);
    }

    #[test]
    fn ssn_rules() {
        assert!(us_ssn(b"078051123"));
        assert!(!us_ssn(b"078051120"));
        assert!(!us_ssn(b"666121234"));
        assert!(!us_ssn(b"900121234"));
        assert!(!us_ssn(b"123001234"));
        assert!(!us_ssn(b"123450000"));
        assert!(!us_ssn(b"000000000"));
    }

    #[test]
    fn national_ids() {
        assert!(uk_nhs(b"4010232137"));
        assert!(!uk_nhs(b"4010232138"));
        assert!(verhoeff(b"312345678909"));
        assert!(!verhoeff(b"312345678908"));
        assert!(pl_pesel(b"44051401458"));
        assert!(!pl_pesel(b"44051401459"));
        assert_eq!(es_nif_letter(12_345_678), b'Z');
        assert!(uk_nino(*b"AA", b'B'));
        assert!(!uk_nino(*b"BG", b'A'));
        assert!(!uk_nino(*b"AA", b'H'));
    }

    #[test]
    fn entropy_orders_strings() {
        assert!(entropy(b"aaaaaaaa") < 0.01);
        assert!(entropy(b"3kJnB7gH9pLqX1Zs") > 3.5);
    }
}
