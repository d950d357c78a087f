//! Detector throughput: decodes a capture once, then (1) classifies every value of every
//! transaction for sensitive data (headers, cookies, path, query, bodies) the way an import
//! does, and (2) runs the attack detectors over every request (path, query, headers, cookies,
//! form and JSON values, framing). Prints transactions/s and MB/s per core. Figures, not
//! assertions.
//!
//! ```text
//! cargo run --release -p tapline-tests --bin detect_bench -- CAPTURE.pcap [--max-tx N] [--rounds 3]
//! ```

use anyhow::{Context, Result};
use std::time::Instant;
use tapline_analysis::behaviour::{Behaviour, Thresholds};
use tapline_decode::EngineConfig;
use tapline_detect::attack::RequestScanner;
use tapline_detect::classify::Confidence;
use tapline_detect::sensitive::Scanner;
use tapline_ingest::capture_file::decode_file;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn headers_len(h: &tapline_record::Headers) -> usize {
    h.iter().map(|(n, v)| n.len() + v.len()).sum()
}

/// Bytes of a request's target, headers and body.
fn request_len(t: &tapline_record::Transaction) -> usize {
    t.uri.len() + headers_len(&t.request_headers) + t.request_body.data.len()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut max_tx = 300_000usize;
    let mut rounds = 3usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--max-tx" => max_tx = args.next().context("--max-tx N")?.parse()?,
            "--rounds" => rounds = args.next().context("--rounds N")?.parse()?,
            other => file = Some(std::path::PathBuf::from(other)),
        }
    }
    let file = file.context("usage: detect_bench CAPTURE [--max-tx N] [--rounds N]")?;
    let mut decoded = decode_file(&file, EngineConfig::default())?;
    decoded.transactions.truncate(max_tx);
    let txs = &decoded.transactions;
    let bytes: usize = txs
        .iter()
        .map(|t| request_len(t) + headers_len(&t.response_headers) + t.response_body.data.len())
        .sum();
    let body_bytes: usize = txs
        .iter()
        .map(|t| t.request_body.data.len() + t.response_body.data.len())
        .sum();
    let mut scanner = Scanner::default();
    let mut best = f64::MAX;
    let mut hits = 0usize;
    let mut counted = 0usize;
    for _ in 0..rounds {
        hits = 0;
        counted = 0;
        let t0 = Instant::now();
        for tx in txs {
            scanner.scan(tx, &mut |f| {
                hits += 1;
                counted += usize::from(f.hit.confidence >= Confidence::Medium);
            });
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    let request_bytes: usize = txs.iter().map(request_len).sum();
    let mut best_attack = f64::MAX;
    let mut attack_hits = 0usize;
    for _ in 0..rounds {
        attack_hits = 0;
        // A fresh scanner per round: its memory of clean values must not carry over.
        let mut attacks = RequestScanner::default();
        let t0 = Instant::now();
        for tx in txs {
            attacks.scan(tx, &mut |_| attack_hits += 1);
        }
        best_attack = best_attack.min(t0.elapsed().as_secs_f64());
    }
    // Behaviour: discovery's endpoint keys and path objects first (not timed: discovery runs
    // anyway), then the events and the detectors' frame queries.
    let mut discovery = tapline_analysis::discovery::Discovery::new(false);
    let keys: Vec<(Option<String>, Option<String>)> = txs
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            let resolved = discovery.observe(i as i64, tx);
            (
                resolved.map(|r| r.key.to_owned()),
                resolved.and_then(|r| r.object).map(str::to_owned),
            )
        })
        .collect();
    let (mut best_observe, mut best_finish, mut behaviour_findings) = (f64::MAX, f64::MAX, 0);
    for _ in 0..rounds {
        let mut b = Behaviour::default();
        let t0 = Instant::now();
        for (i, (tx, (key, object))) in txs.iter().zip(&keys).enumerate() {
            b.observe(i as i64, tx, key.as_deref(), object.as_deref());
        }
        best_observe = best_observe.min(t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        behaviour_findings = b.finish(&Thresholds::default())?.len();
        best_finish = best_finish.min(t1.elapsed().as_secs_f64());
    }
    println!("transactions        {}", txs.len());
    println!("-- sensitive data (both sides)");
    println!(
        "bytes scanned       {:.1} MB ({:.1} MB bodies)",
        bytes as f64 / 1e6,
        body_bytes as f64 / 1e6
    );
    println!("hits                {hits} ({counted} medium or high)");
    println!("best of {rounds}          {best:.3} s on one core");
    println!(
        "throughput          {:.0} tx/s, {:.1} MB/s of values ({:.1} MB/s of bodies)",
        txs.len() as f64 / best,
        bytes as f64 / 1e6 / best,
        body_bytes as f64 / 1e6 / best
    );
    println!("-- attack detectors (requests)");
    println!("request bytes       {:.1} MB", request_bytes as f64 / 1e6);
    println!("detections          {attack_hits}");
    println!("best of {rounds}          {best_attack:.3} s on one core");
    println!(
        "throughput          {:.0} requests/s, {:.1} MB/s",
        txs.len() as f64 / best_attack,
        request_bytes as f64 / 1e6 / best_attack
    );
    println!("-- behaviour (events, then the frame queries)");
    println!("findings            {behaviour_findings}");
    println!(
        "observe             {best_observe:.3} s on one core, {:.0} requests/s",
        txs.len() as f64 / best_observe
    );
    println!(
        "finish              {best_finish:.3} s ({:.0} requests/s)",
        txs.len() as f64 / best_finish
    );
    Ok(())
}
