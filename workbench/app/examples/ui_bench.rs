//! Frame time of the desktop app on a large case: builds (once) a case of N transactions —
//! the sample captures imported, then their rows repeated with new ids and later times — and
//! drives the real app headlessly (egui_kittest, no GPU: the figure is the CPU time of the
//! UI per frame, the part Tapline's code decides) through each view while the query worker
//! answers in the background. Prints figures; asserts nothing about speed.
//!
//!   cargo run --release -p tapline-tests --bin ui_bench -- [--rows 10000000] [--case PATH]

use anyhow::{Context, Result};
use eframe::egui;
use egui_kittest::Harness;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tapline::ui::{Command, Launch, View, Workbench};
use tapline_store::CaseStore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let mut rows: u64 = 10_000_000;
    let mut case: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().context("--rows N")?.replace('_', "").parse()?,
            "--case" => case = Some(args.next().context("--case PATH")?.into()),
            other => anyhow::bail!("unknown argument {other:?} (use --rows N, --case PATH)"),
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let case = case.unwrap_or_else(|| repo.join("bench-data").join(format!("ui-{rows}.duckdb")));
    build_case(&case, &repo.join("sample-captures"), rows)?;

    let scratch = tempfile::tempdir()?;
    let launch = Launch {
        open: vec![case.clone()],
        data_dir: scratch.path().to_owned(),
        identity_dir: scratch.path().join("identity"),
        ..Launch::default()
    };
    let opened = Instant::now();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 900.0))
        .build_eframe(move |cc| Workbench::new(cc, launch));
    let mut frames = Frames::default();
    wait(&mut h, &mut frames, |w| {
        w.case
            .as_ref()
            .is_some_and(|c| c.overview.value.is_some() && c.inventory.value.is_some())
    });
    let total = h
        .state()
        .case
        .as_ref()
        .and_then(|c| c.overview.value.as_ref())
        .map_or(0, |o| o.transactions);
    println!("case {} with {total} transactions", case.display());
    println!(
        "overview and inventory loaded {:.2?} after opening",
        opened.elapsed()
    );

    let mut report = Vec::new();
    report.push(("overview (loaded, idle)", idle_frames(&mut h, 120)));

    h.state_mut().push(Command::Show(View::Traffic));
    let t = Instant::now();
    let mut f = Frames::default();
    wait(&mut h, &mut f, |w| {
        w.case
            .as_ref()
            .is_some_and(|c| c.tx.row(0).is_some() && c.tx.count.value.is_some())
    });
    println!(
        "traffic: first page and count of all rows in {:.2?}",
        t.elapsed()
    );
    report.push((
        "traffic (scrolling 20 rows a frame)",
        scroll_frames(&mut h, 300, -400.0),
    ));

    // Deep in the table: the window half-way through, pages fetched with OFFSET.
    let half = total / 2;
    h.state_mut().views.traffic.window_start = half / 100_000 * 100_000;
    let t = Instant::now();
    let mut f = Frames::default();
    let want = half / 100_000 * 100_000;
    // Whichever rows of the new window are on screen (the scroll position is kept).
    wait(&mut h, &mut f, |w| {
        w.case.as_ref().is_some_and(|c| {
            (want..want + 100_000)
                .step_by(50)
                .any(|r| c.tx.row(r).is_some())
        })
    });
    println!("traffic: a page {want} rows deep in {:.2?}", t.elapsed());
    report.push((
        "traffic deep (scrolling)",
        scroll_frames(&mut h, 200, -400.0),
    ));

    // A filter over every row (free text scans host, URI and headers).
    let t = Instant::now();
    let filter = tapline_store::query::TxFilter {
        text: Some("/api/v1/search".into()),
        ..Default::default()
    };
    h.state_mut().push(Command::ShowTraffic(Box::new(filter)));
    let mut f = Frames::default();
    f.step(&mut h); // handles the command: the count is asked for
    wait(&mut h, &mut f, |w| {
        w.case
            .as_ref()
            .is_some_and(|c| !c.tx.count.is_loading() && c.tx.count.value.is_some())
    });
    let n = h
        .state()
        .case
        .as_ref()
        .and_then(|c| c.tx.count.value)
        .unwrap_or(0);
    println!(
        "traffic: free-text filter counted {n} rows in {:.2?}; frames meanwhile: {}",
        t.elapsed(),
        f.summary()
    );
    report.push(("traffic (filtered, idle)", idle_frames(&mut h, 120)));

    for (view, label) in [
        (View::Inventory, "inventory"),
        (View::Sensitive, "sensitive data"),
        (View::Attacks, "attacks"),
    ] {
        h.state_mut().push(Command::Show(view));
        report.push((label, idle_frames(&mut h, 120)));
    }
    println!();
    println!("UI CPU time per frame (egui layout + Tapline's view code; rendering excluded):");
    println!(
        "{:<38} {:>7} {:>7} {:>7} {:>7}",
        "view", "mean", "p50", "p99", "max"
    );
    for (label, f) in &report {
        let (mean, p50, p99, max) = f.stats();
        println!("{label:<38} {mean:>5.2}ms {p50:>5.2}ms {p99:>5.2}ms {max:>5.2}ms");
    }
    println!(
        "slowest query answered by the worker: {:.2?}",
        h.state()
            .case
            .as_ref()
            .map_or(Duration::ZERO, |c| c.slowest_query)
    );
    Ok(())
}

