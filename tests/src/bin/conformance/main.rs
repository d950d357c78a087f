//! Conformance harness: decodes the peer corpora in `../shared/corpus/pcaps` and compares what
//! Tapline finds with the reference decoders' ground truth.
//!
//! ```text
//! cargo run --release -p tapline-tests --bin conformance -- [CORPUS_PCAPS_DIR] [--markdown OUT.md] [--verbose]
//! ```
//!
//! Sets: zeek `http.log` baselines, suricata-verify `test.yaml` http checks, tshark reference
//! tables, and the http-evader EICAR rule. Prints a table per set; `--markdown` writes them.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use tapline_decode::{EngineConfig, decode_capture};
use tapline_record::Transaction;

const EICAR: &[u8] = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE";

mod llhttp;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut corpus = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/pcaps"
    ));
    let mut markdown: Option<PathBuf> = None;
    let mut verbose = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--markdown" => markdown = args.next().map(PathBuf::from),
            "--verbose" | "-v" => verbose = true,
            other => corpus = PathBuf::from(other),
        }
    }
    anyhow::ensure!(
        corpus.join("MANIFEST.tsv").exists(),
        "{} does not look like the peer pcap corpus (no MANIFEST.tsv); pass its path",
        corpus.display()
    );
    let mut report = String::new();
    let vectors = corpus.join("../http-parser-vectors/llhttp_vectors.jsonl");
    let (llhttp_messages, llhttp_errors) = llhttp::run(&vectors, verbose)?;
    let sets = [
        zeek(&corpus, verbose)?,
        suricata_verify(&corpus, verbose)?,
        tshark(&corpus, verbose)?,
        evader(&corpus, verbose)?,
        llhttp_messages,
        llhttp_errors,
    ];
    for set in &sets {
        set.print(&mut report);
    }
    print!("{report}");
    if let Some(path) = markdown {
        std::fs::write(&path, report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One comparison set's results.
struct SetResult {
    name: &'static str,
    unit: &'static str,
    captures: usize,
    expected: usize,
    agreed: usize,
    ours: usize,
    disagreements: Vec<String>,
}

impl SetResult {
    fn new(name: &'static str, unit: &'static str) -> Self {
        SetResult {
            name,
            unit,
            captures: 0,
            expected: 0,
            agreed: 0,
            ours: 0,
            disagreements: Vec::new(),
        }
    }

    fn print(&self, out: &mut String) {
        let pct = if self.expected == 0 {
            100.0
        } else {
            100.0 * self.agreed as f64 / self.expected as f64
        };
        let _ = writeln!(out, "\n## {}\n", self.name);
        let _ = writeln!(
            out,
            "| captures | {} expected | agreed | Tapline found | agreement |",
            self.unit
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1}% |",
            self.captures, self.expected, self.agreed, self.ours, pct
        );
        if !self.disagreements.is_empty() {
            let _ = writeln!(out, "\nDisagreements:\n");
            for d in &self.disagreements {
                let _ = writeln!(out, "- {d}");
            }
        }
    }
}

fn read_capture(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("gunzip {}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn decode(path: &Path) -> Result<Vec<Transaction>> {
    let bytes = read_capture(path)?;
    let decoded = decode_capture(&bytes, EngineConfig::default())
        .with_context(|| format!("decoding {}", path.display()))?;
    Ok(decoded.transactions)
}

fn strip_port(host: &str) -> String {
    // [v6]:port, host:port → host; bare IPv6 stays.
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_ascii_lowercase();
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => {
            h.to_ascii_lowercase()
        }
        _ => host.to_ascii_lowercase(),
    }
}

/// Suricata's `http.hostname`: the Host without its port, IPv6 brackets kept.
fn suricata_hostname(host: &str) -> String {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => host[..=i].to_ascii_lowercase(),
            None => host.to_ascii_lowercase(),
        };
    }
    strip_port(host)
}

type Key = (String, String, String, String);

