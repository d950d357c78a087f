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

/// One operation (template and method) over every host it was seen on.
struct Operation {
    profile: EndpointProfile,
    hosts: Vec<String>,
    count: u64,
    first_seen_ns: i64,
    last_seen_ns: i64,
}

impl Operation {
    fn new(e: &Endpoint) -> Self {
        Operation {
            profile: EndpointProfile::default(),
            hosts: Vec::new(),
            count: 0,
            first_seen_ns: e.first_seen_ns,
            last_seen_ns: e.last_seen_ns,
        }
    }

    fn absorb(&mut self, e: &Endpoint, profile: &EndpointProfile) {
        self.profile.absorb(profile);
        self.hosts.push(e.host.clone());
        self.count += e.count;
        self.first_seen_ns = self.first_seen_ns.min(e.first_seen_ns);
        self.last_seen_ns = self.last_seen_ns.max(e.last_seen_ns);
    }

    /// The OpenAPI operation object; security schemes it uses are added to `schemes`.
    fn to_json(&self, method: &str, template: &str, schemes: &mut Map<String, Value>) -> Value {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(operation_id(method, template)));
        let params = self.parameters(template);
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(body) = self.request_body() {
            op.insert("requestBody".into(), body);
        }
        op.insert("responses".into(), Value::Object(self.responses()));
        if let Some(security) = self.security(schemes) {
            op.insert("security".into(), security);
        }
        op.insert("x-tapline".into(), self.extension());
        Value::Object(op)
    }

    /// Path parameters from the template; query, header and cookie parameters from traffic
    /// (those that carry credentials are described by the security scheme instead).
    fn parameters(&self, template: &str) -> Vec<Value> {
        let p = &self.profile;
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
            .filter_map(|k| k.split_once(':'))
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
                    continue;
                }
                params.push(json!({
                    "name": name,
                    "in": location,
                    "required": stats.count >= self.count,
                    "schema": param_schema(stats),
                }));
            }
        }
        params
    }

    /// The request body: a JSON schema and/or form fields, by media type.
    fn request_body(&self) -> Option<Value> {
        let p = &self.profile;
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
        (!body.is_empty()).then(|| json!({ "content": body }))
    }

    /// One response per observed status, with its schema where the body was JSON.
    fn responses(&self) -> Map<String, Value> {
        let p = &self.profile;
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
        responses
    }

    /// The security requirements seen; `{}` among them when some requests had none.
    fn security(&self, schemes: &mut Map<String, Value>) -> Option<Value> {
        let mut security = Vec::new();
        for key in self.profile.auth.keys() {
            if let Some((name, def)) = security_scheme(key) {
                security.push(json!({ name.clone(): [] }));
                schemes.insert(name, def);
            }
        }
        if security.is_empty() {
            return None;
        }
        if self.profile.auth.contains_key("none") {
            security.push(json!({}));
        }
        Some(Value::Array(security))
    }

    /// `x-tapline`: what traffic showed beyond the contract.
    fn extension(&self) -> Value {
        let p = &self.profile;
        let latency: Map<String, Value> = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]
            .iter()
            .filter_map(|(k, q)| Some((k.to_string(), json!(p.latency.quantile_us(*q)? / 1e3))))
            .collect();
        json!({
            "hosts": self.hosts,
            "count": self.count,
            "firstSeenNs": self.first_seen_ns,
            "lastSeenNs": self.last_seen_ns,
            "latencyMs": latency,
            "auth": p.auth.iter().map(|(k, a)| (k.clone(), json!(a.count))).collect::<Map<_, _>>(),
            "jwtClaims": p.auth.get("bearer_jwt").map(|a| &a.jwt_claims),
            "dataClasses": p.data_classes,
            "mergedFrom": p.merged_from,
            "limitsHit": p.limits,
        })
    }
}

/// Builds the document from endpoints (several hosts' copies of one operation are merged).
pub fn from_endpoints(endpoints: &[Endpoint]) -> Result<Value, ProfileError> {
    let mut ops: BTreeMap<(String, String), Operation> = BTreeMap::new();
    let mut servers: Vec<String> = Vec::new();
    for e in endpoints {
        if !servers.contains(&e.host) {
            servers.push(e.host.clone());
        }
        let profile = EndpointProfile::of(e)?;
        ops.entry((e.template.clone(), e.method.to_ascii_lowercase()))
            .or_insert_with(|| Operation::new(e))
            .absorb(e, &profile);
    }
    let mut paths = Map::new();
    let mut schemes = Map::new();
    for ((template, method), op) in ops {
        let op = op.to_json(&method, &template, &mut schemes);
        if let Value::Object(m) = paths
            .entry(template)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            m.insert(method, op);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::Transaction;

    /// An endpoint on `host` whose profile saw one request with `headers` and a JSON answer.
    fn endpoint(host: &str, headers: &[(&str, &str)], count: u64) -> Endpoint {
        let tx = Transaction {
            method: "GET".into(),
            uri: "/users/7?page=2".into(),
            status: Some(200),
            request_headers: headers.iter().copied().collect(),
            response_headers: [("Content-Type", "application/json")].into_iter().collect(),
            response_body: tapline_record::Body {
                data: br#"{"id": 7}"#.to_vec(),
                len: 9,
                truncated: false,
            },
            ..Transaction::default()
        };
        let mut profile = EndpointProfile::default();
        profile.observe(&tx, count, &[("userId", "7")]);
        Endpoint {
            id: 1,
            host: host.into(),
            method: "GET".into(),
            template: "/users/{userId}".into(),
            first_seen_ns: count as i64,
            last_seen_ns: 100 + count as i64,
            count,
            detail: Some(profile.to_json("test").expect("profile serialises")),
        }
    }

    #[test]
    fn test_hosts_merge_into_one_operation_with_parameters_and_security() {
        let doc = from_endpoints(&[
            endpoint("a.example", &[("X-Api-Key", "k1")], 1),
            endpoint("b.example", &[], 2),
        ])
        .expect("valid profiles");
        let op = &doc["paths"]["/users/{userId}"]["get"];
        assert_eq!(op["operationId"], "get_users_userId");
        assert_eq!(op["x-tapline"]["hosts"], json!(["a.example", "b.example"]));
        assert_eq!(op["x-tapline"]["count"], 3);
        assert_eq!(op["x-tapline"]["firstSeenNs"], 1);
        assert_eq!(op["x-tapline"]["lastSeenNs"], 102);
        let params = op["parameters"].as_array().expect("parameters");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "userId" && p["in"] == "path")
        );
        let page = params.iter().find(|p| p["name"] == "page").expect("page");
        assert_eq!(page["in"], "query");
        assert!(
            op["responses"]["200"]["content"]["application/json"]["schema"].is_object(),
            "{op}"
        );
        assert_eq!(doc["servers"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn test_an_operation_without_responses_says_so() {
        let e = Endpoint {
            id: 1,
            host: "h".into(),
            method: "DELETE".into(),
            template: "/x".into(),
            first_seen_ns: 0,
            last_seen_ns: 0,
            count: 1,
            detail: None,
        };
        let doc = from_endpoints(&[e]).expect("no profile is an empty profile");
        let op = &doc["paths"]["/x"]["delete"];
        assert!(op["responses"]["default"].is_object());
        assert!(op.get("parameters").is_none());
        assert!(op.get("security").is_none());
    }
}
