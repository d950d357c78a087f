//! The attack detectors and their normalisation on arbitrary values and field names: no panic,
//! at most one hit per family.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_detect::attack::{detect, normalize};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = normalize(&text);
    let key = text.lines().next().filter(|k| k.len() < 40);
    for key in [None, key] {
        let hits = detect(&text, key);
        let mut families: Vec<_> = hits.iter().map(|h| h.family).collect();
        families.sort();
        let n = families.len();
        families.dedup();
        assert_eq!(n, families.len(), "two hits of one family: {hits:?}");
    }
});
