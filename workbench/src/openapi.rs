//! The discovered inventory as an OpenAPI 3.1 document.

use anyhow::Result;
use serde_json::{Map, Value, json};
use tapline_store::CaseStore;

/// Builds the document from the case's endpoints.
pub fn document(store: &CaseStore) -> Result<Value> {
    let endpoints = store.endpoints()?;
    let mut paths = Map::new();
    let mut servers: Vec<String> = Vec::new();
    for e in &endpoints {
        if !servers.contains(&e.host) {
            servers.push(e.host.clone());
        }
        let params: Vec<Value> = e
            .template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        if let Some(statuses) = e
            .detail
            .as_ref()
            .and_then(|d| d.get("statuses"))
            .and_then(Value::as_object)
        {
            for code in statuses.keys() {
                responses.insert(
                    code.clone(),
                    json!({"description": format!("Observed {code} response")}),
                );
            }
        }
        if responses.is_empty() {
            responses.insert(
                "default".into(),
                json!({"description": "No response observed"}),
            );
        }
        let mut op = json!({
            "operationId": format!("{}_{}", e.method.to_ascii_lowercase(), e.id),
            "responses": responses,
            "x-tapline": {"host": e.host, "count": e.count, "firstSeenNs": e.first_seen_ns, "lastSeenNs": e.last_seen_ns},
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let item = paths
            .entry(e.template.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = item {
            m.insert(e.method.to_ascii_lowercase(), op);
        }
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {"title": "API inventory discovered by Tapline", "version": env!("CARGO_PKG_VERSION")},
        "servers": servers.iter().map(|h| json!({"url": format!("http://{h}")})).collect::<Vec<_>>(),
        "paths": paths,
    }))
}
