//! The case store and import pipeline end to end, through the `tapline` library and binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use tapline_store::CaseStore;
use tapline_store::query::{Page, SortKey, TxFilter};
mod common;

use common::{sample_captures, synth_pcap};
use tapline_ingest::import::{ImportOptions, ImportOutcome, import_file};

fn import(store: &mut CaseStore, file: &Path) -> anyhow::Result<ImportOutcome> {
    import_file(
        store,
        file,
        &ImportOptions::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
}

fn tapline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tapline"))
}

/// Runs a command and fails the test with its stderr when it fails.
fn run_ok(c: &mut Command) {
    let out = c.output().expect("cannot run tapline");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn duplicate_import_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = CaseStore::open(&dir.path().join("case.duckdb")).unwrap();
    let pcap = sample_captures().join("shop-api.pcap");
    match import(&mut store, &pcap).unwrap() {
        ImportOutcome::Imported(s) => assert_eq!(s.transactions, 83),
        other => panic!("first import: {other:?}"),
    }
    match import(&mut store, &pcap).unwrap() {
        ImportOutcome::AlreadyImported { transactions, .. } => assert_eq!(transactions, 83),
        other => panic!("second import must be refused: {other:?}"),
    }
    assert_eq!(store.transaction_count().unwrap(), 83);
    assert_eq!(store.sources().unwrap().len(), 1);
    // Discovery ran incrementally: the shop's user endpoint is templated.
    let eps = store.endpoints().unwrap();
    assert!(
        eps.iter()
            .any(|e| e.method == "GET" && e.template == "/api/v1/users/{userId}"),
        "{eps:?}"
    );
}

#[test]
fn queries_page_filter_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = CaseStore::open(&dir.path().join("case.duckdb")).unwrap();
    import(&mut store, &sample_captures().join("shop-api.pcap")).unwrap();
    let all = TxFilter::default();
    assert_eq!(store.count_transactions(&all).unwrap(), 83);
    let logins = TxFilter {
        path_contains: Some("/login".into()),
        status: Some((400, 499)),
        ..TxFilter::default()
    };
    let n = store.count_transactions(&logins).unwrap();
    assert!(n >= 24, "failed logins: {n}");
    let page = store
        .query_transactions(
            &all,
            &Page {
                offset: 10,
                limit: 5,
                sort: SortKey::Time,
                descending: true,
            },
        )
        .unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.windows(2).all(|w| w[0].ts_ns >= w[1].ts_ns));
    let hist = store.time_histogram(&all, 1_000_000_000).unwrap();
    assert_eq!(hist.iter().map(|(_, c)| c).sum::<u64>(), 83);
    let one = store.transaction(page[0].id).unwrap().unwrap();
    assert_eq!(one.request_ts_nanos, page[0].ts_ns);
}

#[test]
fn har_round_trip_keeps_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.duckdb");
    let har = dir.path().join("shop.har");
    let b = dir.path().join("b.duckdb");
    let pcap = sample_captures().join("shop-api.pcap");
    let ok = run_ok;
    ok(tapline().args(["import", "-q", "--db"]).arg(&a).arg(&pcap));
    ok(tapline()
        .args(["export", "har", "--db"])
        .arg(&a)
        .arg("-o")
        .arg(&har));
    ok(tapline().args(["import", "-q", "--db"]).arg(&b).arg(&har));
    let (sa, sb) = (CaseStore::open(&a).unwrap(), CaseStore::open(&b).unwrap());
    let collect = |s: &CaseStore| {
        let mut v = Vec::new();
        s.for_each_transaction(&TxFilter::default(), |_, t| {
            v.push(t);
            Ok(())
        })
        .unwrap();
        v
    };
    let (ta, tb) = (collect(&sa), collect(&sb));
    assert_eq!(ta.len(), 83);
    assert_eq!(
        ta, tb,
        "HAR export → import must give the same transactions"
    );
}

