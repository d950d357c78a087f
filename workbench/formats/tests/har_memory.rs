//! Reading a HAR document holds one entry, not the document: its heap does not grow with the
//! number of entries. (Parsed whole, as before, 20,000 entries of 2 KB held 40 MB and more.)
//! Its own test binary, so no other test allocates in the process while it measures.

#![allow(clippy::unwrap_used)]

use tapline_formats::har::{Flow, stream};

fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn streaming_a_har_document_holds_one_entry() {
    let body = "x".repeat(2048);
    let entry = |i: usize| {
        format!(
            r#"{{"startedDateTime":"2024-01-02T03:04:05Z","time":1,"request":{{"method":"GET","url":"http://api.test/items/{i}"}},"response":{{"status":200,"content":{{"text":"{body}"}}}}}}"#
        )
    };
    let entries: Vec<String> = (0..20_000).map(entry).collect();
    let doc = format!(r#"{{"log":{{"entries":[{}]}}}}"#, entries.join(","));
    drop(entries);
    let before = rss_anon_kib();
    let mut peak = before;
    let mut seen = 0usize;
    let n = stream(doc.as_bytes(), 1 << 20, &mut |tx| {
        seen += tx.response_body.data.len();
        if seen.is_multiple_of(1000 * 2048) {
            peak = peak.max(rss_anon_kib());
        }
        Flow::Go
    });
    assert_eq!(n.ok(), Some(20_000));
    assert_eq!(seen, 20_000 * 2048);
    let grew = peak.saturating_sub(before);
    eprintln!(
        "a {} MB document read with {grew} KiB more heap",
        doc.len() >> 20
    );
    assert!(grew < 4 * 1024, "the heap grew by {grew} KiB");
}