fn multiset(keys: impl IntoIterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// Counts keys present in both multisets; lists the ones missing on our side.
fn compare(want: &BTreeMap<Key, usize>, got: &BTreeMap<Key, usize>) -> (usize, Vec<String>) {
    let mut agreed = 0;
    let mut missing = Vec::new();
    for (k, n) in want {
        let have = got.get(k).copied().unwrap_or(0);
        agreed += have.min(*n);
        if have < *n {
            missing.push(format!("{}× {} {} {} → {}", n - have, k.0, k.1, k.2, k.3));
        }
    }
    (agreed, missing)
}

// ---------------------------------------------------------------------------------------------
// zeek

fn zeek(corpus: &Path, verbose: bool) -> Result<SetResult> {
    let map = std::fs::read_to_string(corpus.join("zeek/baseline_map.tsv"))?;
    let mut res = SetResult::new("zeek http.log baselines", "http.log rows");
    for line in map.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(baseline), Some(traces)) = (cols.first(), cols.get(2)) else {
            continue;
        };
        let log = corpus.join("zeek/Baseline").join(baseline).join("http.log");
        let traces: Vec<&str> = traces.split_whitespace().collect();
        if !log.exists() || traces.len() != 1 {
            continue;
        }
        let trace = corpus
            .join("zeek/Traces")
            .join(traces[0].trim_start_matches("$TRACES/"));
        if !trace.exists() {
            continue;
        }
        let (rows, columns) = parse_zeek_log(&std::fs::read_to_string(&log)?);
        let want = multiset(rows);
        let txs = match decode(&trace) {
            Ok(t) => t,
            Err(e) => {
                res.disagreements.push(format!("{baseline}: {e:#}"));
                continue;
            }
        };
        let got = multiset(txs.iter().map(|t| zeek_key(t, &columns)));
        let (agreed, missing) = compare(&want, &got);
        res.captures += 1;
        res.expected += want.values().sum::<usize>();
        res.ours += txs.len();
        res.agreed += agreed;
        if !missing.is_empty() {
            let n = missing.len();
            let shown: Vec<_> = missing
                .into_iter()
                .take(if verbose { 50 } else { 3 })
                .collect();
            res.disagreements.push(format!(
                "`{baseline}` ({}): {} row kinds differ, e.g. {}",
                traces[0].trim_start_matches("$TRACES/"),
                n,
                shown.join("; ")
            ));
        }
    }
    Ok(res)
}

/// Our transaction as a zeek http.log row. Zeek logs the *unescaped* URI, shows bytes that are
/// not printable as `\xNN`, and gives HTTP/0.9 replies status 0.
fn zeek_key(t: &Transaction, columns: &[bool; 4]) -> Key {
    let status = match (t.status, t.version, t.response_ts_nanos) {
        (Some(s), _, _) => s.to_string(),
        (None, tapline_record::HttpVersion::Http09, Some(_)) => "0".into(),
        _ => "-".into(),
    };
    let key = (
        if t.method.is_empty() {
            "-".into()
        } else {
            t.method.to_string()
        },
        t.host.as_deref().map_or("-".into(), strip_port),
        if t.method.is_empty() {
            "-".into()
        } else if t.uri.is_empty() {
            "(empty)".into()
        } else {
            zeek_escape(&percent_decode(t.uri.as_bytes()))
        },
        status,
    );
    mask(key, columns)
}

fn mask(key: Key, columns: &[bool; 4]) -> Key {
    let pick = |v: String, on: bool| if on { v } else { "*".into() };
    (
        pick(key.0, columns[0]),
        pick(key.1, columns[1]),
        pick(key.2, columns[2]),
        pick(key.3, columns[3]),
    )
}

fn percent_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn zeek_escape(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Rows of a zeek http.log (full `#fields` form or zeek-cut form with a plain header line),
/// and which of method/host/uri/status it has.
fn parse_zeek_log(text: &str) -> (Vec<Key>, [bool; 4]) {
    let mut fields: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').collect();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if fields.is_empty() {
            // zeek-cut output: the first line names the columns.
            fields = line.split('\t').collect();
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let get = |name: &str| -> String {
            fields
                .iter()
                .position(|f| *f == name)
                .and_then(|i| cols.get(i))
                .map_or("*".to_owned(), |v| (*v).to_owned())
        };
        let host = get("host");
        out.push((
            get("method"),
            if host == "-" || host == "*" {
                host
            } else {
                strip_port(&host)
            },
            get("uri"),
            get("status_code"),
        ));
    }
    let has = |n: &str| fields.contains(&n);
    (
        out,
        [has("method"), has("host"), has("uri"), has("status_code")],
    )
}

