//! Enforcement through the agents operators run, each the real program (installed by
//! `installers/setup.sh`), against the hub's decision server: Debian's CrowdSec custom and
//! firewall bouncers polling it as they would a CrowdSec Local API, nginx asking `/v1/authz`
//! per request, and the exported block lists loaded by nginx, HAProxy, ModSecurity and
//! nftables. Network-level checks run in network namespaces the tests make and remove.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tapline_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tapline")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tapline(db: &Path, args: &[&str]) -> String {
    run(common::tapline().args(args).arg("--db").arg(db))
}

fn program(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is missing: run installers/setup.sh");
}

/// A child process killed (SIGINT, then SIGKILL) when dropped; its output goes to a log file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Proc { child, log }
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before {needle:?}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {within:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tapline serve` with the decision server on loopback (in `netns` if given).
struct Hub {
    _proc: Proc,
    port: u16,
    ca: PathBuf,
}

fn hub(dir: &Path, db: &Path, netns: Option<&str>) -> Hub {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new(program("ip"));
            c.args(["netns", "exec", ns, tapline_bin()]);
            c
        }
        None => Command::new(tapline_bin()),
    };
    cmd.arg("serve")
        .arg("--db")
        .arg(db)
        .arg("--identity")
        .arg(dir.join("id"))
        .args(["--listen", "127.0.0.1:0", "--agents-listen", "127.0.0.1:0"])
        .args(["--agents-reload-ms", "200"]);
    let mut p = Proc::spawn(&mut cmd, dir.join("hub.log"));
    let log = p.wait_for("hub listening", Duration::from_secs(30));
    let port = log
        .split("decisions for agents on https://127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no agents port in:\n{log}"));
    Hub {
        _proc: p,
        port,
        ca: dir.join("id/ca.pem"),
    }
}

/// The key `tapline agents add` printed.
fn agent(db: &Path, name: &str) -> String {
    let out = tapline(db, &["agents", "add", name]);
    out.lines().nth(1).unwrap().trim().to_owned()
}

/// (status, body) of a request to the hub with curl.
fn curl(hub: &Hub, path: &str, headers: &[&str]) -> (u16, String) {
    let mut cmd = Command::new(program("curl"));
    cmd.args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(&hub.ca)
        .arg(format!("https://127.0.0.1:{}{path}", hub.port));
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = run(&mut cmd);
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// The custom bouncer's calls: `add|del VALUE` lines.
fn calls(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn bouncer_config(dir: &Path, hub: &Hub, key: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("bouncer.yaml");
    std::fs::write(
        &cfg,
        format!(
            "api_url: https://127.0.0.1:{}/\napi_key: {key}\nca_cert_path: {}\n\
             update_frequency: 1s\ndaemonize: false\nlog_mode: file\nlog_dir: {d}\nlog_level: info\n\
             piddir: {d}\npid_dir: {d}\nprometheus:\n  enabled: false\n{extra}",
            hub.port,
            hub.ca.display(),
            d = dir.display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn the_custom_bouncer_gets_exactly_the_active_decisions_and_their_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("case.duckdb");
    tapline(
        &db,
        &["block", "allow", "--ip", "203.0.113.5", "--note", "office"],
    );
    tapline(
        &db,
        &[
            "block",
            "add",
            "--ip",
            "203.0.113.0/29",
            "--for",
            "24h",
            "--reason",
            "scan",
        ],
    );
    tapline(
        &db,
        &[
            "block",
            "add",
            "--ip",
            "198.18.0.0/15",
            "--reason",
            "botnet",
        ],
    );
    tapline(
        &db,
        &["block", "add", "--ip", "2001:db8::/48", "--reason", "v6"],
    );
    tapline(&db, &["block", "add", "--ip", "192.0.2.1", "--monitor"]);
    tapline(
        &db,
        &["block", "add", "--ip", "192.0.2.2", "--path", "/admin/*"],
    );
    tapline(&db, &["block", "add", "--user", "mallory"]);
    let removed = tapline(&db, &["block", "add", "--ip", "192.0.2.10"]);
    let removed_id = removed.split_whitespace().nth(1).unwrap().to_owned();
    let key = agent(&db, "bouncer-1");
    let hub = hub(d, &db, None);

    let script = d.join("record.sh");
    let log = d.join("calls.log");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", log.display()),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&script));
    let cfg = bouncer_config(
        d,
        &hub,
        &key,
        &format!(
            "bin_path: {}\nfeed_via_stdin: false\ntotal_retries: 0\ncache_retention_duration: 1s\n",
            script.display()
        ),
    );
    let mut bouncer = Proc::spawn(
        Command::new(program("crowdsec-custom-bouncer"))
            .arg("-c")
            .arg(&cfg),
        d.join("bouncer.out"),
    );
    // 203.0.113.0/29 less the allowlisted .5: seven addresses; two ranges (wider than a /16,
    // which would go address by address); one address.
    let mut expected: BTreeSet<String> = (0..8)
        .filter(|i| *i != 5)
        .map(|i| format!("add 203.0.113.{i}"))
        .collect();
    expected.extend(["add 198.18.0.0/15", "add 2001:db8::/48", "add 192.0.2.10"].map(String::from));
    wait_until("the first decisions", Duration::from_secs(20), || {
        calls(&log).len() >= expected.len()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let got: BTreeSet<String> = calls(&log).into_iter().collect();
    assert_eq!(got, expected, "bouncer log:\n{}", bouncer.log());
    assert_eq!(calls(&log).len(), expected.len(), "each decision once");

    // A removal and an expiry reach the bouncer as deletions; a new rule as an addition,
    // within the poll interval (1 s) plus the hub's reload (0.2 s).
    tapline(
        &db,
        &["block", "remove", &removed_id, "--note", "wrong address"],
    );
    let took = wait_until("the removal", Duration::from_secs(5), || {
        calls(&log).contains(&"del 192.0.2.10".to_owned())
    });
    eprintln!("removal reached the bouncer in {took:?}");
    tapline(&db, &["block", "add", "--ip", "192.0.2.9", "--for", "3s"]);
    let took = wait_until("the new rule", Duration::from_secs(5), || {
        calls(&log).contains(&"add 192.0.2.9".to_owned())
    });
    eprintln!("a new rule reached the bouncer in {took:?}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    wait_until("the expiry", Duration::from_secs(8), || {
        calls(&log).contains(&"del 192.0.2.9".to_owned())
    });
    // The audit log says when each block ended: the removal and the expiry.
    let audit = tapline(&db, &["block", "audit"]);
    assert!(
        audit.contains("remove") && audit.contains("wrong address") && audit.contains("expire"),
        "{audit}"
    );
    let all = calls(&log).join("\n");
    for never in ["203.0.113.5", "192.0.2.1\n", "192.0.2.2", "mallory"] {
        assert!(
            !format!("{all}\n").contains(never),
            "{never} reached the bouncer:\n{all}"
        );
    }

    // A revoked key is refused, and the bouncer hears of nothing more.
    let (code, _) = curl(
        &hub,
        "/v1/decisions/stream",
        &[&format!("X-Api-Key: {key}")],
    );
    assert_eq!(code, 200);
    tapline(&db, &["agents", "revoke", "bouncer-1"]);
    std::thread::sleep(Duration::from_millis(600));
    let (code, body) = curl(
        &hub,
        "/v1/decisions/stream",
        &[&format!("X-Api-Key: {key}")],
    );
    assert_eq!(code, 403, "{body}");
    let before = calls(&log).len();
    tapline(&db, &["block", "add", "--ip", "192.0.2.30"]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(calls(&log).len(), before, "a revoked agent got decisions");
    drop(bouncer.child.kill());
}

/// Two network namespaces joined by a veth pair: `a` (10.77.0.1) serves, `b` (10.77.0.2 and
/// 10.77.0.3) connects. Removed when dropped.
struct Netns {
    a: String,
    b: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let id = std::process::id() % 100_000;
        let n = Netns {
            a: format!("tl{tag}a{id}"),
            b: format!("tl{tag}b{id}"),
        };
        let ip = program("ip");
        for ns in [&n.a, &n.b] {
            run(Command::new(&ip).args(["netns", "add", ns]));
            run(Command::new(&ip).args(["netns", "exec", ns, &ip, "link", "set", "lo", "up"]));
        }
        run(Command::new(&ip).args([
            "netns", "exec", &n.a, &ip, "link", "add", "va", "type", "veth", "peer", "name", "vb",
            "netns", &n.b,
        ]));
        for (ns, dev, addrs) in [
            (&n.a, "va", &["10.77.0.1/24"][..]),
            (&n.b, "vb", &["10.77.0.2/24", "10.77.0.3/24"][..]),
        ] {
            for a in addrs {
                run(Command::new(&ip)
                    .args(["netns", "exec", ns, &ip, "addr", "add", a, "dev", dev]));
            }
            run(Command::new(&ip).args(["netns", "exec", ns, &ip, "link", "set", dev, "up"]));
        }
        n
    }

    fn exec(&self, ns: &str, prog: &str) -> Command {
        let mut c = Command::new(program("ip"));
        c.args(["netns", "exec", ns, prog]);
        c
    }

    /// An HTTP server in `a` on 10.77.0.1:8080.
    fn server(&self, dir: &Path) -> Proc {
        let mut cmd = self.exec(&self.a, &program("python3"));
        cmd.args(["-m", "http.server", "8080", "--bind", "10.77.0.1"])
            .current_dir(dir);
        let p = Proc::spawn(&mut cmd, dir.join("http.log"));
        std::thread::sleep(Duration::from_millis(300));
        wait_until(
            "the server in the namespace",
            Duration::from_secs(10),
            || self.reaches("10.77.0.3"),
        );
        let _ = p.log();
        p
    }

    /// Whether a connection from `from` (an address in `b`) gets an answer.
    fn reaches(&self, from: &str) -> bool {
        self.exec(&self.b, &program("curl"))
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "1",
                "--interface",
                from,
                "http://10.77.0.1:8080/",
            ])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn the_firewall_bouncer_drops_blocked_addresses_in_a_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = Netns::new("f");
    let _server = net.server(d);
    assert!(net.reaches("10.77.0.2"), "before any rule");
    let db = d.join("case.duckdb");
    tapline(
        &db,
        &["block", "allow", "--ip", "10.77.0.3", "--note", "office"],
    );
    let rule = tapline(
        &db,
        &["block", "add", "--ip", "10.77.0.2/31", "--for", "1h"],
    );
    let rule_id = rule.split_whitespace().nth(1).unwrap().to_owned();
    tapline(&db, &["block", "add", "--ip", "10.77.0.4", "--monitor"]);
    tapline(&db, &["block", "add", "--ip", "10.78.0.0/22"]);
    let key = agent(&db, "fw-1");
    let hub = hub(d, &db, Some(&net.a));
    let cfg = bouncer_config(
        d,
        &hub,
        &key,
        "mode: nftables\ndisable_ipv6: true\ndeny_action: DROP\ndeny_log: false\n\
         supported_decisions_types:\n  - ban\n\
         nftables:\n  ipv4:\n    enabled: true\n    set-only: false\n    table: crowdsec\n    chain: crowdsec-chain\n\
         \x20 ipv6:\n    enabled: false\n    set-only: false\n    table: crowdsec6\n    chain: crowdsec6-chain\n",
    );
    let mut cmd = net.exec(&net.a, &program("crowdsec-firewall-bouncer"));
    cmd.arg("-c").arg(&cfg);
    let bouncer = Proc::spawn(&mut cmd, d.join("fw.out"));
    let set = || {
        let out = net
            .exec(&net.a, &program("nft"))
            .args(["list", "set", "ip", "crowdsec", "crowdsec-blacklists"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The bouncer adds a network's 1,024 addresses over a moment: wait for the last too.
    wait_until(
        "the blocked address and the whole network in the set",
        Duration::from_secs(20),
        || {
            let s = set();
            s.contains("10.77.0.2") && s.contains("10.78.3.255")
        },
    );
    let s = set();
    assert!(
        !s.contains("10.77.0.3") && !s.contains("10.77.0.4"),
        "allowlisted or monitored: {s}\n{}",
        bouncer.log()
    );
    // A network arrives address by address: this bouncer would keep only a range's first.
    assert!(s.contains("10.78.0.0") && s.contains("10.78.3.255"), "{s}");
    assert!(
        !net.reaches("10.77.0.2"),
        "a blocked address got through:\n{s}"
    );
    assert!(
        net.reaches("10.77.0.3"),
        "the allowlisted address was dropped:\n{s}"
    );
    // Removing the rule lifts the block.
    tapline(&db, &["block", "remove", &rule_id, "--note", "done"]);
    wait_until("the deletion", Duration::from_secs(10), || {
        !set().contains("10.77.0.2")
    });
    assert!(net.reaches("10.77.0.2"));
}

#[test]
fn nftables_drops_what_the_exported_table_blocks_in_a_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = Netns::new("n");
    let _server = net.server(d);
    let db = d.join("case.duckdb");
    tapline(
        &db,
        &["block", "allow", "--ip", "10.77.0.3", "--note", "office"],
    );
    tapline(
        &db,
        &["block", "add", "--ip", "10.77.0.0/30", "--for", "1h"],
    );
    let file = d.join("tapline.nft");
    tapline(
        &db,
        &[
            "blocklist",
            "export",
            "--format",
            "nftables",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    run(net.exec(&net.a, &program("nft")).arg("-f").arg(&file));
    assert!(
        !net.reaches("10.77.0.2"),
        "{}",
        std::fs::read_to_string(&file).unwrap()
    );
    assert!(net.reaches("10.77.0.3"));
}

/// A loopback port nobody listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status of GET `url` sent from `from` (a loopback address) with `headers`.
fn status(url: &str, from: &str, headers: &[&str]) -> u16 {
    let mut cmd = Command::new(program("curl"));
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-m",
        "5",
        "--interface",
        from,
        url,
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    // 0: no answer (curl failed).
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The test upstream: python's http.server on loopback.
fn upstream(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    for page in ["index.html", "other", "api/items"] {
        let p = dir.join("www").join(page);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "ok\n").unwrap();
    }
    let p = Proc::spawn(
        Command::new(program("python3"))
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.join("www")),
        dir.join("upstream.log"),
    );
    let url = format!("http://127.0.0.1:{port}/");
    wait_until("the upstream", Duration::from_secs(10), || {
        Command::new(program("curl"))
            .args(["-s", "-o", "/dev/null", &url])
            .status()
            .is_ok_and(|s| s.success())
    });
    let _ = p.log();
    (p, port)
}

fn nginx(dir: &Path, name: &str, http: &str) -> Proc {
    let conf = dir.join(format!("{name}.conf"));
    let modules = if http.contains("modsecurity") {
        "load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;\n"
    } else {
        ""
    };
    let temp = dir.join("nginx-temp");
    std::fs::create_dir_all(&temp).unwrap();
    std::fs::write(
        &conf,
        format!(
            "{modules}daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/{name}.pid;\n\
             error_log {d}/{name}.err info;\nevents {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t};\n\
             uwsgi_temp_path {t}; scgi_temp_path {t};\n{http}\n}}\n",
            d = dir.display(),
            t = temp.display()
        ),
    )
    .unwrap();
    run(Command::new(program("nginx"))
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir));
    Proc::spawn(
        Command::new(program("nginx"))
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir),
        dir.join(format!("{name}.out")),
    )
}

fn rules_for_proxies(db: &Path) {
    tapline(
        db,
        &["block", "add", "--ip", "127.0.0.2", "--reason", "scanner"],
    );
    tapline(db, &["block", "add", "--key", "k-stolen-1"]);
    tapline(db, &["block", "add", "--user", "mallory"]);
    tapline(
        db,
        &[
            "block",
            "add",
            "--header",
            "X-Client: scanner",
            "--path",
            "/api/*",
        ],
    );
    tapline(db, &["block", "add", "--ip", "127.0.0.4", "--monitor"]);
}

#[test]
fn nginx_enforces_the_export_and_asks_the_hub_for_user_and_header_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("case.duckdb");
    rules_for_proxies(&db);
    let key = agent(&db, "edge-nginx");
    let hub = hub(d, &db, None);
    let (_up, up) = upstream(d);
    let include = d.join("tapline-nginx.conf");
    tapline(
        &db,
        &[
            "blocklist",
            "export",
            "--format",
            "nginx",
            "-o",
            include.to_str().unwrap(),
        ],
    );
    let (p1, p2) = (free_port(), free_port());
    let http = format!(
        "include {inc};\n\
         server {{ listen 127.0.0.1:{p1};\n  location / {{ if ($tapline_blocked) {{ return 403; }} proxy_pass http://127.0.0.1:{up}; }} }}\n\
         server {{ listen 127.0.0.1:{p2};\n  location / {{ auth_request /_tapline; proxy_pass http://127.0.0.1:{up}; }}\n\
           location = /_tapline {{ internal; proxy_pass https://127.0.0.1:{hp}/v1/authz;\n\
             proxy_pass_request_body off; proxy_set_header Content-Length \"\";\n\
             proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method;\n\
             proxy_set_header X-Real-IP $remote_addr; proxy_set_header X-Tapline-Key {key};\n\
             proxy_ssl_verify on; proxy_ssl_trusted_certificate {ca}; proxy_ssl_name localhost; }} }}",
        inc = include.display(),
        hp = hub.port,
        ca = hub.ca.display()
    );
    let mut ngx = nginx(d, "nginx", &http);
    let url1 = format!("http://127.0.0.1:{p1}/");
    wait_until("nginx", Duration::from_secs(10), || {
        status(&url1, "127.0.0.3", &[]) == 200
    });
    // The static export: addresses and API keys.
    assert_eq!(status(&url1, "127.0.0.2", &[]), 403);
    assert_eq!(status(&url1, "127.0.0.3", &["X-Api-Key: k-stolen-1"]), 403);
    assert_eq!(status(&url1, "127.0.0.3", &["X-Api-Key: k-fine"]), 200);
    // Through auth_request: the same, and what only the hub can say.
    let url2 = format!("http://127.0.0.1:{p2}");
    let basic = |u: &str| format!("Authorization: Basic {}", base64_of(&format!("{u}:pw")));
    let cases: [(&str, &str, Vec<String>, u16); 8] = [
        ("/", "127.0.0.3", vec![], 200),
        ("/", "127.0.0.2", vec![], 403),
        ("/", "127.0.0.3", vec!["X-Api-Key: k-stolen-1".into()], 403),
        ("/", "127.0.0.3", vec![basic("mallory")], 403),
        ("/", "127.0.0.3", vec![basic("alice")], 200),
        (
            "/api/items",
            "127.0.0.3",
            vec!["X-Client: scanner".into()],
            403,
        ),
        ("/other", "127.0.0.3", vec!["X-Client: scanner".into()], 200),
        ("/", "127.0.0.4", vec![], 200),
    ];
    for (path, from, headers, want) in &cases {
        let h: Vec<&str> = headers.iter().map(String::as_str).collect();
        let got = status(&format!("{url2}{path}"), from, &h);
        assert_eq!(
            got,
            *want,
            "{path} from {from} with {headers:?}:\n{}",
            ngx.log()
        );
    }
    // Each refusal (and the monitored request) is in the hub's log, counted per rule.
    std::thread::sleep(Duration::from_millis(700));
    let hits: serde_json::Value =
        serde_json::from_str(&tapline(&db, &["block", "hits", "--format", "json"])).unwrap();
    let per_rule: Vec<(i64, String, u64)> = hits["per_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["rule_id"].as_i64().unwrap(),
                c["action"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_rule,
        vec![
            (1, "block".into(), 1),
            (2, "block".into(), 1),
            (3, "block".into(), 1),
            (4, "block".into(), 1),
            (5, "monitor".into(), 1)
        ],
        "{hits}"
    );
    let _ = ngx.wait_for("", Duration::from_secs(1));
}

fn base64_of(s: &str) -> String {
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | base64")));
    out.trim().to_owned()
}

#[test]
fn haproxy_and_modsecurity_load_their_exports_and_refuse_blocked_clients() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("case.duckdb");
    rules_for_proxies(&db);
    let (_up, up) = upstream(d);
    let export = |format: &str, file: &str| {
        let p = d.join(file);
        tapline(
            &db,
            &[
                "blocklist",
                "export",
                "--format",
                format,
                "-o",
                p.to_str().unwrap(),
            ],
        );
        p
    };

    // HAProxy: the ACL file, checked by -c, then live.
    let acl = export("haproxy", "blocked.acl");
    let port = free_port();
    let cfg = d.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  http-request deny deny_status 403 if {{ src -f {} }}\n  default_backend be\n\
             backend be\n  server up 127.0.0.1:{up}\n",
            acl.display()
        ),
    )
    .unwrap();
    run(Command::new(program("haproxy"))
        .arg("-c")
        .arg("-f")
        .arg(&cfg));
    let haproxy = Proc::spawn(
        Command::new(program("haproxy"))
            .arg("-db")
            .arg("-f")
            .arg(&cfg),
        d.join("haproxy.out"),
    );
    let url = format!("http://127.0.0.1:{port}/");
    let ready = Instant::now() + Duration::from_secs(10);
    while status(&url, "127.0.0.3", &[]) != 200 {
        assert!(
            Instant::now() < ready,
            "haproxy did not answer:\n{}",
            haproxy.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&url, "127.0.0.2", &[]), 403);
    assert_eq!(
        status(&url, "127.0.0.4", &[]),
        200,
        "monitor rules are not exported"
    );

    // ModSecurity in nginx: blocking rules deny, the monitor rule only logs.
    let rules = export("modsecurity", "tapline-modsec.conf");
    let p = free_port();
    let http = format!(
        "modsecurity on;\nmodsecurity_rules 'SecRuleEngine On\nSecAuditEngine Off\n';\nmodsecurity_rules_file {};\n\
         server {{ listen 127.0.0.1:{p}; location / {{ proxy_pass http://127.0.0.1:{up}; }} }}",
        rules.display()
    );
    let ngx = nginx(d, "modsec", &http);
    let url = format!("http://127.0.0.1:{p}/api/items");
    wait_until("nginx with ModSecurity", Duration::from_secs(10), || {
        status(&url, "127.0.0.3", &[]) == 200
    });
    assert_eq!(status(&url, "127.0.0.2", &[]), 403);
    assert_eq!(status(&url, "127.0.0.3", &["X-Api-Key: k-stolen-1"]), 403);
    assert_eq!(status(&url, "127.0.0.3", &["X-Client: scanner"]), 403);
    let other = format!("http://127.0.0.1:{p}/other");
    assert_eq!(
        status(&other, "127.0.0.3", &["X-Client: scanner"]),
        200,
        "scoped to /api/*"
    );
    assert_eq!(status(&url, "127.0.0.4", &[]), 200);
    let errors = std::fs::read_to_string(d.join("modsec.err")).unwrap_or_default();
    assert!(
        errors.contains("Tapline rule 5 (monitor)"),
        "the monitor rule logs:\n{errors}\n{}",
        ngx.log()
    );
}
