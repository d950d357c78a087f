//! XSS against variants generated from a grammar of how payloads are built
//! (`tests/data/xss/generate.py`): the context a value breaks out of, the vector, the
//! spellings browsers accept and the encodings applications undo — and benign look-alikes an
//! API carries. Split by a hash of the text into a `dev` half (tuned on) and a `test` half
//! (only measured); the bars hold on both. The table is printed for tests/CONFORMANCE.md.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use tapline_detect::attack::{Family, detect};

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    xss: bool,
    kind: String,
    half: String,
}

#[test]
fn xss_variants_are_found_and_look_alikes_are_not_on_both_halves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/xss/cases.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    // (half, kind) → (flagged as XSS, cases)
    let mut tally: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for line in text.lines() {
        let c: Case = serde_json::from_str(line).unwrap();
        let flagged = detect(&c.text, None)
            .iter()
            .any(|h| h.family == Family::Xss);
        let t = tally.entry((c.half.clone(), c.kind.clone())).or_default();
        t.0 += usize::from(flagged);
        t.1 += 1;
        if flagged != c.xss {
            wrong.push(format!("{} {}: {:?}", c.half, c.kind, c.text));
        }
    }
    for w in wrong.iter().take(40) {
        println!("{w}");
    }
    println!("| half | kind | flagged as XSS | rate |\n|---|---|---:|---:|");
    for ((half, kind), (hit, of)) in &tally {
        let rate = *hit as f64 / *of as f64;
        println!("| {half} | {kind} | {hit}/{of} | {rate:.3} |");
        if kind == "benign" {
            assert!(rate <= 0.02, "{half}: {rate:.3} of look-alikes flagged");
        } else {
            assert!(rate >= 0.97, "{half} {kind}: {rate:.3} of variants found");
        }
    }
}