// ---------------------------------------------------------------------------------------------
// suricata-verify

fn suricata_verify(corpus: &Path, verbose: bool) -> Result<SetResult> {
    let mut res = SetResult::new("suricata-verify test.yaml http checks", "checks");
    let dir = corpus.join("suricata-verify/tests");
    let mut tests: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    tests.sort();
    for test in tests {
        let yaml = test.join("test.yaml");
        let Ok(text) = std::fs::read_to_string(&yaml) else {
            continue;
        };
        let Ok(doc) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) else {
            continue;
        };
        let checks = http_checks(&doc);
        if checks.is_empty() {
            continue;
        }
        let pcap = match doc.get("pcap").and_then(|p| p.as_str()) {
            Some(p) => test.join(p),
            None => match std::fs::read_dir(&test)?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            {
                Some(p) => p,
                None => continue,
            },
        };
        if !pcap.exists() {
            continue;
        }
        let name = test
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let txs = match decode(&pcap) {
            Ok(t) => t,
            Err(e) => {
                res.disagreements.push(format!("{name}: {e:#}"));
                continue;
            }
        };
        res.captures += 1;
        res.ours += txs.len();
        for check in checks {
            res.expected += 1;
            let found = txs.iter().filter(|t| check.matches(t)).count();
            let ok = match check.count {
                Some(n) => found == n,
                None => found >= 1,
            };
            if ok {
                res.agreed += 1;
            } else {
                let detail = if verbose {
                    format!(
                        " ours: {:?}",
                        txs.iter()
                            .map(|t| (&t.method, &t.uri, t.status))
                            .collect::<Vec<_>>()
                    )
                } else {
                    String::new()
                };
                res.disagreements.push(format!(
                    "`{name}`: expected {} http event(s) matching {:?}, found {found}{detail}",
                    check.count.map_or("≥1".into(), |n| n.to_string()),
                    check.fields
                ));
            }
        }
    }
    Ok(res)
}

struct HttpCheck {
    count: Option<usize>,
    fields: Vec<(String, String)>,
}

impl HttpCheck {
    fn matches(&self, t: &Transaction) -> bool {
        self.fields.iter().all(|(k, v)| match k.as_str() {
            "http.hostname" => {
                t.host.as_deref().map(suricata_hostname).as_deref() == Some(v.as_str())
            }
            "http.url" => t.uri == *v,
            "http.http_method" => t.method == *v,
            "http.status" => t.status.map(|s| s.to_string()).as_deref() == Some(v.as_str()),
            "http.protocol" => t.version.as_str() == v,
            "http.http_user_agent" => t.request_header("user-agent") == Some(v.as_str()),
            "http.http_content_type" => {
                t.response_content_type()
                    .map(|c| c.split(';').next().unwrap_or(c).trim())
                    == Some(v.as_str())
            }
            "http.length" => t.response_body.len.to_string() == *v,
            _ => true,
        })
    }
}

