//! The HTTP/1.x connection parser on arbitrary client and server byte streams, cut into
//! arbitrary pieces, with gaps. Never a panic; bodies stay within their caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_record::Anomalies;
use tapline_decode::http::{Direction, HttpConfig, HttpConnection};

fuzz_target!(|data: &[u8]| {
    let cfg = HttpConfig {
        max_body: 256,
        max_encoded_body: 512,
        max_decoded: 1024,
        ..HttpConfig::default()
    };
    let midstream = data.first().is_some_and(|b| b & 1 == 1);
    let mut conn = HttpConnection::new(None, None, midstream);
    let mut out = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    // Pieces: [dir/gap, len] then `len` bytes.
    while rest.len() >= 2 {
        let (ctl, len) = (rest[0], usize::from(rest[1]).min(rest.len() - 2));
        let piece = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let dir = if ctl & 1 == 0 {
            Direction::FromClient
        } else {
            Direction::FromServer
        };
        if ctl & 0x80 != 0 {
            conn.gap(dir, u64::from(ctl & 0x3f), &cfg, &mut out);
        } else {
            conn.data(dir, i64::from(ctl), piece, &cfg, &mut out);
        }
    }
    conn.close(Anomalies::NONE, &cfg, &mut out);
    for t in &out {
        assert!(t.request_body.data.len() <= cfg.max_body);
        assert!(t.response_body.data.len() <= cfg.max_body);
    }
});
