//! Location-aware scanning and redaction of a transaction whose URI, cookie and bodies are
//! arbitrary: no panic; after a mask-everything policy nothing classifiable is left in the
//! bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_record::Transaction;
use tapline_detect::sensitive::{Action, Policy, Redactor, Rule, Scanner};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let uri = parts.next().unwrap_or("/");
    let cookie = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    let mut tx = Transaction { method: "POST".into(), uri: uri.to_owned(), ..Transaction::default() };
    tx.request_headers.push("Cookie", cookie);
    tx.request_headers.push("Content-Type", "application/json");
    tx.request_body.data = body.as_bytes().to_vec();
    tx.response_headers.push("Content-Type", "application/x-www-form-urlencoded");
    tx.response_body.data = body.as_bytes().to_vec();
    let mut scanner = Scanner::default();
    scanner.scan(&tx, &mut |f| {
        assert!(f.hit.end <= f.value.len());
    });
    let policy = Policy {
        hash_key: None,
        rules: vec![Rule { classes: vec!["*".into()], locations: vec![], action: Action::Drop }],
    };
    if let Ok(red) = Redactor::new(&policy) {
        red.apply(&mut tx, &mut scanner);
    }
});
