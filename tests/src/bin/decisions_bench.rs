//! Decision endpoint benchmark: `/v1/authz` answers with 100k active rules (addresses,
//! networks, users, API keys, header rules), over HTTPS with keep-alive from `--clients`
//! threads, against the same server holding no rules (the ratio is what the rules cost), and
//! the in-memory lookup alone.
//!
//! ```text
//! cargo run --release -p tapline-tests --bin decisions_bench -- [--rules 100000] [--requests 200000] [--clients 2]
//! ```

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapline_decisions::{Config, DecisionServer};
use tapline_link::HubIdentity;
use tapline_store::CaseStore;
use tapline_store::blocks::{Action, MatchKind, NewRule};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

fn rule(kind: MatchKind, value: String) -> NewRule {
    NewRule {
        kind,
        header: (kind == MatchKind::Header).then(|| "X-Client".into()),
        value,
        paths: Vec::new(),
        methods: Vec::new(),
        action: Action::Block,
        expires_ns: None,
        origin: "bench".into(),
        reason: "bench".into(),
        findings: Vec::new(),
        created_by: "bench".into(),
    }
}

/// `n` rules: 60% addresses, 10% /24 networks, 10% users, 10% keys, 10% header values.
fn rules(n: usize) -> Vec<NewRule> {
    (0..n)
        .map(|i| {
            let i32 = i as u32;
            match i % 10 {
                0 => rule(
                    MatchKind::Ip,
                    format!("10.{}.{}.0/24", (i32 >> 8) & 255, i32 & 255),
                ),
                1 => rule(MatchKind::User, format!("user-{i}")),
                2 => rule(MatchKind::Key, format!("key-{i:08}")),
                3 => rule(MatchKind::Header, format!("bot-{i}")),
                _ => rule(
                    MatchKind::Ip,
                    format!(
                        "172.{}.{}.{}",
                        16 + (i32 >> 16) % 16,
                        (i32 >> 8) & 255,
                        i32 & 255
                    ),
                ),
            }
        })
        .collect()
}

/// A request line set: a quarter blocked by address, a quarter by key, half let through.
fn request(i: usize, key: &str) -> String {
    let (ip, extra) = match i % 4 {
        0 => (
            format!("172.16.{}.{}", (i >> 8) & 255, i & 255),
            String::new(),
        ),
        1 => (
            "192.0.2.7".to_owned(),
            format!("X-Api-Key: key-{:08}\r\n", (i % 1000) * 10 + 2),
        ),
        _ => (
            "192.0.2.8".to_owned(),
            "Authorization: Bearer not-a-jwt\r\n".to_owned(),
        ),
    };
    format!(
        "GET /v1/authz HTTP/1.1\r\nHost: hub\r\nX-Tapline-Key: {key}\r\nX-Original-URI: /api/orders/{i}?x=1\r\n\
         X-Original-Method: GET\r\nX-Real-IP: {ip}\r\n{extra}User-Agent: bench\r\n\r\n"
    )
}

fn client_tls(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Sends `n` requests on one kept-alive connection; returns each one's latency and how many
/// were refused.
fn client(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    key: &str,
    from: usize,
    n: usize,
) -> Result<(Vec<Duration>, usize)> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let conn = rustls::ClientConnection::new(tls, name)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut s = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let mut lat = Vec::with_capacity(n);
    let mut refused = 0;
    for i in from..from + n {
        let req = request(i, key);
        let t = Instant::now();
        s.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        s.read_line(&mut line)?;
        if line.contains(" 403 ") {
            refused += 1;
        }
        let mut len = 0usize;
        loop {
            line.clear();
            s.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse()?;
            }
        }
        let mut body = vec![0; len];
        s.read_exact(&mut body)?;
        lat.push(t.elapsed());
    }
    Ok((lat, refused))
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    refused: usize,
}

