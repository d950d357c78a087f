//! What discovery knows about one endpoint: statistics that hold no example values and merge by
//! addition (shards of one import, then import after import). Stored as the endpoint's `detail`
//! JSON in the case.

use super::schema::SchemaNode;
use super::values::value_type;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use tapline_record::Transaction;
use tapline_store::endpoints::Endpoint;

/// Bodies parsed per endpoint before sampling starts; then one in [`BODY_SAMPLE_EVERY`].
const BODY_SAMPLES_FULL: u64 = 256;
const BODY_SAMPLE_EVERY: u64 = 16;

/// Request headers every client sends: not parameters of an API.
const STANDARD_HEADERS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "dnt",
    "expect",
    "forwarded",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "keep-alive",
    "origin",
    "pragma",
    "proxy-connection",
    "range",
    "referer",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "upgrade-insecure-requests",
    "user-agent",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-requested-with",
];

/// Header names that carry API keys.
pub(crate) const API_KEY_HEADERS: &[&str] = &[
    "x-api-key",
    "api-key",
    "apikey",
    "x-apikey",
    "x-auth-token",
    "x-access-token",
    "x-api-token",
    "x-token",
];

/// Query parameters that carry API keys or tokens.
const API_KEY_QUERY: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "key",
    "access_token",
    "token",
    "auth",
];

/// Cookie names of sessions.
pub(crate) fn is_session_cookie(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("sess")
        || n == "sid"
        || n.ends_with("_sid")
        || n == "connect.sid"
        || n.contains("auth")
        || n.ends_with("token")
}

/// Statistics of one parameter: how often, which types, how long. No values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamStats {
    /// Requests that carried it.
    pub count: u64,
    /// `type` or `type:format` → count.
    pub types: BTreeMap<String, u64>,
    /// Shortest value, in bytes.
    pub min_len: u64,
    /// Longest value, in bytes.
    pub max_len: u64,
}

impl ParamStats {
    fn observe(&mut self, v: &str) {
        bump(&mut self.types, type_key(value_type(v)));
        let len = v.len() as u64;
        self.min_len = if self.count == 0 {
            len
        } else {
            self.min_len.min(len)
        };
        self.max_len = self.max_len.max(len);
        self.count += 1;
    }

    fn absorb(&mut self, o: &ParamStats) {
        if o.count == 0 {
            return;
        }
        self.min_len = if self.count == 0 {
            o.min_len
        } else {
            self.min_len.min(o.min_len)
        };
        self.max_len = self.max_len.max(o.max_len);
        self.count += o.count;
        add_counts(&mut self.types, &o.types);
    }

    /// The dominant OpenAPI type and format.
    pub fn openapi_type(&self) -> (String, Option<String>) {
        let total: u64 = self.types.values().sum();
        let all = |pred: &dyn Fn(&str) -> bool| {
            self.types
                .iter()
                .filter(|(k, _)| pred(k))
                .map(|(_, n)| n)
                .sum::<u64>()
                == total
        };
        if total == 0 {
            return ("string".into(), None);
        }
        if all(&|k| k == "integer") {
            return ("integer".into(), None);
        }
        if all(&|k| k == "integer" || k == "number") {
            return ("number".into(), None);
        }
        if all(&|k| k == "boolean") {
            return ("boolean".into(), None);
        }
        if self.types.len() == 1 {
            let k = self.types.keys().next().cloned().unwrap_or_default();
            if let Some((t, f)) = k.split_once(':') {
                return (t.to_owned(), Some(f.to_owned()));
            }
        }
        ("string".into(), None)
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += n;
    }
}

/// An authentication scheme seen on an endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthStats {
    /// Requests that used it.
    pub count: u64,
    /// JWT signing algorithms seen (`HS256`, `RS256`, `none`, …).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub jwt_algs: BTreeSet<String>,
    /// JWT claim names seen (`sub`, `exp`, `scope`, …), never their values.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub jwt_claims: BTreeSet<String>,
}

