//! The team's OpenAPI document against the observed inventory: shadow endpoints (seen, not
//! documented), zombie endpoints (documented, never seen) and drift on the endpoints both have
//! (undocumented parameters, response fields, status codes, authentication differences).
//!
//! Paths match by shape — literal segments equal, parameters in the same places, names
//! ignored — after prefixing the path of the document's first server URL (`/api/v1`).

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use tapline_analysis::profile::{EndpointProfile, ProfileError};
use tapline_store::endpoints::Endpoint;

/// One documented operation, reduced to what the diff compares.
#[derive(Clone, Debug, Default)]
struct SpecOp {
    method: String,
    path: String,
    params: BTreeSet<(String, String)>,
    statuses: BTreeSet<String>,
    any_status: bool,
    fields: BTreeSet<String>,
    /// Each alternative of the security requirement as auth keys; empty list = no security.
    security: Vec<BTreeSet<String>>,
    /// Names of parameters carried by its security schemes (`X-API-Key`, `session`).
    auth_params: BTreeSet<String>,
}

/// One difference on an endpoint both sides have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Drift {
    /// `GET /users/{userId}`.
    pub endpoint: String,
    /// `undocumented_parameter`, `undocumented_response_field`, `undocumented_status`,
    /// `undocumented_auth`, `missing_auth`.
    pub kind: String,
    /// What exactly (`query x`, `items[].price`, `500`, `bearer_jwt`).
    pub detail: String,
}

/// The comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SpecDiff {
    /// Operations the document has.
    pub documented: usize,
    /// Endpoints the case has.
    pub observed: usize,
    /// Seen, not documented.
    pub shadow: Vec<String>,
    /// Documented, never seen.
    pub zombie: Vec<String>,
    /// Differences on endpoints both have.
    pub drift: Vec<Drift>,
}

impl SpecDiff {
    /// Nothing to report.
    pub fn is_clean(&self) -> bool {
        self.shadow.is_empty() && self.zombie.is_empty() && self.drift.is_empty()
    }
}

fn shape(path: &str) -> String {
    path.trim_end_matches('/')
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads an OpenAPI 3.x document (JSON or YAML).
pub fn load(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read OpenAPI document {}", path.display()))?;
    let doc: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{} is neither JSON nor YAML OpenAPI", path.display()))?,
    };
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => Ok(doc),
        Some(v) => bail!(
            "{}: OpenAPI {v} is not supported (3.0 and 3.1 are); convert Swagger 2.0 with swagger2openapi",
            path.display()
        ),
        None if doc.get("swagger").is_some() => bail!(
            "{}: Swagger 2.0 is not supported (OpenAPI 3.0 and 3.1 are); convert it first, e.g. with `npx swagger2openapi`",
            path.display()
        ),
        None => bail!(
            "{}: no `openapi` version field; is this an OpenAPI document?",
            path.display()
        ),
    }
}

/// Follows a local `$ref` (`#/components/schemas/User`), a few levels deep.
fn deref<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let Some(ptr) = r.strip_prefix('#') else {
            return v;
        };
        match doc.pointer(ptr) {
            Some(t) => v = t,
            None => return v,
        }
    }
    v
}

/// Field paths a schema describes (`items[].name`), as `SchemaNode::field_paths` writes them.
fn schema_fields(doc: &Value, s: &Value, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
    if depth > 24 {
        return;
    }
    let s = deref(doc, s);
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = s.get(key).and_then(Value::as_array) {
            for sub in list {
                schema_fields(doc, sub, prefix, depth + 1, out);
            }
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(p.clone());
            schema_fields(doc, v, &p, depth + 1, out);
        }
    }
    if let Some(items) = s.get("items") {
        schema_fields(doc, items, &format!("{prefix}[]"), depth + 1, out);
    }
}

/// An auth key of ours for a security scheme definition, and the parameter it travels in.
fn scheme_key(def: &Value) -> (Vec<String>, Option<String>) {
    let kind = def.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "http" => match def
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "bearer" => (vec!["bearer_jwt".into(), "bearer".into()], None),
            other => (vec![other.to_owned()], None),
        },
        "apiKey" => {
            let name = def.get("name").and_then(Value::as_str).unwrap_or("");
            let key = match def.get("in").and_then(Value::as_str).unwrap_or("") {
                "header" => format!("api_key_header:{}", name.to_ascii_lowercase()),
                "query" => format!("api_key_query:{name}"),
                _ => format!("session_cookie:{name}"),
            };
            (vec![key], Some(name.to_ascii_lowercase()))
        }
        // OAuth2 and OpenID Connect send bearer tokens.
        "oauth2" | "openIdConnect" => (vec!["bearer_jwt".into(), "bearer".into()], None),
        _ => (Vec::new(), None),
    }
}

