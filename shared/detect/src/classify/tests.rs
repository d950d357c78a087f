//! Classifier behaviour on hand-picked values: each test names a rule that could regress.

use super::*;

fn classes<'a>(text: &'a str, key: Option<&str>) -> Vec<(DataClass, &'a str)> {
    classify(text, key)
        .into_iter()
        .map(|h| (h.class, &text[h.start..h.end]))
        .collect()
}

#[test]
fn cards_need_luhn_and_a_brand_or_context() {
    assert_eq!(
        classes(
            "4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881",
            None
        ),
        vec![
            (DataClass::CreditCard, "4012888888881881"),
            (DataClass::CreditCard, "4012-8888-8888-1881"),
            (DataClass::CreditCard, "4012 8888 8888 1881"),
        ]
    );
    assert!(classes("4012-8888-8888-1882", None).is_empty());
    assert!(classes("1000000000000008", None).is_empty());
    assert_eq!(
        classes("my credit card: 122000000000003", None),
        vec![(DataClass::CreditCard, "122000000000003")]
    );
}

#[test]
fn adjacent_grouped_cards_are_each_found() {
    // Too many digits for one number: each card of the stretch stands alone.
    assert_eq!(
        classes("4111 1111 1111 1111 4111 1111 1111 1111", None),
        vec![
            (DataClass::CreditCard, "4111 1111 1111 1111"),
            (DataClass::CreditCard, "4111 1111 1111 1111"),
        ]
    );
    assert_eq!(
        classes("cards: 4012-8888-8888-1881-5555-5555-5555-4444", None),
        vec![
            (DataClass::CreditCard, "4012-8888-8888-1881"),
            (DataClass::CreditCard, "5555-5555-5555-4444"),
        ]
    );
    // Still one number when the stretch could be one: no card inside it.
    assert!(
        !classes("8709 8372 1959 4843 62", None)
            .iter()
            .any(|(c, v)| *c == DataClass::CreditCard && v.len() < 22)
    );
}

#[test]
fn ssn_rules_and_layouts() {
    assert_eq!(
        classes("078.05.1123", None),
        vec![(DataClass::UsSsn, "078.05.1123")]
    );
    assert!(classes("078-05-0000", None).is_empty());
    assert!(classes("693-09.4444", None).is_empty());
    assert_eq!(
        classes("123456789", Some("ssn")),
        vec![(DataClass::UsSsn, "123456789")]
    );
}

#[test]
fn phones() {
    assert_eq!(
        classes("call (415) 555-0132 or +1 415 555 0132", None),
        vec![
            (DataClass::PhoneNumber, "(415) 555-0132"),
            (DataClass::PhoneNumber, "+1 415 555 0132"),
        ]
    );
    assert!(
        classes("917-123-4567", None).is_empty(),
        "exchange 123 is not NANP"
    );
    assert_eq!(
        classes("+905321234567", None),
        vec![(DataClass::PhoneNumber, "+905321234567")]
    );
    // National layouts of other countries, valid by libphonenumber's metadata.
    for phone in [
        "0532 123 45 67",   // Turkey, trunk 0
        "532.123.45.67",    // Turkey, without it
        "0917-123-4567",    // Philippines
        "030 1234567",      // Germany
        "020 7123 4567",    // United Kingdom
        "11 98456-5666",    // Brazil
        "98765 43210",      // India
        "(0532) 123 45 67", // Turkey, area code in parentheses
    ] {
        assert_eq!(
            classes(phone, None),
            vec![(DataClass::PhoneNumber, phone)],
            "{phone}"
        );
    }
    // Digits no country assigns, dates, stretches of longer numbers, ids.
    for not in [
        "0000 000 00 00",
        "2024-01-15",
        "15.01.2024",
        "1234567890",
        "532123456",
        "+99 123 456 789",
        "account 6016 1331 9268 19",
    ] {
        assert!(
            classes(not, None).is_empty(),
            "{not}: {:?}",
            classes(not, None)
        );
    }
}