/// Latencies in a log-scale histogram: bucket `i` holds latencies below `2^(i/4)` µs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Counts per bucket.
    pub buckets: Vec<u64>,
}

impl Latency {
    const BUCKETS: usize = 4 * 40;

    fn bucket(ns: i64) -> usize {
        let us = (ns.max(0) as f64 / 1000.0).max(1.0);
        ((us.log2() * 4.0).ceil() as usize).min(Self::BUCKETS - 1)
    }

    fn observe(&mut self, ns: i64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; Self::BUCKETS];
        }
        self.buckets[Self::bucket(ns)] += 1;
    }

    fn absorb(&mut self, o: &Latency) {
        if o.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets = vec![0; Self::BUCKETS];
        }
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }

    /// The latency at quantile `q` (0..=1) in microseconds: the upper bound of its bucket
    /// (within 19%).
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            acc += n;
            if acc >= want {
                return Some(2f64.powf(i as f64 / 4.0));
            }
        }
        None
    }
}

/// The layout of [`EndpointProfile`] this build writes. Profiles stored before the field
/// existed read as version 1 (the same layout).
pub const PROFILE_VERSION: u32 = 1;

/// A profile's layout version; a profile without one is version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileVersion(pub u32);

impl Default for ProfileVersion {
    fn default() -> Self {
        ProfileVersion(PROFILE_VERSION)
    }
}

/// A stored profile that cannot be read. Never silently reset: a reset profile would report
/// every data class of the endpoint as newly exposed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The stored text is not a profile.
    #[error(
        "the stored profile of endpoint {id} ({endpoint}) is unreadable: {source}; the case file is damaged — re-import its captures into a new case"
    )]
    Unreadable {
        /// Endpoint row id.
        id: i64,
        /// `GET host/template`.
        endpoint: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The profile could not be serialised (a bug: it holds only maps, numbers and strings).
    #[error("the profile of endpoint {endpoint} could not be serialised: {source}")]
    Unwritable {
        /// `GET host/template`.
        endpoint: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Written by a newer Tapline.
    #[error(
        "the profile of endpoint {id} ({endpoint}) has layout version {found}, this Tapline reads up to {PROFILE_VERSION}: open the case with a newer Tapline"
    )]
    Newer {
        /// Endpoint row id.
        id: i64,
        /// `GET host/template`.
        endpoint: String,
        /// The version found.
        found: u32,
    },
}

/// One endpoint's profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointProfile {
    /// Layout version ([`PROFILE_VERSION`]).
    pub version: ProfileVersion,
    /// Response status → count.
    pub statuses: BTreeMap<String, u64>,
    /// Request media type → count.
    pub request_content_types: BTreeMap<String, u64>,
    /// Response media type → count.
    pub response_content_types: BTreeMap<String, u64>,
    /// Response latency.
    pub latency: Latency,
    /// Path parameters, by name.
    pub path_params: BTreeMap<String, ParamStats>,
    /// Query parameters, by name.
    pub query_params: BTreeMap<String, ParamStats>,
    /// Non-standard request headers, by lower-case name.
    pub header_params: BTreeMap<String, ParamStats>,
    /// Cookies, by name.
    pub cookie_params: BTreeMap<String, ParamStats>,
    /// Form fields (urlencoded and multipart), by name.
    pub form_fields: BTreeMap<String, ParamStats>,
    /// JSON request bodies.
    pub request_schema: Option<SchemaNode>,
    /// JSON response bodies, per status code.
    pub response_schemas: BTreeMap<String, SchemaNode>,
    /// Authentication schemes: `bearer_jwt`, `bearer`, `basic`, `api_key_header:<name>`,
    /// `api_key_query:<name>`, `session_cookie:<name>`, `none`.
    pub auth: BTreeMap<String, AuthStats>,
    /// Sensitive data seen: class → location → how often and when (medium and high
    /// confidence hits; one count per transaction).
    pub data_classes: BTreeMap<String, BTreeMap<String, DataSeen>>,
    /// Bodies parsed (the rest were sampled out).
    pub bodies_parsed: u64,
    /// Templates folded into this one (learned parameters), with when.
    pub merged_from: Vec<String>,
    /// Analysis caps this endpoint's traffic hit, with how often: `path_segments` (a path
    /// deeper than the template keeps), `parameters` (more parameters in one request than are
    /// read), `parameter_names` (more distinct names in one location than are kept).
    pub limits: BTreeMap<String, u64>,
}