fn hammer(addr: SocketAddr, ca: &str, key: &str, clients: usize, requests: usize) -> Result<Run> {
    let tls = client_tls(ca)?;
    // Warm-up: connections, caches.
    client(addr, tls.clone(), key, 0, 2000)?;
    let per = requests / clients;
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (tls, key) = (tls.clone(), key.to_owned());
            std::thread::spawn(move || client(addr, tls, &key, c * per, per))
        })
        .collect();
    let mut all = Vec::with_capacity(requests);
    let mut refused = 0;
    for h in handles {
        let (l, r) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        all.extend(l);
        refused += r;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let q = |f: f64| all[((all.len() as f64 * f) as usize).min(all.len() - 1)];
    Ok(Run {
        rps: all.len() as f64 / secs,
        p50: q(0.5),
        p99: q(0.99),
        refused,
    })
}

fn serve(
    dir: &std::path::Path,
    name: &str,
    n: usize,
    id: &HubIdentity,
) -> Result<(DecisionServer, String)> {
    let path = dir.join(format!("{name}.duckdb"));
    let mut case = CaseStore::open(&path)?;
    let t = Instant::now();
    case.add_block_rules(&rules(n))?;
    let key = tapline_decisions::new_key().map_err(|_| anyhow::anyhow!("no randomness"))?;
    case.add_agent("bench", &tapline_decisions::key_hash(&key), "bench")?;
    drop(case);
    let stored = t.elapsed();
    let (cert_pem, key_pem) = id.issue_server_cert(&["localhost".into()])?;
    let t = Instant::now();
    let server = DecisionServer::start(
        Config {
            listen: "127.0.0.1:0".parse()?,
            cert_pem,
            key_pem,
            reload_every: Duration::from_secs(3600),
        },
        Box::new(move || CaseStore::open(&path).map_err(Into::into)),
    )?;
    println!(
        "{name}: {n} rules stored in {:.2} s, loaded and indexed in {:.2} s",
        stored.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    Ok((server, key))
}

fn lookup_alone(n: usize) -> Result<f64> {
    use tapline_store::blocks::Rule;
    let rules: Vec<Rule> = rules(n)
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.stored_as(i as i64 + 1, 0))
        .collect();
    let ix = tapline_enforce::Index::build(&tapline_enforce::effective(&rules, &[], 1), &[]);
    let reqs: Vec<(std::net::IpAddr, String)> = (0..10_000)
        .map(|i| {
            (
                format!("172.16.{}.{}", (i >> 8) & 255, i & 255)
                    .parse()
                    .unwrap_or([0u8; 4].into()),
                format!("key-{:08}", i * 10 + 2),
            )
        })
        .collect();
    let t = Instant::now();
    let mut blocked = 0;
    let rounds = 20;
    for _ in 0..rounds {
        for (ip, key) in &reqs {
            let r = tapline_enforce::Request {
                client: Some(*ip),
                method: "GET",
                path: "/api/orders/7",
                headers: vec![("x-api-key", key.as_str()), ("user-agent", "bench")],
            };
            if ix.decide(&r) != tapline_enforce::Verdict::Allow {
                blocked += 1;
            }
        }
    }
    let per = t.elapsed().as_secs_f64() / (rounds * reqs.len()) as f64;
    std::hint::black_box(blocked);
    Ok(per * 1e9)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--rules", 100_000)?;
    let requests = arg(&args, "--requests", 200_000)?;
    let clients = arg(&args, "--clients", 2)?;
    let dir = tempfile::tempdir()?;
    let id = HubIdentity::create()?;
    println!(
        "decision endpoint: {requests} requests over HTTPS keep-alive from {clients} client thread(s)"
    );
    println!(
        "lookup alone ({n} rules, index in memory): {:.0} ns per decision",
        lookup_alone(n)?
    );
    for (name, count) in [("no rules", 0), ("rules", n)] {
        let (server, key) = serve(dir.path(), &name.replace(' ', "-"), count, &id)?;
        let r = hammer(
            server.local_addr(),
            &id.ca_cert_pem,
            &key,
            clients,
            requests,
        )?;
        println!(
            "{name:>9}: {:>8.0} requests/s  p50 {:>6.0} µs  p99 {:>6.0} µs  refused {}",
            r.rps,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
            r.refused
        );
    }
    Ok(())
}
