//! Transactions as Elastic Common Schema documents (one JSON object a line), so a SIEM takes
//! `tapline export jsonl` as is: `@timestamp`, `source.ip`, `http.request.method`, `url.path`…
//! Fields ECS has no name for live under `tapline.*`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use tapline_record::Transaction;

fn body(data: &[u8], len: u64, truncated: bool, mime: Option<&str>) -> Value {
    let mut b = Map::new();
    b.insert("bytes".into(), json!(len));
    if let Some(m) = mime {
        b.insert("mime_type".into(), json!(m));
    }
    match std::str::from_utf8(data) {
        Ok(t) if !t.is_empty() => {
            b.insert("content".into(), json!(t));
        }
        Ok(_) => {}
        Err(_) => {
            b.insert("content_base64".into(), json!(B64.encode(data)));
        }
    }
    if truncated {
        b.insert("truncated".into(), json!(true));
    }
    Value::Object(b)
}

fn headers(h: &tapline_record::Headers) -> Value {
    let mut m = Map::new();
    for (n, v) in h.iter() {
        let key = n.to_ascii_lowercase();
        match m.get_mut(&key) {
            Some(Value::Array(a)) => a.push(json!(v)),
            _ => {
                m.insert(key, json!([v]));
            }
        }
    }
    Value::Object(m)
}

/// The ECS document for one transaction with its case id.
pub fn document(id: i64, t: &Transaction) -> Value {
    let (path, query) = (t.path(), t.query());
    let mut doc = json!({
        "@timestamp": tapline_record::time::rfc3339_nanos(t.request_ts_nanos),
        "event": {
            "kind": "event",
            "category": ["network", "web"],
            "type": ["access", "protocol"],
            "dataset": "tapline.http",
            "id": id.to_string(),
            "duration": t.response_ts_nanos.map(|r| r - t.request_ts_nanos),
        },
        "network": { "protocol": "http", "transport": "tcp" },
        "http": {
            "version": t.version.as_str().trim_start_matches("HTTP/"),
            "request": {
                "method": t.method,
                "headers": headers(&t.request_headers),
                "body": body(&t.request_body.data, t.request_body.len, t.request_body.truncated, t.request_content_type()),
            },
            "response": {
                "status_code": t.status,
                "headers": headers(&t.response_headers),
                "body": body(&t.response_body.data, t.response_body.len, t.response_body.truncated, t.response_content_type()),
            },
        },
        "url": {
            "original": t.uri,
            "path": path,
            "query": query,
            "domain": t.host.as_deref().map(|h| h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(h, |(d, _)| d)),
        },
        "user_agent": { "original": t.request_header("user-agent") },
        "tapline": {
            "anomalies": t.anomalies.names().collect::<Vec<_>>(),
            "reason": t.reason.as_deref(),
        },
    });
    if let Some(c) = t.client {
        doc["source"] = json!({ "ip": c.ip().to_string(), "port": c.port() });
        doc["client"] = doc["source"].clone();
    }
    if let Some(s) = t.server {
        doc["destination"] = json!({ "ip": s.ip().to_string(), "port": s.port() });
        doc["server"] = doc["destination"].clone();
    }
    if let Some(sensor) = t.sensor_id.as_deref() {
        doc["observer"] = json!({ "name": sensor, "type": "sensor", "vendor": "Tapline" });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_have_ecs_names() {
        let t = Transaction {
            request_ts_nanos: 1_700_000_000_000_000_000,
            response_ts_nanos: Some(1_700_000_000_002_000_000),
            client: "10.0.0.5:50000".parse().ok(),
            server: "10.0.0.9:8080".parse().ok(),
            method: "GET".into(),
            host: Some("api.test:8080".into()),
            uri: "/v1/users/7?full=1".into(),
            status: Some(200),
            request_headers: [("User-Agent", "curl/8")].into_iter().collect(),
            ..Transaction::default()
        };
        let d = document(42, &t);
        assert_eq!(d["http"]["request"]["method"], "GET");
        assert_eq!(d["http"]["response"]["status_code"], 200);
        assert_eq!(d["url"]["path"], "/v1/users/7");
        assert_eq!(d["url"]["query"], "full=1");
        assert_eq!(d["url"]["domain"], "api.test");
        assert_eq!(d["source"]["ip"], "10.0.0.5");
        assert_eq!(d["destination"]["port"], 8080);
        assert_eq!(d["event"]["duration"], 2_000_000);
        assert_eq!(d["user_agent"]["original"], "curl/8");
        assert_eq!(d["@timestamp"], "2023-11-14T22:13:20.000000000Z");
    }
}
