//! The discovered inventory as an OpenAPI 3.1 document: paths from the templates, parameters,
//! request bodies and responses from the endpoints' profiles, security schemes from the auth
//! seen. What OpenAPI has no field for (counts, latency, first/last seen, hosts) goes in
//! `x-tapline` extensions.

use anyhow::Result;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use tapline_analysis::profile::{EndpointProfile, ParamStats, ProfileError};
use tapline_store::CaseStore;
use tapline_store::endpoints::Endpoint;

/// Builds the document from the case's endpoints.
pub fn document(store: &CaseStore) -> Result<Value> {
    Ok(from_endpoints(&store.endpoints()?)?)
}

/// A parameter's schema from its statistics.
fn param_schema(p: &ParamStats) -> Value {
    let (t, f) = p.openapi_type();
    let mut s = json!({ "type": t });
    if let Some(f) = f {
        s["format"] = json!(f);
    }
    s
}

/// The security scheme name and definition for an auth key of the profile.
fn security_scheme(key: &str) -> Option<(String, Value)> {
    let scheme_name = |s: &str| {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    };
    Some(match key.split_once(':') {
        None => match key {
            "bearer_jwt" => (
                "bearerJwt".into(),
                json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
            ),
            "bearer" => ("bearer".into(), json!({"type": "http", "scheme": "bearer"})),
            "basic" => ("basic".into(), json!({"type": "http", "scheme": "basic"})),
            "none" => return None,
            other => (scheme_name(other), json!({"type": "http", "scheme": other})),
        },
        Some(("api_key_header", name)) => (
            format!("apiKeyHeader_{}", scheme_name(name)),
            json!({"type": "apiKey", "in": "header", "name": name}),
        ),
        Some(("api_key_query", name)) => (
            format!("apiKeyQuery_{}", scheme_name(name)),
            json!({"type": "apiKey", "in": "query", "name": name}),
        ),
        Some(("session_cookie", name)) => (
            format!("sessionCookie_{}", scheme_name(name)),
            json!({"type": "apiKey", "in": "cookie", "name": name}),
        ),
        Some(_) => return None,
    })
}

fn operation_id(method: &str, template: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for c in template.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.ends_with('_') {
            id.push('_');
        }
    }
    id.trim_end_matches('_').to_owned()
}

