//! Phone numbers against cases generated from libphonenumber's metadata
//! (`tests/data/phones/generate.py`): 28 countries' mobile and fixed-line numbers in E.164,
//! international and national form, and negatives an API carries (ids, dates, amounts,
//! versions, order numbers, timestamps). Split by a hash of the text into a `dev` half (tuned
//! on) and a `test` half (only measured); the bars hold on both. The table is printed for
//! tests/CONFORMANCE.md.

// Test helpers: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use tapline_detect::classify::{DataClass, classify};

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    phone: Option<String>,
    half: String,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Default)]
struct Tally {
    hit: usize,
    of: usize,
}

#[test]
fn phones_in_every_written_form_on_both_halves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/phones/cases.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let mut found: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut flagged: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    for line in text.lines() {
        let c: Case = serde_json::from_str(line).unwrap();
        let phones: Vec<&str> = classify(&c.text, None)
            .into_iter()
            .filter(|h| h.class == DataClass::PhoneNumber)
            .map(|h| &c.text[h.start..h.end])
            .collect();
        match &c.phone {
            Some(want) => {
                let t = found
                    .entry((c.half.clone(), c.format.clone().unwrap_or_default()))
                    .or_default();
                t.of += 1;
                if phones.contains(&want.as_str()) {
                    t.hit += 1;
                } else {
                    misses.push(format!("{} ({:?})", c.text, c.format));
                }
            }
            None => {
                let t = flagged.entry(c.half.clone()).or_default();
                t.of += 1;
                t.hit += usize::from(!phones.is_empty());
            }
        }
    }
    println!("| half | form | found | recall |\n|---|---|---:|---:|");
    for ((half, form), t) in &found {
        let r = t.hit as f64 / t.of as f64;
        println!("| {half} | {form} | {}/{} | {r:.3} |", t.hit, t.of);
        let bar = if form == "national" { 0.85 } else { 0.99 };
        assert!(r >= bar, "{half} {form}: recall {r:.3} below {bar}");
    }
    for (half, t) in &flagged {
        let share = t.hit as f64 / t.of as f64;
        println!(
            "| {half} | not a phone, flagged | {}/{} | {share:.3} |",
            t.hit, t.of
        );
        assert!(share <= 0.01, "{half}: {share:.3} of non-phones flagged");
    }
    println!("national forms missed: {}", misses.len());
    for m in &misses {
        println!("  {m}");
    }
}
