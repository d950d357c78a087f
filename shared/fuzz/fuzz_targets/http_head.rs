//! Differential: whenever the httparse fast path accepts a head, the lenient general parser
//! must read exactly the same head from the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_decode::http::head;

fuzz_target!(|data: &[u8]| {
    if let Some((fast, len)) = head::parse_request_fast(data) {
        let general = head::parse_request_head(&data[..len]);
        assert_eq!(Some(fast), general, "request fast path disagrees on {:?}", &data[..len]);
    } else {
        let _ = head::parse_request_head(data);
    }
    if let Some((fast, len)) = head::parse_response_fast(data) {
        let general = head::parse_response_head(&data[..len]);
        assert_eq!(Some(fast), general, "response fast path disagrees on {:?}", &data[..len]);
    } else {
        let _ = head::parse_response_head(data);
    }
    let _ = head::find_head_end(data);
    let _ = head::find_request_head_end(data);
});