/// Distinct parameter names kept per location (query, header, cookie, form, path).
pub const MAX_PARAMETER_NAMES: usize = 256;
/// Parameters read per location of one request.
pub const MAX_PARAMETERS_PER_REQUEST: usize = 256;

/// Where one data class showed up on an endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSeen {
    /// Transactions that carried it there.
    pub count: u64,
    /// First time, ns.
    pub first_seen_ns: i64,
    /// Last time, ns.
    pub last_seen_ns: i64,
    /// The earliest transaction id that carried it (evidence; the value is not stored).
    pub first_tx: i64,
    /// Of `count`, transactions whose request carried no credentials (no Authorization, no
    /// session cookie, no API key), and the earliest of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<Anonymous>,
}

/// Transactions without credentials that carried a data class somewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anonymous {
    /// How many.
    pub count: u64,
    /// The earliest (evidence).
    pub first_tx: i64,
}

impl DataSeen {
    /// Adds `o`'s counts and evidence to these.
    pub(crate) fn absorb(&mut self, o: &DataSeen) {
        self.count += o.count;
        if o.first_seen_ns < self.first_seen_ns
            || (o.first_seen_ns == self.first_seen_ns && o.first_tx < self.first_tx)
        {
            self.first_seen_ns = o.first_seen_ns;
            self.first_tx = o.first_tx;
        }
        self.last_seen_ns = self.last_seen_ns.max(o.last_seen_ns);
        self.anonymous = match (self.anonymous, o.anonymous) {
            (Some(a), Some(b)) => Some(Anonymous {
                count: a.count + b.count,
                first_tx: a.first_tx.min(b.first_tx),
            }),
            (a, b) => a.or(b),
        };
    }
}

/// Whether a request carried credentials: an Authorization header, a session cookie, an API
/// key header or query parameter (the schemes [`EndpointProfile::auth`] counts).
pub fn carries_credentials(tx: &Transaction) -> bool {
    let header = tx.request_headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("authorization")
            || API_KEY_HEADERS.iter().any(|k| name.eq_ignore_ascii_case(k))
            || (name.eq_ignore_ascii_case("cookie")
                && value
                    .split(';')
                    .any(|c| is_session_cookie(c.trim().split('=').next().unwrap_or(""))))
    });
    header
        || tx.query().is_some_and(|q| {
            q.split('&').any(|p| {
                let k = p.split('=').next().unwrap_or("");
                API_KEY_QUERY.iter().any(|a| k.eq_ignore_ascii_case(a))
            })
        })
}

impl EndpointProfile {
    /// The profile as stored (JSON text); `endpoint` names it in the error.
    pub fn to_json(&self, endpoint: &str) -> Result<String, ProfileError> {
        serde_json::to_string(self).map_err(|source| ProfileError::Unwritable {
            endpoint: endpoint.to_owned(),
            source,
        })
    }

    /// The profile stored with `endpoint` (an endpoint stored without one has an empty
    /// profile). An unreadable or newer profile is an error naming the endpoint.
    pub fn of(endpoint: &Endpoint) -> Result<EndpointProfile, ProfileError> {
        let Some(text) = &endpoint.detail else {
            return Ok(EndpointProfile::default());
        };
        let name = || format!("{} {}{}", endpoint.method, endpoint.host, endpoint.template);
        let profile: EndpointProfile =
            serde_json::from_str(text).map_err(|source| ProfileError::Unreadable {
                id: endpoint.id,
                endpoint: name(),
                source,
            })?;
        if profile.version.0 > PROFILE_VERSION {
            return Err(ProfileError::Newer {
                id: endpoint.id,
                endpoint: name(),
                found: profile.version.0,
            });
        }
        Ok(profile)
    }

