//! HTTPS plumbing and routing: hyper's HTTP/1.1 over rustls, a bounded number of connections,
//! bounded request bodies, and the handlers of each route.

use crate::authz;
use crate::lapi::{self, Filter};
use crate::state::{AgentRef, Snapshot, key_hash};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use tapline_enforce::Verdict;
pub(crate) use tapline_record::time::now_nanos as now_ns;
use tapline_store::agents::Hit;

/// Largest request body taken (usage metrics).
const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
pub(crate) struct Shared {
    pub snapshot: RwLock<Arc<Snapshot>>,
    /// Per agent: what its bouncer was last sent.
    pub cursors: Mutex<HashMap<i64, lapi::Cursor>>,
    pub ids: Mutex<lapi::Ids>,
    /// Per agent: when and from where it last asked.
    pub seen: Mutex<HashMap<i64, (i64, String)>>,
    /// Bounded: when the case falls behind, hits are counted as lost rather than queued.
    pub hits: std::sync::mpsc::SyncSender<Hit>,
    pub hits_lost: std::sync::atomic::AtomicU64,
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "message": text }))
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    Some((decode(k)?, decode(v)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Shared {
    fn agent(&self, snap: &Snapshot, key: Option<&str>, peer: SocketAddr) -> Option<AgentRef> {
        let agent = snap.agents.get(&key_hash(key?))?.clone();
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(agent.id, (now_ns(), peer.to_string()));
        }
        Some(agent)
    }

    pub(crate) async fn handle(
        self: Arc<Self>,
        peer: SocketAddr,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let snap = match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(_) => {
                return Ok(message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "decisions unavailable",
                ));
            }
        };
        let path = req.uri().path().to_owned();
        if path == authz::PREFIX || path.starts_with(&format!("{}/", authz::PREFIX)) {
            return Ok(self.authz(&snap, peer, &req));
        }
        let api_key = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(agent) = self.agent(&snap, api_key.as_deref(), peer) else {
            tracing::info!(%peer, %path, "refused: no live agent key (X-Api-Key)");
            return Ok(message(StatusCode::FORBIDDEN, "access forbidden"));
        };
        let method = req.method().clone();
        Ok(match (method, path.as_str()) {
            (Method::HEAD, "/v1/decisions/stream") => Response::new(Full::new(Bytes::new())),
            (Method::GET, "/v1/decisions/stream") => self.stream(&snap, &agent, &query(&req)),
            (Method::GET, "/v1/decisions") => decisions(&snap, &query(&req), &self.ids),
            (Method::POST, "/v1/usage-metrics") => {
                // Read (bounded) and let go: the bouncer's counts are its own business.
                match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
                    Ok(_) => json(StatusCode::CREATED, &serde_json::json!({})),
                    Err(_) => message(StatusCode::PAYLOAD_TOO_LARGE, "usage metrics over 64 KiB"),
                }
            }
            (_, p) => message(StatusCode::NOT_FOUND, &format!("no route {p}")),
        })
    }

    fn stream(
        &self,
        snap: &Snapshot,
        agent: &AgentRef,
        params: &[(String, String)],
    ) -> Response<Full<Bytes>> {
        let startup = params
            .iter()
            .any(|(k, v)| k == "startup" && v.eq_ignore_ascii_case("true"));
        let filter = Filter::from_query(params);
        let (new, deleted) = {
            let Ok(mut cursors) = self.cursors.lock() else {
                return message(StatusCode::SERVICE_UNAVAILABLE, "decisions unavailable");
            };
            let mut sent = if startup {
                None
            } else {
                cursors.remove(&agent.id)
            };
            let d = lapi::delta(&snap.live, &filter, &mut sent, &snap.gone);
            if let Some(s) = sent {
                cursors.insert(agent.id, s);
            }
            d
        };
        let now = now_ns();
        let Ok(mut ids) = self.ids.lock() else {
            return message(StatusCode::SERVICE_UNAVAILABLE, "decisions unavailable");
        };
        let write = |list: Vec<lapi::Live>, ids: &mut lapi::Ids| -> Vec<lapi::Decision> {
            list.iter()
                .map(|d| lapi::decision(d, ids.of(d), now))
                .collect()
        };
        let new = write(new, &mut ids);
        let deleted = write(deleted, &mut ids);
        if !new.is_empty() || !deleted.is_empty() {
            tracing::info!(agent = %agent.name, new = new.len(), deleted = deleted.len(), "decisions sent");
        }
        json(
            StatusCode::OK,
            &serde_json::json!({ "new": new, "deleted": deleted }),
        )
    }

    fn authz(
        &self,
        snap: &Snapshot,
        peer: SocketAddr,
        req: &Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        let h = req.headers();
        let key = h
            .get(authz::KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                query(req)
                    .into_iter()
                    .find(|(k, _)| k == "key")
                    .map(|(_, v)| v)
            });
        let Some(agent) = self.agent(snap, key.as_deref(), peer) else {
            tracing::info!(%peer, "decision refused: no live agent key (X-Tapline-Key)");
            return message(
                StatusCode::UNAUTHORIZED,
                "no live agent key (X-Tapline-Key)",
            );
        };
        let original = authz::original(req.method().as_str(), req.uri().path(), h);
        let verdict = snap.index.decide(&original);
        let (rule, action) = match verdict {
            Verdict::Block(r) => (r, "block"),
            Verdict::Monitor(r) => (r, "monitor"),
            Verdict::Allow | Verdict::Allowlisted => {
                return Response::new(Full::new(Bytes::new()));
            }
        };
        let hit = Hit {
            at_ns: now_ns(),
            rule_id: rule,
            action: action.into(),
            agent: agent.name.clone(),
            client: original.client.map(|c| c.to_string()),
            method: original.method.to_owned(),
            path: original.path.chars().take(2048).collect(),
        };
        if self.hits.try_send(hit).is_err() {
            self.hits_lost
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut r = if action == "block" {
            let mut r = Response::new(Full::new(Bytes::from(format!(
                "blocked by Tapline rule {rule}\n"
            ))));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        } else {
            Response::new(Full::new(Bytes::new()))
        };
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("{action} {rule}")) {
            r.headers_mut().insert("x-tapline-decision", v);
        }
        r
    }
}

