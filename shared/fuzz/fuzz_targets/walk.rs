//! The field walker on arbitrary bodies, with and without a content type (XML, form and JSON
//! sniffing), in both walks: no panic, every value a slice of valid text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_record::Transaction;
use tapline_detect::fields::{Walk, Walker};

fuzz_target!(|data: &[u8]| {
    let (ct, body) = match data.split_first() {
        Some((b, rest)) => (
            ["", "application/xml", "text/xml", "application/x-www-form-urlencoded", "application/json"]
                [usize::from(*b) % 5],
            rest,
        ),
        None => ("", data),
    };
    let mut tx = Transaction { method: "POST".into(), uri: "/x?a=1".into(), ..Transaction::default() };
    if !ct.is_empty() {
        tx.request_headers.push("Content-Type", ct);
        tx.response_headers.push("Content-Type", ct);
    }
    tx.request_body.data = body.to_vec();
    tx.response_body.data = body.to_vec();
    let mut walker = Walker::default();
    let mut values = 0usize;
    for walk in [Walk::REQUEST, Walk::DATA] {
        walker.walk(&tx, walk, &mut |f| {
            values += 1;
            assert!(f.location.len() <= 400);
            let _ = f.value.len();
        });
    }
    // Bounded work: no body yields more values than bytes (plus headers and query).
    assert!(values <= 2 * (body.len() + 8), "{values} values from {} bytes", body.len());
});