/// The checks of a test.yaml that select `event_type: http` events.
fn http_checks(doc: &serde_yaml_ng::Value) -> Vec<HttpCheck> {
    let mut out = Vec::new();
    let Some(checks) = doc.get("checks").and_then(|c| c.as_sequence()) else {
        return out;
    };
    for c in checks {
        let Some(filter) = c.get("filter") else {
            continue;
        };
        let Some(m) = filter.get("match").and_then(|m| m.as_mapping()) else {
            continue;
        };
        let is_http = m
            .get("event_type")
            .and_then(|v| v.as_str())
            .is_some_and(|v| v == "http");
        if !is_http {
            continue;
        }
        let mut fields = Vec::new();
        for (k, v) in m {
            let Some(k) = k.as_str() else { continue };
            let v = match v {
                serde_yaml_ng::Value::String(s) => s.clone(),
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            if matches!(
                k,
                "http.hostname"
                    | "http.url"
                    | "http.http_method"
                    | "http.status"
                    | "http.protocol"
                    | "http.http_user_agent"
                    | "http.http_content_type"
                    | "http.length"
            ) {
                fields.push((k.to_owned(), v));
            }
        }
        let count = filter
            .get("count")
            .and_then(|c| c.as_u64())
            .map(|c| c as usize);
        out.push(HttpCheck { count, fields });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// tshark

fn tshark(corpus: &Path, verbose: bool) -> Result<SetResult> {
    let mut res = SetResult::new(
        "tshark 4.0.17 reference tables (requests: method, host, URI)",
        "requests",
    );
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv"))?;
    let header: Vec<&str> = manifest.lines().next().unwrap_or("").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(path_col), Some(ref_col)) = (col("path"), col("tshark_ref")) else {
        anyhow::bail!("MANIFEST.tsv lacks path/tshark_ref columns");
    };
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(path), Some(reference)) = (cols.get(path_col), cols.get(ref_col)) else {
            continue;
        };
        // The evader set is judged by its own rule below.
        if reference.is_empty() || path.contains("http-evader") {
            continue;
        }
        let (pcap, table) = (corpus.join(path), corpus.join(reference));
        if !pcap.exists() || !table.exists() {
            continue;
        }
        let want = multiset(parse_tshark(&std::fs::read_to_string(&table)?));
        if want.is_empty() {
            continue;
        }
        let txs = match decode(&pcap) {
            Ok(t) => t,
            Err(e) => {
                res.disagreements.push(format!("{path}: {e:#}"));
                continue;
            }
        };
        let got = multiset(txs.iter().filter(|t| !t.method.is_empty()).map(|t| {
            (
                t.method.to_string(),
                t.host.as_deref().map_or("-".into(), strip_port),
                t.uri.clone(),
                String::new(),
            )
        }));
        let (agreed, missing) = compare(&want, &got);
        res.captures += 1;
        res.expected += want.values().sum::<usize>();
        res.agreed += agreed;
        res.ours += txs.len();
        if !missing.is_empty() && verbose {
            res.disagreements
                .push(format!("`{path}`: {}", missing.join("; ")));
        }
    }
    Ok(res)
}

fn parse_tshark(text: &str) -> Vec<Key> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (Some(m), Some(h), Some(u)) = (
        col("http.request.method"),
        col("http.host"),
        col("http.request.uri"),
    ) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let method = c.get(m)?;
            if method.is_empty() {
                return None;
            }
            let host = c
                .get(h)
                .filter(|s| !s.is_empty())
                .map_or("-".into(), |s| strip_port(s));
            Some((
                method.to_string(),
                host,
                c.get(u).unwrap_or(&"").to_string(),
                String::new(),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// http-evader

fn evader(corpus: &Path, verbose: bool) -> Result<SetResult> {
    let mut res = SetResult::new(
        "http-evader: decoded response body contains the EICAR string",
        "cases",
    );
    let dir = corpus.join("suricata-verify/http-evader");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    cases.sort();
    let mut missed = Vec::new();
    for case in cases {
        let pcap = case.join("input.pcap");
        if !pcap.exists() {
            continue;
        }
        res.captures += 1;
        res.expected += 1;
        let txs = decode(&pcap).unwrap_or_default();
        res.ours += txs.len();
        let found = txs
            .iter()
            .any(|t| memchr::memmem::find(&t.response_body.data, EICAR).is_some());
        if found {
            res.agreed += 1;
        } else {
            missed.push(
                case.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    if !missed.is_empty() {
        let shown = if verbose {
            missed.len()
        } else {
            missed.len().min(40)
        };
        res.disagreements.push(format!(
            "EICAR not found in {} case(s): {}{}",
            missed.len(),
            missed[..shown].join(", "),
            if shown < missed.len() { ", …" } else { "" }
        ));
    }
    Ok(res)
}
