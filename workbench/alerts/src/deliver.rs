//! Getting alerts to their destinations: syslog over UDP, TCP (octet-counted framing, RFC
//! 6587) or a local datagram socket; webhooks over HTTP(S) with an HMAC-SHA256 signature and
//! retries with backoff; ECS JSON lines appended to a file.

use crate::AlertError;
use crate::format;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tapline_store::alerts::{AlertSink, PendingAlert, SinkKind};

/// Tries of one webhook delivery, and the wait before the second (doubled each time).
const WEBHOOK_TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one network operation may take.
const NET_TIMEOUT: Duration = Duration::from_secs(10);
/// The header carrying the body's signature: `sha256=` and the hex HMAC.
pub const SIGNATURE_HEADER: &str = "X-Tapline-Signature";

/// An open destination.
pub(crate) enum Destination {
    Udp(UdpSocket),
    Tcp {
        addr: String,
        stream: Option<TcpStream>,
    },
    Local(UnixDatagram, PathBuf),
    Webhook(Box<Webhook>),
    Ecs(PathBuf),
}

/// A webhook's URL, signing key and HTTP agent.
pub(crate) struct Webhook {
    url: String,
    key: Option<ring::hmac::Key>,
    agent: ureq::Agent,
}

impl Destination {
    /// Opens `sink`'s destination (sockets are bound or connected now; files opened per send).
    pub fn open(sink: &AlertSink) -> Result<Destination, AlertError> {
        let err = |what: &str, e: std::io::Error| AlertError::Open {
            sink: sink.id,
            target: sink.target.clone(),
            reason: format!("{what}: {e}"),
        };
        match sink.kind {
            SinkKind::Syslog => match syslog_target(&sink.target) {
                Some(SyslogTarget::Udp(addr)) => {
                    let to = addr
                        .to_socket_addrs()
                        .map_err(|e| err("resolving", e))?
                        .next()
                        .ok_or_else(|| err("resolving", std::io::Error::other("no address")))?;
                    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let s = UdpSocket::bind(bind).map_err(|e| err("binding", e))?;
                    s.connect(to).map_err(|e| err("connecting", e))?;
                    Ok(Destination::Udp(s))
                }
                Some(SyslogTarget::Tcp(addr)) => Ok(Destination::Tcp { addr, stream: None }),
                Some(SyslogTarget::Local(path)) => {
                    let s = UnixDatagram::unbound().map_err(|e| err("socket", e))?;
                    Ok(Destination::Local(s, path))
                }
                None => Err(AlertError::Open {
                    sink: sink.id,
                    target: sink.target.clone(),
                    reason: "a syslog target is udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"
                        .into(),
                }),
            },
            SinkKind::Webhook => {
                let config = ureq::Agent::config_builder()
                    .timeout_global(Some(NET_TIMEOUT))
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .build();
                Ok(Destination::Webhook(Box::new(Webhook {
                    url: sink.target.clone(),
                    key: sink
                        .secret
                        .as_deref()
                        .map(|s| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.as_bytes())),
                    agent: config.into(),
                })))
            }
            SinkKind::Ecs => Ok(Destination::Ecs(PathBuf::from(&sink.target))),
        }
    }

    /// Sends one alert; an error means it did not arrive (after the retries a webhook gets).
    pub fn send(&mut self, a: &PendingAlert, hostname: &str) -> Result<(), String> {
        let now = SystemTime::now();
        match self {
            Destination::Udp(s) => {
                let m = format::rfc5424(a, hostname, now);
                s.send(m.as_bytes()).map(drop).map_err(|e| e.to_string())
            }
            Destination::Tcp { addr, stream } => {
                let m = format::rfc5424(a, hostname, now);
                let frame = format!("{} {m}", m.len());
                send_tcp(addr, stream, frame.as_bytes())
            }
            Destination::Local(s, path) => {
                let m = format::rfc5424(a, hostname, now);
                s.send_to(m.as_bytes(), &*path)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Destination::Webhook(w) => {
                let body = format::webhook_body(a, now);
                let id = format::delivery_id(a);
                post_with_retries(&w.agent, &w.url, w.key.as_ref(), &body, &id)
            }
            Destination::Ecs(path) => {
                let mut line = format::ecs(a, now).to_string();
                line.push('\n');
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&*path)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
        }
    }
}

enum SyslogTarget {
    Udp(String),
    Tcp(String),
    Local(PathBuf),
}

fn syslog_target(t: &str) -> Option<SyslogTarget> {
    if let Some(a) = t.strip_prefix("udp://") {
        Some(SyslogTarget::Udp(a.to_owned()))
    } else if let Some(a) = t.strip_prefix("tcp://") {
        Some(SyslogTarget::Tcp(a.to_owned()))
    } else {
        t.strip_prefix("unix://")
            .map(|p| SyslogTarget::Local(PathBuf::from(p)))
    }
}

/// Whether `target` is a destination a sink of `kind` can use (checked when it is added).
pub fn check_target(kind: SinkKind, target: &str) -> Result<(), String> {
    match kind {
        SinkKind::Syslog if syslog_target(target).is_none() => {
            Err("a syslog target is udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH (the journal: unix:///dev/log)".into())
        }
        SinkKind::Webhook if !(target.starts_with("http://") || target.starts_with("https://")) => {
            Err("a webhook target is an http:// or https:// URL".into())
        }
        SinkKind::Ecs if target.is_empty() => Err("an ECS target is a file path".into()),
        _ => Ok(()),
    }
}

/// Writes a frame on the connection, connecting (again) when there is none or it broke.
fn send_tcp(addr: &str, stream: &mut Option<TcpStream>, frame: &[u8]) -> Result<(), String> {
    for _ in 0..2 {
        if stream.is_none() {
            let s = connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
            *stream = Some(s);
        }
        if let Some(s) = stream.as_mut() {
            match s.write_all(frame).and_then(|()| s.flush()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::debug!("syslog connection to {addr} broke ({e}); reconnecting");
                    *stream = None;
                }
            }
        }
    }
    Err(format!("the syslog connection to {addr} keeps breaking"))
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("no address");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, NET_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(NET_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// POSTs `body`, retrying with doubling waits on network errors, 408, 429 and 5xx; any other
/// status that is not 2xx is final.
fn post_with_retries(
    agent: &ureq::Agent,
    url: &str,
    key: Option<&ring::hmac::Key>,
    body: &[u8],
    delivery: &str,
) -> Result<(), String> {
    let signature = key.map(|k| {
        let tag = ring::hmac::sign(k, body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    });
    let mut wait = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=WEBHOOK_TRIES {
        let mut req = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("tapline/", env!("CARGO_PKG_VERSION")))
            .header("X-Tapline-Delivery", delivery);
        if let Some(sig) = &signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        match req.send(body) {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                last = format!("{url} answered {status}");
                if !(status == 408 || status == 429 || status >= 500) {
                    return Err(last);
                }
            }
            Err(e) => last = format!("{url}: {e}"),
        }
        if attempt < WEBHOOK_TRIES {
            tracing::debug!("webhook delivery {delivery} failed ({last}); retrying in {wait:?}");
            std::thread::sleep(wait);
            wait *= 2;
        }
    }
    Err(format!("{last} ({WEBHOOK_TRIES} tries)"))
}