fn operations(doc: &Value) -> Vec<SpecOp> {
    let base = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .map(|u| {
            let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
            let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
            path.trim_end_matches('/').to_owned()
        })
        .unwrap_or_default();
    let schemes = doc.pointer("/components/securitySchemes");
    let global_security = doc.get("security");
    let mut out = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for (path, item) in paths {
        let item = deref(doc, item);
        let shared_params = item.get("parameters").and_then(Value::as_array);
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            let Some(op) = item.get(method) else { continue };
            let mut s = SpecOp {
                method: method.to_uppercase(),
                path: format!("{base}{path}"),
                ..SpecOp::default()
            };
            for p in shared_params.into_iter().flatten().chain(
                op.get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            ) {
                let p = deref(doc, p);
                let (Some(name), Some(loc)) = (
                    p.get("name").and_then(Value::as_str),
                    p.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let name = if loc == "header" {
                    name.to_ascii_lowercase()
                } else {
                    name.to_owned()
                };
                s.params.insert((loc.to_owned(), name));
            }
            if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                for (code, r) in responses {
                    if code == "default" || code.ends_with("XX") || code.ends_with("xx") {
                        s.any_status |= code == "default";
                        if code.len() == 3 && code != "default" {
                            for n in 0..100 {
                                s.statuses.insert(format!("{}{n:02}", &code[..1]));
                            }
                        }
                    } else {
                        s.statuses.insert(code.clone());
                    }
                    if code.starts_with('2') {
                        let r = deref(doc, r);
                        for media in r
                            .get("content")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flat_map(|c| c.values())
                        {
                            if let Some(schema) = media.get("schema") {
                                schema_fields(doc, schema, "", 0, &mut s.fields);
                            }
                        }
                    }
                }
            }
            let security = op.get("security").or(global_security);
            for req in security.and_then(Value::as_array).into_iter().flatten() {
                let mut alt = BTreeSet::new();
                for name in req.as_object().into_iter().flat_map(|m| m.keys()) {
                    if let Some(def) = schemes.and_then(|s| s.get(name)) {
                        let (keys, param) = scheme_key(deref(doc, def));
                        alt.extend(keys);
                        s.auth_params.extend(param);
                    }
                }
                if alt.is_empty() {
                    alt.insert("none".to_owned());
                }
                s.security.push(alt);
            }
            out.push(s);
        }
    }
    out
}

/// Compares `doc` with the inventory.
pub fn diff(doc: &Value, endpoints: &[Endpoint]) -> Result<SpecDiff, ProfileError> {
    let ops = operations(doc);
    let mut report = SpecDiff {
        documented: ops.len(),
        observed: endpoints.len(),
        ..SpecDiff::default()
    };
    let mut matched = vec![false; ops.len()];
    for e in endpoints {
        let name = format!("{} {}", e.method, e.template);
        let Some(i) = ops
            .iter()
            .position(|o| o.method == e.method && shape(&o.path) == shape(&e.template))
        else {
            report.shadow.push(name);
            continue;
        };
        matched[i] = true;
        let op = &ops[i];
        let p = EndpointProfile::of(e)?;
        let mut drift = |kind: &str, detail: String| {
            report.drift.push(Drift {
                endpoint: name.clone(),
                kind: kind.into(),
                detail,
            });
        };
        for (loc, map) in [
            ("query", &p.query_params),
            ("header", &p.header_params),
            ("cookie", &p.cookie_params),
        ] {
            for k in map.keys() {
                let key = if loc == "header" {
                    k.to_ascii_lowercase()
                } else {
                    k.clone()
                };
                if !op.params.contains(&(loc.to_owned(), key.clone()))
                    && !op.auth_params.contains(&key.to_ascii_lowercase())
                {
                    drift("undocumented_parameter", format!("{loc} {k}"));
                }
            }
        }
        for code in p.statuses.keys() {
            if !op.any_status && !op.statuses.contains(code) {
                drift("undocumented_status", code.clone());
            }
        }
        for f in p.response_fields() {
            if !op.fields.contains(&f) {
                drift("undocumented_response_field", f);
            }
        }
        let allowed: BTreeSet<&str> = op
            .security
            .iter()
            .flat_map(|alt| alt.iter().map(String::as_str))
            .collect();
        let open = op.security.is_empty() || allowed.contains("none");
        for key in p.auth.keys() {
            if key == "none" {
                if !open {
                    drift(
                        "missing_auth",
                        "requests without credentials to an endpoint that requires them".into(),
                    );
                }
            } else if !allowed.contains(key.as_str()) {
                drift("undocumented_auth", key.clone());
            }
        }
    }
    for (op, seen) in ops.iter().zip(matched) {
        if !seen {
            report.zombie.push(format!("{} {}", op.method, op.path));
        }
    }
    report.drift.sort();
    Ok(report)
}