/// Builds the document from endpoints (several hosts' copies of one operation are merged).
pub fn from_endpoints(endpoints: &[Endpoint]) -> Result<Value, ProfileError> {
    // (template, method) → (profile, hosts, count, first, last)
    type Op = (EndpointProfile, Vec<String>, u64, i64, i64);
    let mut ops: BTreeMap<(String, String), Op> = BTreeMap::new();
    let mut servers: Vec<String> = Vec::new();
    for e in endpoints {
        if !servers.contains(&e.host) {
            servers.push(e.host.clone());
        }
        let profile = EndpointProfile::of(e)?;
        let op = ops
            .entry((e.template.clone(), e.method.to_ascii_lowercase()))
            .or_insert_with(|| {
                (
                    EndpointProfile::default(),
                    Vec::new(),
                    0,
                    e.first_seen_ns,
                    e.last_seen_ns,
                )
            });
        op.0.absorb(&profile);
        op.1.push(e.host.clone());
        op.2 += e.count;
        op.3 = op.3.min(e.first_seen_ns);
        op.4 = op.4.max(e.last_seen_ns);
    }

    let mut paths = Map::new();
    let mut schemes = Map::new();
    for ((template, method), (p, hosts, count, first, last)) in ops {
        let mut params = Vec::new();
        for name in template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            let schema = p
                .path_params
                .get(name)
                .map_or_else(|| json!({"type": "string"}), param_schema);
            params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
        let auth_names: Vec<&str> = p
            .auth
            .keys()
            .filter_map(|k| {
                let (kind, name) = k.split_once(':')?;
                Some((kind, name))
            })
            .filter_map(|(kind, name)| {
                matches!(kind, "api_key_header" | "api_key_query" | "session_cookie")
                    .then_some(name)
            })
            .collect();
        for (location, map) in [
            ("query", &p.query_params),
            ("header", &p.header_params),
            ("cookie", &p.cookie_params),
        ] {
            for (name, stats) in map {
                if auth_names.contains(&name.as_str()) {
                    continue; // described by the security scheme
                }
                params.push(json!({
                    "name": name,
                    "in": location,
                    "required": stats.count >= count,
                    "schema": param_schema(stats),
                }));
            }
        }

        let mut op = Map::new();
        op.insert(
            "operationId".into(),
            json!(operation_id(&method, &template)),
        );
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let mut body = Map::new();
        if let Some(s) = &p.request_schema {
            let media = p
                .request_content_types
                .keys()
                .find(|m| m.contains("json"))
                .cloned()
                .unwrap_or_else(|| "application/json".into());
            body.insert(media, json!({"schema": s.to_json_schema()}));
        }
        if !p.form_fields.is_empty() {
            let props: Map<String, Value> = p
                .form_fields
                .iter()
                .map(|(k, v)| (k.clone(), param_schema(v)))
                .collect();
            let media = if p.request_content_types.contains_key("multipart/form-data") {
                "multipart/form-data"
            } else {
                "application/x-www-form-urlencoded"
            };
            body.insert(
                media.into(),
                json!({"schema": {"type": "object", "properties": props}}),
            );
        }
        if !body.is_empty() {
            op.insert("requestBody".into(), json!({ "content": body }));
        }

        let response_media = p
            .response_content_types
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(m, _)| m.clone());
        let mut responses = Map::new();
        for code in p.statuses.keys() {
            let mut r = json!({"description": format!("Observed {code} response")});
            if let Some(s) = p.response_schemas.get(code) {
                let media = response_media
                    .clone()
                    .filter(|m| m.contains("json"))
                    .unwrap_or_else(|| "application/json".into());
                r["content"] = json!({ media: {"schema": s.to_json_schema()} });
            } else if let Some(m) = &response_media {
                r["content"] = json!({ m.clone(): {} });
            }
            responses.insert(code.clone(), r);
        }
        if responses.is_empty() {
            responses.insert(
                "default".into(),
                json!({"description": "No response observed"}),
            );
        }
        op.insert("responses".into(), Value::Object(responses));

        let mut security = Vec::new();
        for key in p.auth.keys() {
            if let Some((name, def)) = security_scheme(key) {
                security.push(json!({ name.clone(): [] }));
                schemes.insert(name, def);
            }
        }
        if !security.is_empty() {
            if p.auth.contains_key("none") {
                security.push(json!({})); // some requests carried no credentials
            }
            op.insert("security".into(), Value::Array(security));
        }
        let latency: Map<String, Value> = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]
            .iter()
            .filter_map(|(k, q)| Some((k.to_string(), json!(p.latency.quantile_us(*q)? / 1e3))))
            .collect();
        op.insert(
            "x-tapline".into(),
            json!({
                "hosts": hosts,
                "count": count,
                "firstSeenNs": first,
                "lastSeenNs": last,
                "latencyMs": latency,
                "auth": p.auth.iter().map(|(k, a)| (k.clone(), json!(a.count))).collect::<Map<_, _>>(),
                "jwtClaims": p.auth.get("bearer_jwt").map(|a| &a.jwt_claims),
                "dataClasses": p.data_classes,
                "mergedFrom": p.merged_from,
            }),
        );
        let item = paths
            .entry(template.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = item {
            m.insert(method, Value::Object(op));
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "API inventory discovered by Tapline", "version": env!("CARGO_PKG_VERSION")},
        "servers": servers.iter().map(|h| json!({"url": format!("http://{h}")})).collect::<Vec<_>>(),
        "paths": paths,
    });
    if !schemes.is_empty() {
        doc["components"] = json!({ "securitySchemes": schemes });
    }
    Ok(doc)
}