    /// Records the sensitive data in one transaction (its id is the evidence).
    pub fn observe_sensitive(
        &mut self,
        id: i64,
        tx: &Transaction,
        scanner: &mut tapline_detect::sensitive::Scanner,
    ) {
        use tapline_detect::classify::Confidence;
        let mut seen: Vec<(&'static str, String)> = Vec::new();
        scanner.scan(tx, &mut |f| {
            if f.hit.confidence >= Confidence::Medium
                && !seen
                    .iter()
                    .any(|(c, l)| *c == f.hit.class.name() && l == f.location)
            {
                seen.push((f.hit.class.name(), f.location.to_owned()));
            }
        });
        let ts = tx.request_ts_nanos;
        // A login sends its credentials in the body: not anonymous either.
        let logs_in = seen
            .iter()
            .any(|(c, l)| *c == "password" && l.starts_with("request."));
        let anonymous =
            (!seen.is_empty() && !logs_in && !carries_credentials(tx)).then_some(Anonymous {
                count: 1,
                first_tx: id,
            });
        for (class, loc) in seen {
            let one = DataSeen {
                count: 1,
                first_seen_ns: ts,
                last_seen_ns: ts,
                first_tx: id,
                anonymous,
            };
            let locs = match self.data_classes.get_mut(class) {
                Some(l) => l,
                None => self.data_classes.entry(class.to_owned()).or_default(),
            };
            match locs.get_mut(&loc) {
                Some(m) => m.absorb(&one),
                None => {
                    locs.insert(loc, one);
                }
            }
        }
    }
}

/// `type` or `type:format`, as [`ParamStats::types`] keys it (no allocation per value).
fn type_key(t: (&'static str, Option<&'static str>)) -> &'static str {
    match t {
        (t, None) => t,
        (_, Some("uuid")) => "string:uuid",
        (_, Some("date-time")) => "string:date-time",
        (_, Some("date")) => "string:date",
        (_, Some("email")) => "string:email",
        (_, Some("ipv4")) => "string:ipv4",
        (_, Some("ipv6")) => "string:ipv6",
        (_, Some("uri")) => "string:uri",
        (_, Some(_)) => "string",
    }
}

/// The media type of a `Content-Type` value, lower-cased (borrowed when it already is).
fn media_type(ct: &str) -> Cow<'_, str> {
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(media.to_ascii_lowercase())
    } else {
        Cow::Borrowed(media)
    }
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

impl EndpointProfile {
    /// Adds one transaction; `count` is the endpoint's count before it (for body sampling), and
    /// `path_params` the names and values of the template's parameters.
    pub fn observe(&mut self, tx: &Transaction, count: u64, path_params: &[(&str, &str)]) {
        if let Some(s) = tx.status {
            bump(&mut self.statuses, status_key(s).as_str());
        }
        if let Some(r) = tx.response_ts_nanos {
            self.latency.observe(r - tx.request_ts_nanos);
        }
        for (name, v) in path_params {
            observe_param(&mut self.path_params, &mut self.limits, name, v);
        }
        let key_param = self.observe_query(tx);
        let authed = self.observe_request_headers(tx);
        if let Some(k) = &key_param {
            bump_auth(&mut self.auth, &format!("api_key_query:{k}"));
        }
        if !authed && key_param.is_none() {
            bump_auth(&mut self.auth, "none");
        }
        let sample = count < BODY_SAMPLES_FULL || count.is_multiple_of(BODY_SAMPLE_EVERY);
        if sample {
            self.observe_bodies(tx);
        }
        for (ct, map) in [
            (tx.request_content_type(), &mut self.request_content_types),
            (tx.response_content_type(), &mut self.response_content_types),
        ] {
            if let Some(ct) = ct {
                bump(map, &media_type(ct));
            }
        }
    }