#[derive(Default)]
struct Frames(Vec<Duration>);

impl Frames {
    fn step(&mut self, h: &mut Harness<'_, Workbench>) {
        let t = Instant::now();
        h.step();
        self.0.push(t.elapsed());
    }

    fn stats(&self) -> (f64, f64, f64, f64) {
        let mut v: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return (0.0, 0.0, 0.0, 0.0);
        }
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (
            v.iter().sum::<f64>() / v.len() as f64,
            at(0.5),
            at(0.99),
            at(1.0),
        )
    }

    fn summary(&self) -> String {
        let (mean, _, _, max) = self.stats();
        format!(
            "{} frames, mean {mean:.2} ms, max {max:.2} ms",
            self.0.len()
        )
    }
}

/// Steps (at ~60 fps of wall time) until `done`, for at most two minutes.
fn wait(h: &mut Harness<'_, Workbench>, frames: &mut Frames, done: impl Fn(&Workbench) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) && Instant::now() < deadline {
        frames.step(h);
        std::thread::sleep(Duration::from_millis(16));
    }
}

fn idle_frames(h: &mut Harness<'_, Workbench>, n: usize) -> Frames {
    let mut f = Frames::default();
    for _ in 0..n {
        f.step(h);
    }
    f
}

/// `n` frames, each with the pointer over the table and a wheel turn of `dy` points.
fn scroll_frames(h: &mut Harness<'_, Workbench>, n: usize, dy: f32) -> Frames {
    let mut f = Frames::default();
    for i in 0..n {
        h.hover_at(egui::pos2(700.0, 500.0));
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, dy),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: egui::Modifiers::NONE,
        });
        f.step(h);
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_millis(16)); // let some pages arrive
        }
    }
    f
}

/// A case of at least `rows` transactions: the sample captures imported (endpoints,
/// findings, data classes), then their rows repeated with new ids, 4 s later per copy.
fn build_case(path: &Path, samples: &Path, rows: u64) -> Result<()> {
    if path.exists() {
        let store = CaseStore::open(path)?;
        if store.transaction_count()? >= rows {
            return Ok(());
        }
        drop(store);
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let t = Instant::now();
    let mut store = CaseStore::open(path)?;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    for f in ["shop-api.pcap", "abuse-api.pcap"] {
        tapline_ingest::import::import_file(
            &mut store,
            &samples.join(f),
            &tapline_ingest::import::ImportOptions::default(),
            &cancel,
            &mut |_| {},
        )?;
    }
    let base = store.transaction_count()?;
    let copies = rows.div_ceil(base.max(1));
    eprintln!(
        "ui_bench: writing {copies} copies of {base} transactions to {} …",
        path.display()
    );
    let n = store.replicate_transactions(copies)?;
    eprintln!(
        "ui_bench: case of {n} transactions built in {:.1?}",
        t.elapsed()
    );
    Ok(())
}
