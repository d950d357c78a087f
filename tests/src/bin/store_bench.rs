//! Store benchmark: what storing a record in a case costs (wall rate and CPU per record), by
//! commit size, writer count and DuckDB settings; and what analysing it costs (`--analyse`).
//! Real records: the sample captures' transactions, repeated.
//!
//! ```text
//! cargo run --release -p tapline-tests --bin store_bench -- [--records N] [--commit ROWS] [--writers W] [--wal-mb MB] [--threads T] [--compression C] [--capture FILE]
//! cargo run --release -p tapline-tests --bin store_bench -- --records N --analyse [--capture FILE]
//! ```

use anyhow::{Context, Result};
use std::time::Instant;
use tapline_store::CaseStore;
use tapline_tests::process_cpu_seconds as cpu;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = arg(&args, "--records").map_or(Ok(1_000_000), |v| v.parse())?;
    let commit: usize = arg(&args, "--commit").map_or(Ok(20_000), |v| v.parse())?;
    let writers: usize = arg(&args, "--writers").map_or(Ok(1), |v| v.parse())?;
    let tuning = tapline_store::Tuning {
        wal_mb: arg(&args, "--wal-mb").map(|v| v.parse()).transpose()?,
        threads: arg(&args, "--threads").map(|v| v.parse()).transpose()?,
        compression: arg(&args, "--compression"),
    };
    // The sample captures' records unless a capture is named (the benchmark capture, say).
    let recs = match arg(&args, "--capture") {
        Some(path) => tapline_tests::records_of(&[path.into()], n)?,
        None => tapline_tests::sample_records(n)?,
    };
    if args.iter().any(|a| a == "--analyse") {
        let (t, c) = (Instant::now(), cpu());
        let mut a = tapline_analysis::Analyses::default();
        for (i, tx) in recs.iter().enumerate() {
            a.observe(i as i64, tx);
        }
        let (ot, oc) = (t.elapsed().as_secs_f64(), cpu() - c);
        let d = a.finish(&[])?;
        let (ft, fc) = (t.elapsed().as_secs_f64() - ot, cpu() - c - oc);
        println!(
            "observe {:.0} rec/s, {:.2} us cpu/rec; finish {ft:.2} s ({fc:.2} cpu s); {} endpoints, {} findings",
            n as f64 / ot,
            oc * 1e6 / n as f64,
            d.endpoints.len(),
            d.findings.len()
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let store = CaseStore::open(&dir.path().join("p.duckdb"))?;
    store.tune_for_bench(tuning.clone())?;
    let (t, c) = (Instant::now(), cpu());
    let per = n.div_ceil(writers);
    std::thread::scope(|s| -> Result<()> {
        let mut hs = Vec::new();
        for (w, part) in recs.chunks(per).enumerate() {
            let mut wr = store.batch_writer(None)?;
            hs.push(s.spawn(move || -> Result<()> {
                let mut since = 0;
                let mut id = (w * per) as i64;
                for b in part.chunks(2000) {
                    wr.append(id, b)?;
                    id += b.len() as i64;
                    since += b.len();
                    if since >= commit {
                        wr.commit()?;
                        since = 0;
                    }
                }
                wr.commit()?;
                Ok(())
            }));
        }
        for h in hs {
            h.join().ok().context("a writer thread panicked")??;
        }
        Ok(())
    })?;
    let (appended, ac) = (t.elapsed().as_secs_f64(), cpu() - c);
    store.checkpoint()?;
    let (total, tc) = (t.elapsed().as_secs_f64(), cpu() - c);
    let size = std::fs::metadata(dir.path().join("p.duckdb"))?.len();
    println!(
        "commit {commit} writers {writers} {tuning:?}: append {:.0} rec/s wall, {:.2} us cpu/rec; with checkpoint {:.0} rec/s, {:.2} us cpu/rec; file {:.0} B/rec",
        n as f64 / appended,
        ac * 1e6 / n as f64,
        n as f64 / total,
        tc * 1e6 / n as f64,
        size as f64 / n as f64
    );
    Ok(())
}