#[test]
fn addresses() {
    assert_eq!(classes("IPs: 192.168.1.1, 2001:db8::1", None).len(), 2);
    assert!(classes("Version 1.2.3", None).is_empty());
    assert!(classes("std::cout 12:34:56", None).is_empty());
    assert_eq!(
        classes("10.0.0.0/8", None),
        vec![(DataClass::IpAddress, "10.0.0.0/8")]
    );
    assert_eq!(
        classes("MAC: 01:23:45:67:89:AB", None),
        vec![(DataClass::MacAddress, "01:23:45:67:89:AB")]
    );
    assert!(classes("00:00:00:00:00:00", None).is_empty());
    assert_eq!(
        classes("a@xn--d1acufc.xn--p1ai", None),
        vec![(DataClass::Email, "a@xn--d1acufc.xn--p1ai")]
    );
}

#[test]
fn iban_with_groups_and_trailing_text() {
    assert_eq!(
        classes(
            "this is an iban VG96 VPVG 0000 0123 4567 8901 X in a sentence",
            None
        ),
        vec![(DataClass::Iban, "VG96 VPVG 0000 0123 4567 8901")]
    );
    assert!(classes("GB29 1WBK 6016 1331 9268 19", None).is_empty());
}

#[test]
fn tokens() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    assert_eq!(
        classes(&format!("Bearer {jwt}"), None),
        vec![(DataClass::Jwt, jwt)]
    );
    assert_eq!(
        classes("key AKIAIOSFODNN7EXAMPLE", None),
        vec![],
        "documentation example"
    );
    assert_eq!(
        classes("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", None),
        vec![(
            DataClass::GithubToken,
            "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"
        )]
    );
    assert!(classes("xoxb-xxxxxxxxx-xxxxxxxxxx-xxxxxxxxxxxx", None).is_empty());
    assert_eq!(
        classes("Authorization: Basic dXNlcjpodW50ZXIy", None),
        vec![(DataClass::BasicAuth, "dXNlcjpodW50ZXIy")]
    );
}

#[test]
fn named_fields() {
    assert_eq!(
        classes("hunter2", Some("password")),
        vec![(DataClass::Password, "hunter2")]
    );
    assert_eq!(
        classes("1990-04-01", Some("dateOfBirth")),
        vec![(DataClass::DateOfBirth, "1990-04-01")]
    );
    assert!(classes("1990-04-01", Some("createdAt")).is_empty());
    assert_eq!(
        classes("3kJnB7gH9pLqX1ZsV4tUvWxY2aBcD5fG", Some("client_secret")),
        vec![(DataClass::GenericSecret, "3kJnB7gH9pLqX1ZsV4tUvWxY2aBcD5fG")]
    );
    assert!(classes("3kJnB7gH9pLqX1ZsV4tUvWxY2aBcD5fG", Some("public_key")).is_empty());
    assert!(classes("29f63271-dc2f-4734-8221-5b31b5169bac", Some("token")).is_empty());
}

#[test]
fn never_panics_on_odd_input() {
    for s in [
        "",
        "@",
        ":",
        "::",
        "+",
        "(",
        "-----BEGIN ",
        "eyJ.",
        "AKIA",
        "é@é.é",
        "0",
        "SG.",
        "Basic ",
        "x://a:@",
        "Q~",
    ] {
        let _ = classify(s, None);
        let _ = classify(s, Some("password"));
    }
}

#[test]
fn luhn_invalid_numbers_are_never_cards() {
    // A deterministic walk over many numbers, layouts and contexts: whatever else a number may
    // be, it is a card only when Luhn holds.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut checked = 0;
    for _ in 0..20_000 {
        let len = 13 + (next() % 7) as usize;
        let digits: String = (0..len)
            .map(|_| char::from(b'0' + (next() % 10) as u8))
            .collect();
        if luhn(digits.as_bytes()) {
            continue;
        }
        checked += 1;
        let spaced: String = digits
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        for (text, key) in [
            (digits.as_str(), None),
            (spaced.as_str(), Some("card_number")),
            (digits.as_str(), Some("cc")),
        ] {
            let framed = format!("my credit card: {text}");
            for t in [text, framed.as_str()] {
                assert!(
                    classify(t, key)
                        .iter()
                        .all(|h| h.class != DataClass::CreditCard),
                    "{t:?} ({key:?}) reported as a card"
                );
            }
        }
    }
    assert!(checked > 15_000);
}