#[test]
fn bad_files_are_refused_and_leave_the_case_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case.duckdb");
    let pcap = std::fs::read(sample_captures().join("shop-api.pcap")).unwrap();
    let truncated = dir.path().join("cut.pcap");
    std::fs::write(&truncated, &pcap[..pcap.len() - 100]).unwrap();
    let random = dir.path().join("random.bin");
    std::fs::write(
        &random,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let bad_har = dir.path().join("bad.har");
    std::fs::write(
        &bad_har,
        "{\n  \"log\": {\"entries\": [ {\"startedDateTime\": 5 ]\n}",
    )
    .unwrap();
    for (file, needle) in [
        (&truncated, "offset"),
        (&random, "not a pcap, pcapng or HAR file"),
        (&bad_har, "line 2"),
    ] {
        let out = tapline()
            .args(["import", "-q", "--db"])
            .arg(&case)
            .arg(file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", file.display());
        assert!(
            err.contains(&*file.display().to_string()),
            "error must name the file: {err}"
        );
        assert!(
            err.contains(needle),
            "error must say where ({needle}): {err}"
        );
    }
    let store = CaseStore::open(&case).unwrap();
    assert_eq!(store.transaction_count().unwrap(), 0);
    assert!(store.sources().unwrap().is_empty());
}

#[test]
fn a_killed_import_is_invisible_until_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("synth.pcap");
    std::fs::write(&pcap, synth_pcap(200, 50)).unwrap();
    // Reference: an uninterrupted import.
    let clean = dir.path().join("clean.duckdb");
    run_ok(
        tapline()
            .args(["import", "-q", "--batch", "1000", "--db"])
            .arg(&clean)
            .arg(&pcap),
    );
    let a = CaseStore::open(&clean).unwrap();
    assert_eq!(a.transaction_count().unwrap(), 10_000);
    // The same import killed (SIGKILL) after its 1st, 4th and 7th committed batch.
    for kill_after in [1, 4, 7] {
        let case = dir.path().join(format!("killed-{kill_after}.duckdb"));
        let mut child = tapline()
            .args(["import", "-q", "--batch", "1000", "--threads", "1", "--db"])
            .arg(&case)
            .arg(&pcap)
            .env("TAPLINE_TEST_PAUSE_AFTER_BATCHES", kill_after.to_string())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let pause = format!("paused after {kill_after} batches");
        let paused = lines.any(|l| l.is_ok_and(|l| l.contains(&pause)));
        assert!(paused, "the import never reached its pause point");
        child.kill().unwrap();
        child.wait().unwrap();
        {
            let store = CaseStore::open(&case).unwrap();
            assert_eq!(store.sources().unwrap()[0].status, "importing");
            assert_eq!(
                store.transaction_count().unwrap(),
                0,
                "readers see nothing of an unfinished import"
            );
            assert!(store.endpoints().unwrap().is_empty());
        }
        let export = tapline()
            .args(["export", "jsonl", "--db"])
            .arg(&case)
            .output()
            .unwrap();
        assert!(export.status.success());
        assert!(
            export.stdout.is_empty(),
            "an export shows no partial import"
        );
        run_ok(
            tapline()
                .args(["import", "-q", "--db"])
                .arg(&case)
                .arg(&pcap),
        );
        let b = CaseStore::open(&case).unwrap();
        assert_eq!(b.transaction_count().unwrap(), 10_000);
        let (sa, sb) = (a.sources().unwrap(), b.sources().unwrap());
        assert_eq!(sb.len(), 1);
        assert_eq!(sb[0].status, "complete");
        assert_eq!(sb[0].transactions, sa[0].transactions);
        assert_eq!(sb[0].packets, sa[0].packets);
        let (ea, eb) = (a.endpoints().unwrap(), b.endpoints().unwrap());
        assert_eq!(ea.len(), eb.len());
        assert_eq!(
            ea.iter().map(|e| e.count).sum::<u64>(),
            eb.iter().map(|e| e.count).sum::<u64>(),
            "endpoint counts are not doubled by the rerun"
        );
    }
}

#[test]
fn background_import_reports_through_a_channel() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    let store = tapline_store::CaseStore::open(&db).unwrap();
    let handle = tapline_ingest::import::spawn_import(
        store.try_clone().unwrap(),
        vec![sample_captures().join("shop-api.pcapng")],
        ImportOptions::default(),
        || {},
    )
    .unwrap();
    let events: Vec<_> = handle.events.iter().collect();
    handle.thread.join().unwrap();
    assert!(matches!(
        events.last(),
        Some(tapline_ingest::import::ImportEvent::Finished)
    ));
    let done = events
        .iter()
        .find_map(|e| match e {
            tapline_ingest::import::ImportEvent::FileDone { outcome, .. } => Some(outcome),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(done, Ok(ImportOutcome::Imported(s)) if s.transactions == 83),
        "{done:?}"
    );
}