    /// Query parameters; returns the API-key parameter's name when the query carries one.
    fn observe_query(&mut self, tx: &Transaction) -> Option<String> {
        let q = tx.query()?;
        let mut key_param: Option<String> = None;
        for (i, pair) in q.split('&').filter(|p| !p.is_empty()).enumerate() {
            if over_cap(i, &mut self.limits) {
                break;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            observe_param(
                &mut self.query_params,
                &mut self.limits,
                &k,
                &percent_decode(v),
            );
            if key_param.is_none() && API_KEY_QUERY.contains(&k.to_ascii_lowercase().as_str()) {
                key_param = Some(k);
            }
        }
        key_param
    }

    /// Cookies, non-standard headers and credentials; returns whether the request carried
    /// any.
    fn observe_request_headers(&mut self, tx: &Transaction) -> bool {
        let mut authed = false;
        for (name, value) in tx.request_headers.iter() {
            let lower_is = |s: &str| name.eq_ignore_ascii_case(s);
            if lower_is("authorization") {
                authed = true;
                self.observe_authorization(value);
            } else if lower_is("cookie") {
                for (i, c) in value.split(';').enumerate() {
                    if over_cap(i, &mut self.limits) {
                        break;
                    }
                    let (k, v) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
                    if k.is_empty() {
                        continue;
                    }
                    observe_param(&mut self.cookie_params, &mut self.limits, k, v);
                    if is_session_cookie(k) {
                        authed = true;
                        bump_auth(&mut self.auth, &format!("session_cookie:{k}"));
                    }
                }
            } else if !STANDARD_HEADERS.iter().any(|s| lower_is(s)) {
                let lower = name.to_ascii_lowercase();
                if API_KEY_HEADERS.contains(&lower.as_str()) {
                    authed = true;
                    bump_auth(&mut self.auth, &format!("api_key_header:{lower}"));
                }
                observe_param(&mut self.header_params, &mut self.limits, &lower, value);
            }
        }
        authed
    }

    /// Request bodies (JSON schema, form fields) and JSON response bodies, for a sampled
    /// transaction.
    fn observe_bodies(&mut self, tx: &Transaction) {
        if let Some(ct) = tx.request_content_type() {
            let media = media_type(ct);
            if !tx.request_body.data.is_empty() {
                if is_json(&media) {
                    self.bodies_parsed += 1;
                    self.request_schema
                        .get_or_insert_with(Default::default)
                        .observe_json(&tx.request_body.data);
                } else if media == "application/x-www-form-urlencoded" {
                    let body = String::from_utf8_lossy(&tx.request_body.data);
                    for (i, pair) in body.split('&').filter(|p| !p.is_empty()).enumerate() {
                        if over_cap(i, &mut self.limits) {
                            break;
                        }
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let (k, v) = (percent_decode(k), percent_decode(v));
                        observe_param(&mut self.form_fields, &mut self.limits, &k, &v);
                    }
                } else if media == "multipart/form-data" {
                    multipart_fields(
                        ct,
                        &tx.request_body.data,
                        &mut self.form_fields,
                        &mut self.limits,
                    );
                }
            }
        }
        if let Some(ct) = tx.response_content_type() {
            let media = media_type(ct);
            if let Some(s) = tx.status
                && is_json(&media)
                && !tx.response_body.data.is_empty()
            {
                self.bodies_parsed += 1;
                let key = status_key(s);
                let node = match self.response_schemas.get_mut(key.as_str()) {
                    Some(node) => node,
                    None => self
                        .response_schemas
                        .entry(key.as_str().to_owned())
                        .or_default(),
                };
                node.observe_json(&tx.response_body.data);
            }
        }
    }

    fn observe_authorization(&mut self, value: &str) {
        let (scheme, cred) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let cred = cred.trim();
            match jwt_parts(cred) {
                Some((alg, claims)) => {
                    let a = self.auth.entry("bearer_jwt".into()).or_default();
                    a.count += 1;
                    // Claim names settle quickly; stop decoding once many requests agree.
                    if a.count <= 64 || a.count.is_multiple_of(64) {
                        a.jwt_algs.insert(alg);
                        a.jwt_claims.extend(claims);
                    }
                }
                None => bump_auth(&mut self.auth, "bearer"),
            }
        } else {
            bump_auth(&mut self.auth, &scheme.to_ascii_lowercase());
        }
    }

