//! The sample captures decode to exactly what the recording client sent and received.

use std::collections::BTreeMap;
use tapline_decode::{EngineConfig, decode_capture};
use tapline_record::Transaction;
use tapline_tests::{expected, sample_captures};

fn decode(name: &str) -> Vec<Transaction> {
    let path = sample_captures().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoded = decode_capture(&bytes, EngineConfig::default()).expect("readable capture");
    assert!(decoded.error.is_none(), "{name}: {:?}", decoded.error);
    decoded.transactions
}

/// (client ip, method, uri, status) → count
fn tally<I: IntoIterator<Item = (String, String, String, u16)>>(
    items: I,
) -> BTreeMap<(String, String, String, u16), usize> {
    let mut m = BTreeMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[test]
fn pcap_matches_the_recording_clients_ground_truth() {
    let txs = decode("shop-api.pcap");
    let want = expected("shop-api");
    assert_eq!(txs.len(), want.len());
    let got = tally(txs.iter().map(|t| {
        (
            t.client.map(|c| c.ip().to_string()).unwrap_or_default(),
            t.method.to_string(),
            t.uri.clone(),
            t.status.unwrap_or(0),
        )
    }));
    let want = tally(
        want.iter()
            .map(|e| (e.client.clone(), e.method.clone(), e.uri.clone(), e.status)),
    );
    assert_eq!(got, want);
    for t in &txs {
        assert!(
            t.anomalies.is_empty(),
            "{} {}: {:?}",
            t.method,
            t.uri,
            t.anomalies
        );
        assert_eq!(t.host.as_deref(), Some("127.0.0.1:18088"));
    }
}

#[test]
fn pcapng_decodes_exactly_like_pcap() {
    assert_eq!(decode("shop-api.pcap"), decode("shop-api.pcapng"));
}

#[test]
fn bodies_are_dechunked_decompressed_and_carry_the_pii() {
    let txs = decode("shop-api.pcap");
    let products: Vec<_> = txs
        .iter()
        .filter(|t| t.uri == "/api/v1/products?page=1")
        .collect();
    assert_eq!(products.len(), 3);
    for t in products {
        assert_eq!(t.response_header("content-encoding"), Some("gzip"));
        assert_eq!(t.response_header("transfer-encoding"), Some("chunked"));
        let json: serde_json::Value =
            serde_json::from_slice(&t.response_body.data).expect("decoded body is JSON");
        assert_eq!(json["items"].as_array().map(Vec::len), Some(20));
    }
    let bola_reads = txs
        .iter()
        .filter(|t| {
            t.client.is_some_and(|c| c.ip().to_string() == "127.0.0.66")
                && t.path().starts_with("/api/v1/users/")
                && t.status == Some(200)
        })
        .count();
    assert_eq!(bola_reads, 19);
    let user7 = txs
        .iter()
        .find(|t| t.uri == "/api/v1/users/7")
        .expect("user 7 read");
    let body: serde_json::Value = serde_json::from_slice(&user7.response_body.data).unwrap();
    assert_eq!(body["email"], "grace@example.com");
    assert_eq!(body["card"], "5555555555554444");
}

/// The shop capture with every Ethernet header replaced: link type `link`, each frame's IP
/// packet behind `head(ip)`. A classic pcap, microsecond times.
fn relinked(link: u32, head: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let bytes = std::fs::read(sample_captures().join("shop-api.pcap")).expect("sample");
    let mut out = bytes[..20].to_vec();
    out.extend_from_slice(&link.to_le_bytes());
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        let frame = &bytes[at + 16..at + 16 + caplen];
        let ip = &frame[14..];
        let new = [head(ip), ip.to_vec()].concat();
        out.extend_from_slice(&bytes[at..at + 8]);
        out.extend_from_slice(&(new.len() as u32).to_le_bytes());
        out.extend_from_slice(&(new.len() as u32).to_le_bytes());
        out.extend_from_slice(&new);
        at += 16 + caplen;
    }
    out
}

#[test]
fn ppp_pppoe_and_cisco_hdlc_links_decode_like_ethernet() {
    let want = decode("shop-api.pcap");
    let pppoe = |ip: &[u8]| {
        let mut h = vec![
            0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x88, 0x64, 0x11, 0x00, 0x00, 0x07,
        ];
        h.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        h.extend_from_slice(&[0x00, 0x21]);
        h
    };
    let variants: [(&str, Vec<u8>); 4] = [
        (
            "cisco hdlc (104)",
            relinked(104, |_| vec![0x0f, 0x00, 0x08, 0x00]),
        ),
        ("ppp (9)", relinked(9, |_| vec![0xff, 0x03, 0x00, 0x21])),
        ("ppp, protocol compressed (9)", relinked(9, |_| vec![0x21])),
        ("pppoe session on ethernet (1)", relinked(1, pppoe)),
    ];
    for (what, bytes) in variants {
        let got = decode_capture(&bytes, EngineConfig::default()).expect("readable");
        assert!(got.error.is_none(), "{what}: {:?}", got.error);
        assert_eq!(got.transactions, want, "{what}");
    }
}
