//! Import benchmark: a capture into a fresh case file end to end — decode, store, the analysis
//! that exists — printing wall time, transactions/s, peak memory and case-file size.
//!
//! ```text
//! cargo run --release -p tapline-tests --bin import_bench -- BENCH.pcap [--db CASE.duckdb] [--threads N] [--batch TX] [--runs 3] [--no-sensitive] [--no-attacks] [--no-behaviour]
//! ```

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tapline_ingest::import::{ImportOptions, ImportOutcome, import_file};
use tapline_store::CaseStore;
use tapline_tests::PeakAnon;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut pcap = None;
    let mut db = None;
    let mut opts = ImportOptions::default();
    let mut runs = 3usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--db" => db = args.next().map(PathBuf::from),
            "--no-sensitive" => opts.detectors.sensitive = false,
            "--no-attacks" => opts.detectors.attacks = false,
            "--no-behaviour" => opts.detectors.behaviour = false,
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|t| t.parse().ok())
                    .context("--runs needs a number")?
            }
            "--batch" => {
                opts.batch = args
                    .next()
                    .and_then(|t| t.parse().ok())
                    .context("--batch needs a number")?
            }
            "--threads" => {
                opts.threads = args
                    .next()
                    .and_then(|t| t.parse().ok())
                    .context("--threads needs a number")?
            }
            _ if a.starts_with('-') => bail!("unknown option {a}"),
            _ => pcap = Some(PathBuf::from(a)),
        }
    }
    let pcap = pcap.context("usage: import_bench FILE.pcap [--db CASE] [--threads N]")?;
    let tmp = std::env::temp_dir().join(format!("tapline-import-bench-{}", std::process::id()));
    let db = db.unwrap_or_else(|| tmp.join("case.duckdb"));
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if db.exists() {
        bail!("{} exists; the benchmark wants a fresh case", db.display());
    }
    let size = std::fs::metadata(&pcap)
        .with_context(|| format!("cannot stat {}", pcap.display()))?
        .len();
    // Warm the page cache so the figure is about Tapline, not the disk.
    std::fs::read(&pcap)?;
    let mut walls = Vec::new();
    let mut outcome = None;
    let mut peak_kib = 0;
    for run in 0..runs.max(1) {
        if run > 0 {
            let _ = std::fs::remove_file(&db);
            let _ = std::fs::remove_file(db.with_extension("duckdb.wal"));
        }
        let peak = PeakAnon::start();
        let started = Instant::now();
        let mut store = CaseStore::open(&db)?;
        let cancel = AtomicBool::new(false);
        outcome = Some(import_file(&mut store, &pcap, &opts, &cancel, &mut |_| {})?);
        drop(store);
        walls.push(started.elapsed().as_secs_f64());
        peak_kib = peak_kib.max(peak.stop());
    }
    let mut sorted = walls.clone();
    sorted.sort_by(f64::total_cmp);
    let wall = sorted[sorted.len() / 2];
    let outcome = outcome.context("no run")?;
    let ImportOutcome::Imported(s) = outcome else {
        bail!("unexpected outcome {outcome:?}");
    };
    let case_bytes: u64 = std::fs::read_dir(db.parent().unwrap_or(&tmp))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&*db.file_name().unwrap_or_default().to_string_lossy())
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let hwm = tapline_tests::proc_status_kib("VmHWM");
    println!(
        "capture           {} ({:.1} MB, {} packets)",
        pcap.display(),
        size as f64 / 1e6,
        s.packets
    );
    println!("transactions      {}", s.transactions);
    println!(
        "wall              {wall:.2} s, median of {} runs ({} s); decode on {} threads, store, discovery, checkpoint",
        walls.len(),
        walls
            .iter()
            .map(|w| format!("{w:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        opts.threads
    );
    println!(
        "rate              {:.0} transactions/s, {:.0} MB/s",
        s.transactions as f64 / wall,
        size as f64 / 1e6 / wall
    );
    println!(
        "peak heap         {:.0} MiB (anonymous RSS; the mapped capture is page cache)",
        peak_kib as f64 / 1024.0
    );
    println!(
        "peak RSS          {:.0} MiB (including mapped capture pages)",
        hwm as f64 / 1024.0
    );
    println!(
        "case file         {:.1} MB ({:.0} bytes/transaction)",
        case_bytes as f64 / 1e6,
        case_bytes as f64 / s.transactions.max(1) as f64
    );
    query_figures(&db)?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// What the GUI asks of a case this size: pages of the traffic table under different sorts and
/// filters, counts, a histogram. Each is timed on its own (best of three).
fn query_figures(db: &std::path::Path) -> Result<()> {
    use tapline_store::query::{Page, SortKey, TxFilter};
    let store = CaseStore::open(db)?;
    let time = |f: &dyn Fn() -> Result<usize>| -> Result<(f64, usize)> {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..3 {
            let t = Instant::now();
            n = f()?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok((best, n))
    };
    let page = |offset, sort, descending| Page {
        offset,
        limit: 100,
        sort,
        descending,
    };
    let all = TxFilter::default();
    let logins = TxFilter {
        path_contains: Some("/login".into()),
        status: Some((400, 499)),
        ..TxFilter::default()
    };
    let text = TxFilter {
        text: Some("OR '1'='1".into()),
        ..TxFilter::default()
    };
    let count = store.count_transactions(&all)?;
    type Query<'a> = Box<dyn Fn() -> Result<usize> + 'a>;
    let cases: Vec<(&str, Query<'_>)> = vec![
        (
            "first page, by time",
            Box::new(|| {
                Ok(store
                    .query_transactions(&all, &page(0, SortKey::Time, false))?
                    .len())
            }),
        ),
        (
            "page at 90%, by time",
            Box::new(|| {
                Ok(store
                    .query_transactions(&all, &page(count * 9 / 10, SortKey::Time, false))?
                    .len())
            }),
        ),
        (
            "first page, by latency desc",
            Box::new(|| {
                Ok(store
                    .query_transactions(&all, &page(0, SortKey::Latency, true))?
                    .len())
            }),
        ),
        (
            "first page, by path",
            Box::new(|| {
                Ok(store
                    .query_transactions(&all, &page(0, SortKey::Path, false))?
                    .len())
            }),
        ),
        (
            "failed logins, first page",
            Box::new(|| {
                Ok(store
                    .query_transactions(&logins, &page(0, SortKey::Time, true))?
                    .len())
            }),
        ),
        (
            "failed logins, count",
            Box::new(|| Ok(store.count_transactions(&logins)? as usize)),
        ),
        (
            "free text in URI/headers, first page",
            Box::new(|| {
                Ok(store
                    .query_transactions(&text, &page(0, SortKey::Time, false))?
                    .len())
            }),
        ),
        (
            "count all",
            Box::new(|| Ok(store.count_transactions(&all)? as usize)),
        ),
        (
            "histogram, 1 s buckets",
            Box::new(|| Ok(store.time_histogram(&all, 1_000_000_000)?.len())),
        ),
        ("status mix", Box::new(|| Ok(store.status_mix(&all)?.len()))),
        (
            "one whole transaction",
            Box::new(|| Ok(store.transaction(count as i64 / 2)?.map_or(0, |_| 1))),
        ),
    ];
    println!("\nqueries over {count} transactions (best of 3):");
    for (name, f) in &cases {
        let (ms, n) = time(f.as_ref())?;
        println!("  {name:<40} {ms:>8.1} ms  ({n} rows)");
    }
    Ok(())
}