    /// Adds another profile of the same endpoint.
    pub fn absorb(&mut self, o: &EndpointProfile) {
        add_counts(&mut self.statuses, &o.statuses);
        add_counts(&mut self.request_content_types, &o.request_content_types);
        add_counts(&mut self.response_content_types, &o.response_content_types);
        self.latency.absorb(&o.latency);
        for (mine, theirs) in [
            (&mut self.path_params, &o.path_params),
            (&mut self.query_params, &o.query_params),
            (&mut self.header_params, &o.header_params),
            (&mut self.cookie_params, &o.cookie_params),
            (&mut self.form_fields, &o.form_fields),
        ] {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_default().absorb(v);
            }
        }
        add_counts(&mut self.limits, &o.limits);
        if let Some(s) = &o.request_schema {
            self.request_schema
                .get_or_insert_with(Default::default)
                .absorb(s);
        }
        for (k, v) in &o.response_schemas {
            self.response_schemas
                .entry(k.clone())
                .or_default()
                .absorb(v);
        }
        for (k, v) in &o.auth {
            let a = self.auth.entry(k.clone()).or_default();
            a.count += v.count;
            a.jwt_algs.extend(v.jwt_algs.iter().cloned());
            a.jwt_claims.extend(v.jwt_claims.iter().cloned());
        }
        for (class, locs) in &o.data_classes {
            let mine = self.data_classes.entry(class.clone()).or_default();
            for (loc, seen) in locs {
                mine.entry(loc.clone())
                    .and_modify(|m| m.absorb(seen))
                    .or_insert_with(|| seen.clone());
            }
        }
        self.bodies_parsed += o.bodies_parsed;
        for m in &o.merged_from {
            if !self.merged_from.contains(m) {
                self.merged_from.push(m.clone());
            }
        }
    }

    /// Renames path parameters (when a template's parameter names change on a merge).
    pub fn rename_path_params(&mut self, names: &[(String, String)]) {
        for (from, to) in names {
            if from != to
                && let Some(p) = self.path_params.remove(from)
            {
                self.path_params.entry(to.clone()).or_default().absorb(&p);
            }
        }
    }

    /// Every response field path seen with a 2xx status (`items[].name`).
    pub fn response_fields(&self) -> BTreeSet<String> {
        self.response_schemas
            .iter()
            .filter(|(s, _)| s.starts_with('2'))
            .flat_map(|(_, n)| n.field_paths())
            .collect()
    }
}

/// A status code as a map key, formatted without allocating.
#[derive(Clone, Copy)]
struct StatusKey {
    digits: [u8; 5],
    len: usize,
}

impl StatusKey {
    fn as_str(&self) -> &str {
        // Only ASCII digits are written.
        std::str::from_utf8(&self.digits[..self.len]).unwrap_or("0")
    }
}

fn status_key(s: u16) -> StatusKey {
    let mut digits = [0u8; 5];
    let mut n = s;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[..len].reverse();
    StatusKey { digits, len }
}

/// Counts `k`, allocating its key only the first time.
fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    match m.get_mut(k) {
        Some(n) => *n += 1,
        None => {
            m.insert(k.to_owned(), 1);
        }
    }
}

fn bump_auth(m: &mut BTreeMap<String, AuthStats>, k: &str) {
    if let Some(a) = m.get_mut(k) {
        a.count += 1;
    } else {
        m.insert(
            k.to_owned(),
            AuthStats {
                count: 1,
                ..Default::default()
            },
        );
    }
}