/// `GET /v1/decisions?ip=…|range=…|value=…&scope=…&type=…`: the live decisions that cover an
/// address (or equal a value), or `null` when none, as the Local API answers.
fn decisions(
    snap: &Snapshot,
    params: &[(String, String)],
    ids: &Mutex<lapi::Ids>,
) -> Response<Full<Bytes>> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("type").is_some_and(|t| !t.eq_ignore_ascii_case("ban")) {
        return json(StatusCode::OK, &serde_json::Value::Null);
    }
    let found: Vec<&lapi::Live> = match (get("ip"), get("range").or(get("value"))) {
        (Some(ip), _) => match ip.parse() {
            Ok(ip) => snap.covering(ip),
            Err(_) => {
                return message(
                    StatusCode::BAD_REQUEST,
                    &format!("`{ip}` is not an IP address"),
                );
            }
        },
        (None, Some(v)) => snap.live.get(v).into_iter().collect(),
        (None, None) => snap.live.values().collect(),
    };
    let found: Vec<&lapi::Live> = found
        .into_iter()
        .filter(|d| get("scope").is_none_or(|s| s.eq_ignore_ascii_case(d.scope)))
        .collect();
    if found.is_empty() {
        return json(StatusCode::OK, &serde_json::Value::Null);
    }
    let Ok(mut ids) = ids.lock() else {
        return message(StatusCode::SERVICE_UNAVAILABLE, "decisions unavailable");
    };
    let now = now_ns();
    let list: Vec<lapi::Decision> = found
        .into_iter()
        .map(|d| lapi::decision(d, ids.of(d), now))
        .collect();
    json(StatusCode::OK, &serde_json::json!(list))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(decode("ip%2Crange").as_deref(), Some("ip,range"));
        assert_eq!(decode("a+b").as_deref(), Some("a b"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%2"), None);
    }
}
