//! Sending one request to the target and keeping what was said as evidence.
//!
//! Requests only ever go to the run's target: a URL on another host or port is refused before
//! it is sent, and redirects are followed only while they stay on the target. Responses are
//! read up to [`MAX_BODY`] (the rest is counted, not kept), so a test never holds an
//! unbounded answer.

use serde::{Deserialize, Serialize};
use std::io::Read as _;
use std::time::{Duration, Instant};
use url::Url;

/// Bytes of a response body read and judged.
pub const MAX_BODY: usize = 1 << 20;
/// Bytes of a body kept as evidence (reports and the case).
pub const EVIDENCE_BODY: usize = 16 << 10;
/// Redirects followed on the target host.
const MAX_REDIRECTS: usize = 5;

/// A request as it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRequest {
    /// HTTP method.
    pub method: String,
    /// As given by the test (relative to the target or absolute).
    pub url: String,
    /// In the order sent.
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The body as sent.
    pub body: Option<String>,
}

/// A response as it was received (body capped for evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// Status code.
    pub status: u16,
    /// In the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8), at most [`EVIDENCE_BODY`] bytes of it.
    pub body: String,
    /// The body's full length as far as it was read.
    pub body_len: usize,
    /// More was sent than was kept.
    pub truncated: bool,
}

/// One request and its answer (or why there was none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// What was sent.
    pub request: SentRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What came back; `None` when nothing did.
    pub response: Option<Received>,
    /// From sending to the end of the body.
    pub duration_ms: f64,
}

/// A response with its whole (capped) body, for judging.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// In the order received.
    pub headers: Vec<(String, String)>,
    /// At most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// From sending to the end of the body.
    pub duration: Duration,
}

impl Answer {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The evidence kept of this answer.
    pub fn received(&self) -> Received {
        let keep = self.body.len().min(EVIDENCE_BODY);
        Received {
            status: self.status,
            headers: self.headers.clone(),
            body: String::from_utf8_lossy(&self.body[..keep]).into_owned(),
            body_len: self.body.len(),
            truncated: keep < self.body.len(),
        }
    }
}

/// Why a request had no answer.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the variants and fields say what they are; messages explain
pub enum SendError {
    #[error("{url} is not on the target {target}; tests only send to --target")]
    OffTarget { url: String, target: String },
    #[error("`{url}` is not a URL: {why}")]
    BadUrl { url: String, why: String },
    #[error("{method} {url}: the target did not answer: {why}")]
    NoAnswer {
        method: String,
        url: String,
        why: String,
    },
    #[error("`{0}` is not an HTTP method")]
    BadMethod(String),
}

/// The HTTP client of a run.
pub struct Client {
    http: reqwest::blocking::Client,
    target: Url,
}

impl Client {
    /// A client for `target`; `timeout` bounds each request.
    pub fn new(target: Url, timeout: Duration) -> Result<Client, reqwest::Error> {
        let origin = target.origin();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS || attempt.url().origin() != origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls_config())
            .redirect(policy)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tapline-test/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client { http, target })
    }

    /// Where every request goes.
    pub fn target(&self) -> &Url {
        &self.target
    }

    /// Resolves a test's URL (absolute, or a path under the target) and refuses other hosts.
    pub fn resolve(&self, url: &str) -> Result<Url, SendError> {
        let bad = |why: String| SendError::BadUrl {
            url: url.to_owned(),
            why,
        };
        let u = if url.starts_with('/') {
            let base = self.target.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}{url}")).map_err(|e| bad(e.to_string()))?
        } else {
            Url::parse(url).map_err(|e| bad(e.to_string()))?
        };
        if u.origin() != self.target.origin() {
            return Err(SendError::OffTarget {
                url: u.to_string(),
                target: self.target.to_string(),
            });
        }
        Ok(u)
    }

    /// Sends `req` and reads the answer (within `timeout` when given, else the client's).
    pub fn send(&self, req: &SentRequest, timeout: Option<Duration>) -> Result<Answer, SendError> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| SendError::BadMethod(req.method.clone()))?;
        let url = self.resolve(&req.url)?;
        let mut builder = self.http.request(method, url);
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        for (n, v) in &req.headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        if let Some(b) = &req.body {
            builder = builder.body(b.clone());
        }
        let started = Instant::now();
        let no_answer = |e: &dyn std::fmt::Display| SendError::NoAnswer {
            method: req.method.clone(),
            url: req.url.clone(),
            why: e.to_string(),
        };
        let resp = builder.send().map_err(|e| no_answer(&error_chain(&e)))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        resp.take(MAX_BODY as u64)
            .read_to_end(&mut body)
            .map_err(|e| no_answer(&e))?;
        Ok(Answer {
            status,
            headers,
            body,
            duration: started.elapsed(),
        })
    }
}

/// reqwest's errors say "error sending request"; the cause (connection refused) is below.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// rustls on ring with the webpki roots, as the sensor link and the alerts use.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // ring supports the default versions; this arm only keeps the function total.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_under_the_target_and_other_hosts_are_refused() {
        let c = Client::new(
            Url::parse("http://127.0.0.1:8080/api").unwrap(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            c.resolve("/books/1?x=1").unwrap().as_str(),
            "http://127.0.0.1:8080/api/books/1?x=1"
        );
        assert!(c.resolve("http://127.0.0.1:8080/other").is_ok());
        assert!(matches!(
            c.resolve("http://127.0.0.1:9090/"),
            Err(SendError::OffTarget { .. })
        ));
        assert!(matches!(
            c.resolve("https://example.com/"),
            Err(SendError::OffTarget { .. })
        ));
        assert!(matches!(
            c.resolve("http://[::1"),
            Err(SendError::BadUrl { .. })
        ));
    }

    #[test]
    fn a_closed_port_is_no_answer_with_the_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(
            Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            Duration::from_secs(2),
        )
        .unwrap();
        let req = SentRequest {
            method: "GET".into(),
            url: "/".into(),
            headers: vec![],
            body: None,
        };
        let e = c.send(&req, None).err().unwrap().to_string();
        assert!(
            e.contains("did not answer") && e.to_lowercase().contains("refused"),
            "{e}"
        );
    }
}