/// Adds value `v` of parameter `k`, unless the location already keeps
/// [`MAX_PARAMETER_NAMES`] other names (then the cap is counted instead).
fn observe_param(
    m: &mut BTreeMap<String, ParamStats>,
    limits: &mut BTreeMap<String, u64>,
    k: &str,
    v: &str,
) {
    if let Some(p) = m.get_mut(k) {
        p.observe(v);
    } else if m.len() < MAX_PARAMETER_NAMES {
        m.entry(k.to_owned()).or_default().observe(v);
    } else {
        bump(limits, "parameter_names");
    }
}

/// True at the item after the first [`MAX_PARAMETERS_PER_REQUEST`] of one location (stop
/// there); the cap is counted in `limits`.
fn over_cap(index: usize, limits: &mut BTreeMap<String, u64>) -> bool {
    let over = index >= MAX_PARAMETERS_PER_REQUEST;
    if over {
        bump(limits, "parameters");
    }
    over
}

/// `%xx` and `+` decoded; invalid escapes kept as they are.
pub fn percent_decode(s: &str) -> String {
    let mut out = String::new();
    tapline_detect::sensitive::percent_decode_into(s, true, &mut out);
    out
}

/// A JWT's `alg` and claim names, when `token` is one.
pub fn jwt_parts(token: &str) -> Option<(String, Vec<String>)> {
    let jwt = tapline_detect::jwt::Jwt::parse(token)?;
    let alg = jwt.alg()?.to_owned();
    Some((alg, jwt.claim_names().map(str::to_owned).collect()))
}

