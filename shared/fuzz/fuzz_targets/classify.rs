//! The classifiers on arbitrary text and field names: no panic, every span inside the value
//! and on character boundaries, hits sorted and not overlapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_detect::classify::classify;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line doubles as a field name.
    let key = text.lines().next().filter(|k| k.len() < 40);
    for key in [None, key] {
        let hits = classify(&text, key);
        let mut prev_end = 0;
        for h in &hits {
            assert!(h.start < h.end && h.end <= text.len(), "{h:?} outside {} bytes", text.len());
            assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end), "{h:?}");
            assert!(h.start >= prev_end, "overlapping hits {hits:?}");
            prev_end = h.end;
        }
    }
});
