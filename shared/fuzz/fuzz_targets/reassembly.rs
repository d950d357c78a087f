//! The flow table and reassembler under arbitrary segment sequences on a few connections:
//! out of order, overlapping, retransmitted, with SYN/FIN/RST anywhere. Memory must stay
//! within the configured caps and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use tapline_decode::flow::{FlowLimits, FlowTable};
use tapline_decode::http::HttpConfig;
use tapline_decode::packet::TcpSegment;
use tapline_decode::reassembly::ReassemblyLimits;

fuzz_target!(|data: &[u8]| {
    let limits = FlowLimits {
        max_flows: 4,
        max_ooo_total: 4096,
        reassembly: ReassemblyLimits {
            max_ooo_bytes: 1024,
            max_ooo_segments: 8,
        },
        ..FlowLimits::default()
    };
    let cfg = HttpConfig {
        max_body: 4096,
        max_encoded_body: 8192,
        max_decoded: 65536,
        max_head: 2048,
        max_pending: 4,
    };
    let mut table = FlowTable::new(limits);
    let mut out = Vec::new();
    let mut rest = data;
    let mut ts = 0i64;
    // Each segment: [conn+dir, flags, seq hi, seq lo, len] then `len` payload bytes.
    while rest.len() >= 5 {
        let (hdr, tail) = rest.split_at(5);
        let len = usize::from(hdr[4] % 64).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let conn = u16::from(hdr[0] % 6);
        let from_client = hdr[0] & 0x80 == 0;
        let client = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000 + conn);
        let server = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
        let (src, dst) = if from_client { (client, server) } else { (server, client) };
        let seq = u32::from(u16::from_be_bytes([hdr[2], hdr[3]])) << 4;
        let seg = TcpSegment {
            src: src.0,
            dst: dst.0,
            src_port: src.1,
            dst_port: dst.1,
            seq: seq.wrapping_add(if from_client { 1000 } else { 9000 }),
            ack: 0,
            flags: hdr[1] & 0x1f,
            payload,
            wire_payload_len: payload.len() as u32 + u32::from(hdr[1] >> 7),
        };
        ts += i64::from(hdr[1] >> 5) * 50_000_000_000;
        table.segment(ts, &seg, &cfg, &mut out);
        assert!(table.len() <= 4);
        let ooo = table.ooo_buffered();
        assert!(ooo.total <= 4096, "{ooo:?}");
        assert!(ooo.max_direction <= 1024, "{ooo:?}");
        // Heads, carried bytes and kept bodies per connection are capped by HttpConfig (the
        // factor 2 allows for vectors' spare capacity).
        let http = table.http_buffered();
        let per_conn = 2 * 2 * (cfg.max_head + cfg.max_encoded_body)
            + (cfg.max_pending + 1) * 2 * cfg.max_body;
        assert!(http <= 4 * per_conn, "{http} bytes in HTTP buffers");
    }
    table.close_all(&cfg, &mut out);
});