/// Field names of a multipart body (`Content-Disposition: form-data; name="…"`).
fn multipart_fields(
    ct: &str,
    body: &[u8],
    out: &mut BTreeMap<String, ParamStats>,
    limits: &mut BTreeMap<String, u64>,
) {
    let Some(boundary) = ct.split(';').find_map(|p| {
        p.trim()
            .strip_prefix("boundary=")
            .map(|b| b.trim_matches('"').to_owned())
    }) else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    for (i, part) in text.split(&format!("--{boundary}")).enumerate() {
        if over_cap(i, limits) {
            break;
        }
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head.lines().find_map(|l| {
            let l = l.trim();
            l.to_ascii_lowercase()
                .starts_with("content-disposition:")
                .then(|| {
                    l.split(';').find_map(|p| {
                        p.trim()
                            .strip_prefix("name=")
                            .map(|n| n.trim_matches('"').to_owned())
                    })
                })
                .flatten()
        }) else {
            continue;
        };
        let file = head.contains("filename=");
        let v = value.strip_suffix("\r\n").unwrap_or(value);
        observe_param(out, limits, &name, if file { "" } else { v });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::{Body, Headers};

    #[test]
    fn type_keys_name_every_format_and_status_keys_are_decimal() {
        for v in [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "2024-05-01T10:00:00Z",
            "2024-05-01",
            "a@b.co",
            "10.0.0.1",
            "::1",
            "https://x.test/",
            "hello",
            "42",
            "-4.5",
            "true",
        ] {
            let (t, f) = value_type(v);
            let expected = f.map_or_else(|| t.to_owned(), |f| format!("{t}:{f}"));
            assert_eq!(type_key((t, f)), expected, "{v}");
        }
        for s in [0, 7, 10, 200, 404, 999, 65535] {
            assert_eq!(status_key(s).as_str(), s.to_string());
        }
        assert_eq!(
            media_type("Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert!(matches!(
            media_type("text/html"),
            Cow::Borrowed("text/html")
        ));
    }

    fn tx(uri: &str, headers: &[(&str, &str)], body: &str) -> Transaction {
        Transaction {
            method: "POST".into(),
            uri: uri.into(),
            status: Some(200),
            request_ts_nanos: 0,
            response_ts_nanos: Some(2_000_000),
            request_headers: headers.iter().copied().collect::<Headers>(),
            response_headers: [("Content-Type", "application/json")].into_iter().collect(),
            request_body: Body {
                data: body.as_bytes().to_vec(),
                len: body.len() as u64,
                truncated: false,
            },
            response_body: Body {
                data: br#"{"id": "0000002a-1b2c-4d5e-8f90-000000000126"}"#.to_vec(),
                len: 10,
                truncated: false,
            },
            ..Transaction::default()
        }
    }

    #[test]
    fn parameters_auth_and_schemas() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwic2NvcGUiOiJ4In0.c2ln";
        let bearer = format!("Bearer {jwt}");
        let mut p = EndpointProfile::default();
        p.observe(
            &tx(
                "/a?page=2&q=a%20b",
                &[
                    ("Authorization", &bearer),
                    ("Content-Type", "application/json"),
                    ("X-Tenant", "acme"),
                    ("Cookie", "theme=dark"),
                ],
                r#"{"name": "x"}"#,
            ),
            0,
            &[("userId", "7")],
        );
        p.observe(
            &tx(
                "/a?api_key=k",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                "user=bob&pass=x%21",
            ),
            1,
            &[("userId", "8")],
        );
        assert_eq!(p.statuses["200"], 2);
        assert_eq!(p.query_params["page"].openapi_type().0, "integer");
        assert_eq!(p.path_params["userId"].count, 2);
        assert!(p.header_params.contains_key("x-tenant"));
        assert!(p.cookie_params.contains_key("theme"));
        assert!(p.form_fields.contains_key("pass"));
        let jwt_auth = &p.auth["bearer_jwt"];
        assert_eq!(jwt_auth.jwt_algs.iter().next().unwrap(), "HS256");
        assert!(jwt_auth.jwt_claims.contains("scope"));
        assert_eq!(p.auth["api_key_query:api_key"].count, 1);
        assert!(!p.auth.contains_key("none"));
        let schema = p.request_schema.as_ref().unwrap().to_json_schema();
        assert_eq!(schema["required"], serde_json::json!(["name"]));
        assert_eq!(
            p.response_schemas["200"].to_json_schema()["properties"]["id"]["format"],
            "uuid"
        );
        let l = p.latency.quantile_us(0.5).unwrap();
        assert!((2000.0..2400.0).contains(&l), "{l}");
        let mut q = p.clone();
        q.absorb(&p);
        assert_eq!(q.statuses["200"], 4);
        assert_eq!(q.auth["bearer_jwt"].count, 2);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Bodies, cookies, queries and multipart parts come from the wire: any bytes at all.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"{}[]\":,%+=&;-\r\n\"0123456789abcdefXYZ eyJ.@/\\\xff\x00";
        for _ in 0..3000 {
            let len = (next() % 96) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut node = SchemaNode::default();
            node.observe_json(&bytes);
            let _ = node.to_json_schema();
            let _ = percent_decode(&text);
            let _ = jwt_parts(&text);
            let mut fields = BTreeMap::new();
            multipart_fields(
                "multipart/form-data; boundary=-",
                &bytes,
                &mut fields,
                &mut BTreeMap::new(),
            );
            let mut p = EndpointProfile::default();
            let t = tx(
                &format!("/x?{text}"),
                &[
                    ("Cookie", &text),
                    ("Authorization", &format!("Bearer {text}")),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                &text,
            );
            p.observe(&t, 0, &[("id", &text)]);
        }
    }

    #[test]
    fn decoding_helpers() {
        assert_eq!(percent_decode("a%20b+c%zz%"), "a b c%zz%");
        assert!(jwt_parts("not.a.jwt").is_none());
        let mut fields = BTreeMap::new();
        multipart_fields(
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\ndata\r\n--XyZ--\r\n",
            &mut fields,
            &mut BTreeMap::new(),
        );
        assert_eq!(fields.keys().collect::<Vec<_>>(), vec!["file", "title"]);
    }
}