#[test]
fn exports_jsonl_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.duckdb");
    run_ok(
        tapline()
            .args(["import", "-q", "--db"])
            .arg(&db)
            .arg(sample_captures().join("shop-api.pcap")),
    );
    let out = tapline()
        .args(["export", "jsonl", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 83);
    assert!(
        lines
            .iter()
            .all(|d| d["http"]["request"]["method"].is_string())
    );
    assert!(lines.iter().all(|d| d["source"]["ip"].is_string()));
    let parquet = dir.path().join("tx.parquet");
    run_ok(
        tapline()
            .args(["export", "parquet", "--db"])
            .arg(&db)
            .arg("-o")
            .arg(&parquet),
    );
    assert_eq!(tapline_store::parquet_row_count(&parquet).unwrap(), 83);
    let out = tapline()
        .args(["export", "openapi", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/api/v1/users/{userId}"]["get"].is_object(),
        "{doc}"
    );
}

#[test]
fn parallel_shards_store_what_one_thread_stores() {
    // Shards decode, number and commit independently; the case must not tell the difference.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("synth.pcap");
    std::fs::write(&pcap, synth_pcap(40, 60)).unwrap();
    let run = |threads: usize, name: &str| {
        let mut store = CaseStore::open(&dir.path().join(name)).unwrap();
        let opts = ImportOptions {
            threads,
            batch: 300, // many commits per shard, interleaved between shards
            ..ImportOptions::default()
        };
        let outcome = import_file(
            &mut store,
            &pcap,
            &opts,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
        let ImportOutcome::Imported(s) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(s.transactions, 2400);
        assert_eq!(s.ids.end - s.ids.start, 2400, "ids are dense");
        let mut rows = Vec::new();
        store
            .for_each_transaction(&TxFilter::default(), |_, t| {
                rows.push(serde_json::to_string(&t).unwrap());
                Ok(())
            })
            .unwrap();
        rows.sort();
        let endpoints: Vec<_> = store
            .endpoints()
            .unwrap()
            .into_iter()
            .map(|e| (e.method, e.template, e.count))
            .collect();
        (rows, endpoints, store.sources().unwrap()[0].transactions)
    };
    let one = run(1, "one.duckdb");
    let two = run(2, "two.duckdb");
    assert_eq!(one.2, 2400);
    assert_eq!(one, two);
}

#[test]
fn cancelled_import_leaves_the_case_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = CaseStore::open(&dir.path().join("case.duckdb")).unwrap();
    // Something already in the case, which the cancelled import must not disturb.
    import(&mut store, &sample_captures().join("shop-api.pcap")).unwrap();
    let pcap = dir.path().join("big.pcap");
    std::fs::write(&pcap, synth_pcap(200, 150)).unwrap();
    let cancel = AtomicBool::new(false);
    let opts = ImportOptions {
        batch: 500, // commits happen before the cancel lands
        ..ImportOptions::default()
    };
    let mut committed_seen = 0;
    let outcome = import_file(&mut store, &pcap, &opts, &cancel, &mut |p| {
        if p.transactions >= 2000 {
            committed_seen = p.transactions;
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert_eq!(outcome, ImportOutcome::Cancelled);
    assert!(committed_seen >= 2000, "the cancel came mid-import");
    assert_eq!(store.transaction_count().unwrap(), 83);
    assert_eq!(store.sources().unwrap().len(), 1);
    // And the same file imports cleanly afterwards.
    match import(&mut store, &pcap).unwrap() {
        ImportOutcome::Imported(s) => assert_eq!(s.transactions, 30_000),
        other => panic!("{other:?}"),
    }
}

/// Kills (SIGKILL) at arbitrary moments — decoding, committing, analysing, completing, or
/// after — with several seeds: a reader sees either nothing of the import or all of it, and a
/// rerun always ends equal to an uninterrupted import.
#[test]
fn an_import_killed_at_random_moments_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("synth.pcap");
    std::fs::write(&pcap, synth_pcap(200, 50)).unwrap();
    let import = |case: &Path| {
        let mut c = tapline();
        c.args(["import", "-q", "--batch", "1000", "--db"])
            .arg(case)
            .arg(&pcap);
        c
    };
    let clean = dir.path().join("clean.duckdb");
    // Timed twice: a cold first run (the binary and the capture not yet in the page cache)
    // made every kill land after the import was done.
    let mut took = u64::MAX;
    for run in ["warm-up.duckdb", "clean.duckdb"] {
        let started = std::time::Instant::now();
        run_ok(&mut import(&dir.path().join(run)));
        took = took.min(started.elapsed().as_millis() as u64);
    }
    // The window kills are drawn from: the whole import, and a little after.
    let window = took * 5 / 4;
    let figures = |case: &Path| {
        let s = CaseStore::open(case).unwrap();
        let endpoints: u64 = s.endpoints().unwrap().iter().map(|e| e.count).sum();
        (
            s.transaction_count().unwrap(),
            endpoints,
            s.findings().unwrap().len(),
        )
    };
    let reference = figures(&clean);
    assert_eq!(reference.0, 10_000);
    let mut outcomes = Vec::new();
    for seed in 1..=5u64 {
        // xorshift: reproducible delays without a dependency.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = x % window.max(1);
        let case = dir.path().join(format!("seed-{seed}.duckdb"));
        let mut child = import(&case).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        if case.exists() {
            let seen = figures(&case);
            assert!(
                seen == reference || seen == (0, 0, 0),
                "seed {seed}, killed at {delay} ms: readers saw {seen:?} (clean: {reference:?})"
            );
            outcomes.push(seen == reference);
        }
        run_ok(&mut import(&case));
        assert_eq!(
            figures(&case),
            reference,
            "seed {seed}: the rerun equals a clean run"
        );
    }
    assert!(
        outcomes.iter().any(|done| !done),
        "at least one kill landed mid-import: {outcomes:?} (window {window} ms)"
    );
}

/// Before: with another connection's write transaction open (the hub committing a sensor
/// batch beside an import run for the control socket), the import's closing checkpoint
/// failed and took the completed import back out.
#[test]
fn an_import_beside_an_open_write_transaction_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = CaseStore::open(&dir.path().join("case.duckdb")).unwrap();
    let mut import_side = hub.try_clone().unwrap();
    let sensor = hub.enrol_sensor("edge-1", "ab12").unwrap();
    let shop = sample_captures().join("shop-api.pcap");
    // As the hub's store thread commits batches: without the numbering lock, which a
    // sensor batch does not need.
    let outcome = hub.atomically_appending(|tx| {
        tx.execute("UPDATE sensors SET version = 'busy' WHERE id = ?", [sensor])?;
        // The hub's transaction is open while the import runs and completes.
        Ok(import(&mut import_side, &shop))
    });
    let outcome = outcome.unwrap().unwrap();
    assert!(
        matches!(outcome, ImportOutcome::Imported(ref s) if s.transactions == 83),
        "{outcome:?}"
    );
    assert_eq!(import_side.transaction_count().unwrap(), 83);
    assert_eq!(import_side.sources().unwrap()[0].status, "complete");
}

/// Issue 22: behaviour windows span imports. The abuse capture's credential-stuffing burst,
/// cut in two HAR files in the middle of the burst and imported one after the other, is one
/// finding with the burst's full count, as importing the capture whole finds it (each import
/// judging only its own records found two, each with part of the count).
#[test]
fn a_burst_split_across_two_imports_is_judged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.duckdb");
    let har = dir.path().join("abuse.har");
    let pcap = sample_captures().join("abuse-api.pcap");
    run_ok(
        tapline()
            .args(["import", "-q", "--db"])
            .arg(&whole)
            .arg(&pcap),
    );
    run_ok(
        tapline()
            .args(["export", "har", "--db"])
            .arg(&whole)
            .arg("-o")
            .arg(&har),
    );
    // The stuffing logins are exchanges 57 to 86: cut after the 70th.
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    let entries = doc["log"]["entries"].as_array().unwrap().clone();
    assert!(entries.len() > 90, "{} entries", entries.len());
    let halves = [&entries[..70], &entries[70..]];
    let split = dir.path().join("split.duckdb");
    for (i, half) in halves.iter().enumerate() {
        let mut part = doc.clone();
        part["log"]["entries"] = serde_json::Value::Array(half.to_vec());
        let file = dir.path().join(format!("part{i}.har"));
        std::fs::write(&file, serde_json::to_vec(&part).unwrap()).unwrap();
        run_ok(
            tapline()
                .args(["import", "-q", "--db"])
                .arg(&split)
                .arg(&file),
        );
    }
    let stuffing = |case: &Path| -> Vec<u64> {
        let store = CaseStore::open(case).unwrap();
        let findings = store.findings().unwrap();
        findings
            .iter()
            .filter(|f| f.kind.name() == "credential_stuffing")
            .map(|f| f.count)
            .collect()
    };
    let expected = stuffing(&whole);
    assert_eq!(expected.len(), 1, "the whole capture: {expected:?}");
    assert_eq!(stuffing(&split), expected, "the burst in two imports");
}
