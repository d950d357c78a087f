//! API discovery: requests grouped per host, method and path template, each template with a
//! profile ([`EndpointProfile`]) of its parameters, bodies, auth and latency.
//!
//! Templating happens in two steps:
//! 1. per request, path segments that are identifiers on their own (integers, UUIDs, ObjectIds,
//!    hex digests, dates, e-mail addresses, tokens, codes like `SKU-00042`) become parameters
//!    named after the resource before them (`/users/123` → `/users/{userId}`);
//! 2. when an import ends, positions that hold many different words under the same parent
//!    (`/articles/tent-care-guide`, `/articles/lamp-repair-guide`, …) are learned as parameters,
//!    counting every method and every deeper path under that parent. Words of the API itself
//!    stay literal: segments under a version (`/v1/products`), action words (`/users/me`,
//!    `/products/featured`), file names (`/reports/summary.pdf`), and anything not repeated
//!    with enough different values.
//!
//! Templates are stable across imports: traffic that fits a known endpoint is attributed to it;
//! a learned parameter that folds known endpoints into one records the merge
//! (`EndpointProfile::merged_from`, and the folded rows are retired).

use super::body_values::BodyValues;
use super::profile::{EndpointProfile, ProfileError};
use super::values::{IdKind, has_file_extension, identifier_kind, is_version};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tapline_record::Transaction;
use tapline_store::endpoints::{
    Endpoint, EndpointKey, EndpointRecord, FindingKind, NewFinding, Severity,
};
use tapline_store::template::{self, Segment};

/// Distinct words at one position before it becomes a parameter.
const LEARN_MIN_DISTINCT: usize = 8;
/// … or fewer, when most of them look like slugs or names with digits.
const LEARN_MIN_DISTINCT_SLUGS: usize = 5;

/// Words that name actions or singletons beside identifiers, never identifiers.
const ACTION_WORDS: &[&str] = &[
    "me", "self", "current", "mine", "new", "search", "featured", "latest", "popular", "recent",
    "top", "trending", "all", "count", "stats", "summary", "export", "import", "bulk", "batch",
    "settings", "profile", "config", "status", "health", "login", "logout", "register", "refresh",
    "default", "public", "private", "upload", "download", "history", "preview", "feed",
];

/// Which endpoint a request addresses: host, method and path template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndpointRef<'a> {
    /// `Host` (else the server address).
    pub host: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Path template (`/users/{userId}`).
    pub template: &'a str,
}

impl EndpointRef<'_> {
    /// The owned key findings carry.
    pub fn to_key(self) -> EndpointKey {
        EndpointKey {
            host: self.host.to_owned(),
            method: self.method.to_owned(),
            template: self.template.to_owned(),
        }
    }
}

/// What discovery resolved one request to, handed to the engines that run after it.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    /// The endpoint.
    pub endpoint: EndpointRef<'a>,
    /// The endpoint as one string (`host \0 method \0 template`), for interning.
    pub key: &'a str,
    /// The value of the last path parameter (`/users/{userId}` → the user id): the object
    /// the request addressed.
    pub object: Option<&'a str>,
}

/// One template's observations.
#[derive(Clone, Debug)]
struct Observed {
    host: String,
    method: String,
    template: String,
    first_seen_ns: i64,
    last_seen_ns: i64,
    count: u64,
    first_id: i64,
    profile: EndpointProfile,
    /// Bodies whose values were noted for cross-references (at most [`VALUE_BODIES`]).
    bodies_noted: u32,
}

/// Bodies per endpoint whose values are noted: enough to learn which values travel, cheap on
/// a large import.
const VALUE_BODIES: u32 = 64;

/// Accumulates endpoint observations; one per import shard, merged with [`Discovery::absorb`].
#[derive(Default)]
pub struct Discovery {
    /// Keyed by `host \0 method \0 template`, so a lookup needs no allocation; foldhash, as
    /// the key is hashed for every transaction (SipHash showed in profiles).
    seen: foldhash::HashMap<String, Observed>,
    key: String,
    template: String,
    params: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    scanner: tapline_detect::sensitive::Scanner,
    scan_sensitive: bool,
    /// Values that travelled in bodies, for cross-references.
    values: BodyValues,
}

/// `users` → `user`, `categories` → `category`, `addresses` → `address`.
fn singular(p: &str) -> String {
    if let Some(s) = p.strip_suffix("ies") {
        format!("{s}y")
    } else if let Some(s) = p.strip_suffix("sses") {
        format!("{s}ss")
    } else if let Some(s) = p.strip_suffix("xes") {
        format!("{s}x")
    } else if let Some(s) = p.strip_suffix('s').filter(|s| !s.ends_with('s')) {
        s.to_owned()
    } else {
        p.to_owned()
    }
}

fn camel(word: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in word.chars() {
        if c == '-' || c == '_' || c == '.' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn is_word(s: &str) -> bool {
    s.len() > 1
        && s.bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-')
}

/// A parameter's name from the resource before it and what it holds.
fn param_name(prev: Option<&str>, suffix: &str) -> String {
    match prev {
        Some(p) if is_word(p) && !is_version(p) => format!("{}{suffix}", camel(&singular(p))),
        _ => {
            let mut s = suffix.to_owned();
            if let Some(f) = s.get_mut(0..1) {
                f.make_ascii_lowercase();
            }
            s
        }
    }
}

fn static_suffix(kind: IdKind) -> &'static str {
    match kind {
        IdKind::Date => "Date",
        IdKind::Email => "Email",
        IdKind::Token => "Token",
        _ => "Id",
    }
}

/// Path segments a template keeps; deeper paths end in `{rest}` (and the endpoint's profile
/// counts the cap), so one request's cost in discovery is bounded however deep its path.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// The template of a concrete path by the per-request rules (step 1).
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut params = Vec::new();
    template_into(path, &mut out, &mut params);
    out
}

/// Writes `path`'s template into `out` and the spans of (parameter name in `out`, value in
/// `path`) into `params`; returns whether the path was deeper than [`MAX_PATH_SEGMENTS`].
fn template_into(
    path: &str,
    out: &mut String,
    params: &mut Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
) -> bool {
    out.clear();
    params.clear();
    let trimmed = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    let mut prev: Option<&str> = None;
    let mut offset = 0;
    for (depth, seg) in trimmed.split('/').skip(1).enumerate() {
        if depth + 1 == MAX_PATH_SEGMENTS && offset + 1 + seg.len() < trimmed.len() {
            out.push_str("/{rest}");
            return true;
        }
        offset += 1;
        out.push('/');
        if let Some(kind) = identifier_kind(seg) {
            out.push('{');
            let start = out.len();
            let name = param_name(prev, static_suffix(kind));
            out.push_str(&name);
            params.push((start..out.len(), offset..offset + seg.len()));
            out.push('}');
        } else {
            out.push_str(seg);
        }
        offset += seg.len();
        prev = Some(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    false
}

impl Discovery {
    /// A discovery engine; `scan_sensitive` also records the data classes of each endpoint.
    pub fn new(scan_sensitive: bool) -> Discovery {
        Discovery {
            scan_sensitive,
            ..Discovery::default()
        }
    }

    /// Sees one stored transaction with its case id; returns the endpoint it resolved the
    /// request to and the object its path addressed (`None`: a response without a request).
    pub fn observe<'a>(&'a mut self, id: i64, tx: &'a Transaction) -> Option<Resolved<'a>> {
        if tx.method.is_empty() {
            return None; // a response without a request: no endpoint to attribute it to
        }
        let server;
        let host = match (&tx.host, tx.server) {
            (Some(h), _) => h.as_str(),
            (None, Some(s)) => {
                server = s.to_string();
                server.as_str()
            }
            (None, None) => "",
        };
        let path = tx.path();
        let deep = template_into(path, &mut self.template, &mut self.params);
        self.key.clear();
        for part in [host, "\0", &tx.method, "\0", &self.template] {
            self.key.push_str(part);
        }
        let ts = tx.request_ts_nanos;
        if !self.seen.contains_key(self.key.as_str()) {
            self.seen.insert(
                self.key.clone(),
                Observed {
                    host: host.to_owned(),
                    method: tx.method.to_string(),
                    template: self.template.clone(),
                    first_seen_ns: ts,
                    last_seen_ns: ts,
                    count: 0,
                    first_id: id,
                    profile: EndpointProfile::default(),
                    bodies_noted: 0,
                },
            );
        }
        let e = self.seen.get_mut(self.key.as_str())?;
        let mut params: [(&str, &str); 8] = [("", ""); 8];
        let n = self.params.len().min(params.len());
        for (slot, (name, value)) in params.iter_mut().zip(&self.params) {
            *slot = (&self.template[name.clone()], &path[value.clone()]);
        }
        e.profile.observe(tx, e.count, &params[..n]);
        if deep {
            *e.profile.limits.entry("path_segments".into()).or_default() += 1;
        }
        if self.scan_sensitive {
            e.profile.observe_sensitive(id, tx, &mut self.scanner);
        }
        if e.bodies_noted < VALUE_BODIES {
            e.bodies_noted += 1;
            self.values.note(&tx.request_body.data);
            if matches!(tx.status, Some(200..=299)) {
                self.values.note(&tx.response_body.data);
            }
        }
        e.count += 1;
        e.first_seen_ns = e.first_seen_ns.min(ts);
        e.last_seen_ns = e.last_seen_ns.max(ts);
        e.first_id = e.first_id.min(id);
        let object = self
            .params
            .last()
            .and_then(|(_, value)| path.get(value.clone()));
        Some(Resolved {
            endpoint: EndpointRef {
                host: &e.host,
                method: &e.method,
                template: &e.template,
            },
            key: &self.key,
            object,
        })
    }

    /// Folds in another shard's observations.
    pub fn absorb(&mut self, other: Discovery) {
        self.values.absorb(other.values);
        for (k, o) in other.seen {
            match self.seen.get_mut(&k) {
                Some(mine) => {
                    mine.profile.absorb(&o.profile);
                    mine.count += o.count;
                    mine.first_seen_ns = mine.first_seen_ns.min(o.first_seen_ns);
                    mine.last_seen_ns = mine.last_seen_ns.max(o.last_seen_ns);
                    mine.first_id = mine.first_id.min(o.first_id);
                    mine.bodies_noted = mine.bodies_noted.saturating_add(o.bodies_noted);
                }
                None => {
                    self.seen.insert(k, o);
                }
            }
        }
    }

    /// Consolidates this import's observations with the endpoints the case already holds:
    /// what to write, what to retire, and the inventory changes worth a finding.
    pub fn finish(self, existing: &[Endpoint]) -> Result<DiscoveryOutput, ProfileError> {
        self.finish_with(existing, Baseline::CaseSoFar)
    }

    /// [`Discovery::finish`] with changes judged against `baseline`.
    pub fn finish_with(
        self,
        existing: &[Endpoint],
        baseline: Baseline,
    ) -> Result<DiscoveryOutput, ProfileError> {
        consolidate(
            existing,
            self.seen.into_values().collect(),
            &self.values,
            baseline,
        )
    }
}

/// What changes (new endpoints, new response fields, data newly exposed) are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// Whatever the case held before: an import is compared with the case as it found it.
    CaseSoFar,
    /// A host's first this-many ns of record time are its baseline (live analysis: the first
    /// flushes of a stream are learning, not change, however the stream was cut).
    Learning(i64),
}

/// What discovery hands the store when an import completes.
#[derive(Debug, Default)]
pub struct DiscoveryOutput {
    /// Endpoints to insert (no id) or update (with id).
    pub endpoints: Vec<EndpointRecord>,
    /// Endpoint ids folded into others.
    pub retired: Vec<i64>,
    /// New endpoints on known hosts, newly exposed response fields.
    pub findings: Vec<NewFinding>,
    /// Exposures the case reported before that these records go on with: what they add
    /// (count, last seen), for the case's finding — never a finding of their own.
    pub updates: Vec<NewFinding>,
}

/// The inventory after an import: the case's endpoints as discovery leaves them. Engines that
/// saw requests before discovery settled its templates move onto it ([`Inventory::resolve`]).
pub struct Inventory {
    by_route: HashMap<(String, String), Vec<String>>,
}

impl Inventory {
    /// The case's endpoints (`existing`) with this import's output applied.
    pub fn new(existing: &[Endpoint], out: &DiscoveryOutput) -> Inventory {
        let replaced: HashSet<i64> = out
            .endpoints
            .iter()
            .filter_map(|e| e.id)
            .chain(out.retired.iter().copied())
            .collect();
        let mut by_route: HashMap<(String, String), Vec<String>> = HashMap::new();
        let kept = existing
            .iter()
            .filter(|e| !replaced.contains(&e.id))
            .map(|e| (&e.host, &e.method, &e.template));
        let written = out
            .endpoints
            .iter()
            .map(|e| (&e.host, &e.method, &e.template));
        for (host, method, template) in kept.chain(written) {
            by_route
                .entry((host.clone(), method.clone()))
                .or_default()
                .push(template.clone());
        }
        Inventory { by_route }
    }

    /// The endpoint an engine's key (`host \0 method \0 template`, as seen while reading)
    /// belongs to now — the most specific template covering it — and, when that template made
    /// a literal of the old one its last parameter, the literal (the object it addresses).
    /// `None` when the key stands as it is.
    pub fn resolve(&self, key: &str) -> Option<(String, Option<String>)> {
        let mut parts = key.split('\0');
        let (host, method, old) = (parts.next()?, parts.next()?, parts.next()?);
        let templates = self.by_route.get(&(host.to_owned(), method.to_owned()))?;
        let literals = |t: &str| {
            template::segments(t)
                .filter(|s| matches!(s, Segment::Lit(_)))
                .count()
        };
        let best = templates
            .iter()
            .filter(|t| template::covers(t, old))
            .max_by_key(|t| literals(t))?;
        if best == old {
            return None;
        }
        let new: Vec<Segment<'_>> = template::segments(best).collect();
        let object = new
            .iter()
            .rposition(|s| matches!(s, Segment::Param(_)))
            .and_then(|i| template::segments(old).nth(i))
            .and_then(|s| match s {
                Segment::Lit(v) => Some(v.to_owned()),
                Segment::Param(_) => None,
            });
        Some((format!("{host}\0{method}\0{best}"), object))
    }
}

/// Data classes an endpoint carries now that the case had not seen on it: one finding per
/// class, secrets high, personal data medium.
fn newly_exposed(
    before: &EndpointProfile,
    now: &EndpointProfile,
    key: &EndpointKey,
) -> Vec<NewFinding> {
    use tapline_detect::classify::{ClassKind, DataClass};
    let mut out = Vec::new();
    for (class, locs) in &now.data_classes {
        if before.data_classes.contains_key(class) {
            continue;
        }
        let secret = DataClass::from_name(class).is_some_and(|c| c.kind() == ClassKind::Secret);
        let first = locs.values().min_by_key(|s| (s.first_seen_ns, s.first_tx));
        let last = locs
            .values()
            .map(|s| s.last_seen_ns)
            .max()
            .unwrap_or_default();
        let count: u64 = locs.values().map(|s| s.count).sum();
        let places: Vec<&str> = locs.keys().map(String::as_str).collect();
        out.push(NewFinding {
            kind: FindingKind::SensitiveDataExposed,
            severity: if secret {
                Severity::High
            } else {
                Severity::Medium
            },
            confidence: 0.9,
            endpoint: Some(key.clone()),
            first_seen_ns: first.map_or(0, |s| s.first_seen_ns),
            last_seen_ns: last,
            count,
            evidence: first.map(|s| s.first_tx).into_iter().collect(),
            title: format!(
                "{class} newly seen on {key} ({})",
                places
                    .iter()
                    .take(4)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            detail: Some(serde_json::json!({ "class": class, "locations": places }).to_string()),
            actor: Default::default(),
        });
    }
    out
}

/// Secrets in an endpoint's responses (other than the tokens a login hands out), or personal
/// data in responses to requests that carried no credentials: once per endpoint and class,
/// and once more when secrets first reach anonymous clients.
///
/// An exposure reported before that goes on is not reported again: what these records added
/// to its count goes to `updates`, for the case's finding.
fn excessively_exposed(
    before: Option<&EndpointProfile>,
    now: &EndpointProfile,
    key: &EndpointKey,
    updates: &mut Vec<NewFinding>,
) -> Vec<NewFinding> {
    use tapline_detect::classify::{ClassKind, DataClass};
    let mut out = Vec::new();
    for (name, locs) in &now.data_classes {
        let Some(class) = DataClass::from_name(name) else {
            continue;
        };
        let issued = matches!(class, DataClass::Jwt | DataClass::SessionCookie);
        let secret = class.kind() == ClassKind::Secret && !issued;
        let (shown, anonymous) = response_exposure(locs);
        let Some(first) = shown else { continue };
        let (severity, to_whom) = match (secret, anonymous) {
            (true, Some(_)) => (Severity::Critical, " to clients that sent no credentials"),
            (true, None) => (Severity::High, ""),
            (false, Some(_)) if class.kind() == ClassKind::Pii => {
                (Severity::High, " to clients that sent no credentials")
            }
            _ => continue,
        };
        let had = before
            .and_then(|b| b.data_classes.get(name))
            .map(response_exposure);
        let places: Vec<&str> = locs
            .keys()
            .filter(|l| l.starts_with("response."))
            .map(String::as_str)
            .collect();
        let (count, evidence) = match anonymous {
            Some(a) => (a.count, a.first_tx),
            None => (first.count, first.first_tx),
        };
        let reported = match had {
            Some((Some(was), was_anonymous)) if anonymous.is_none() || was_anonymous.is_some() => {
                Some(was_anonymous.map_or(was.count, |a| a.count))
            }
            _ => None,
        };
        let sink = match reported {
            Some(was) if count > was => &mut *updates,
            Some(_) => continue,
            None => &mut out,
        };
        sink.push(NewFinding {
            kind: FindingKind::ExcessiveDataExposure,
            severity,
            confidence: 0.8,
            endpoint: Some(key.clone()),
            first_seen_ns: first.first_seen_ns,
            last_seen_ns: first.last_seen_ns,
            count: count - reported.unwrap_or(0),
            evidence: vec![evidence],
            title: format!("{name} in responses of {key}{to_whom}"),
            detail: Some(
                serde_json::json!({
                    "class": name,
                    "locations": places,
                    "anonymous": anonymous.map(|a| a.count),
                })
                .to_string(),
            ),
            actor: Default::default(),
        });
    }
    out
}

/// Over a class's response locations: all of it summed (earliest evidence first), and the
/// part that reached clients without credentials.
fn response_exposure(
    locs: &BTreeMap<String, crate::profile::DataSeen>,
) -> (
    Option<crate::profile::DataSeen>,
    Option<crate::profile::Anonymous>,
) {
    let mut all: Option<crate::profile::DataSeen> = None;
    for (_, seen) in locs.iter().filter(|(l, _)| l.starts_with("response.")) {
        match &mut all {
            Some(a) => a.absorb(seen),
            None => all = Some(seen.clone()),
        }
    }
    let anonymous = all.as_ref().and_then(|a| a.anonymous);
    (all, anonymous)
}

/// A template split into segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Seg {
    Lit(String),
    Param(String),
}

fn segments(template: &str) -> Vec<Seg> {
    template::segments(template)
        .map(|s| match s {
            Segment::Param(name) => Seg::Param(name.to_owned()),
            Segment::Lit(s) => Seg::Lit(s.to_owned()),
        })
        .collect()
}

impl Seg {
    fn as_segment(&self) -> Segment<'_> {
        match self {
            Seg::Lit(s) => Segment::Lit(s),
            Seg::Param(p) => Segment::Param(p),
        }
    }
}

fn render(segs: &[Seg]) -> String {
    if segs.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    for s in segs {
        out.push('/');
        match s {
            Seg::Lit(l) => out.push_str(l),
            Seg::Param(p) => {
                out.push('{');
                out.push_str(p);
                out.push('}');
            }
        }
    }
    out
}

/// Does `known` (a template) cover `seen` (another template)? Parameters match anything.
/// `tapline_store::template`'s rule, on segments already split.
fn covers(known: &[Seg], seen: &[Seg]) -> bool {
    known.len() == seen.len()
        && known
            .iter()
            .zip(seen)
            .all(|(k, s)| k.as_segment().covers(s.as_segment()))
}

/// An endpoint being consolidated.
struct Entry {
    id: Option<i64>,
    host: String,
    method: String,
    segs: Vec<Seg>,
    original: String,
    first_seen_ns: i64,
    last_seen_ns: i64,
    count: u64,
    first_id: Option<i64>,
    profile: EndpointProfile,
    /// The profile as the case held it (for change findings).
    before: Option<EndpointProfile>,
    touched: bool,
}

impl Entry {
    /// An endpoint the case already holds, with its profile as stored.
    fn known(e: &Endpoint) -> Result<Self, ProfileError> {
        let profile = EndpointProfile::of(e)?;
        Ok(Entry {
            id: Some(e.id),
            host: e.host.clone(),
            method: e.method.clone(),
            segs: segments(&e.template),
            original: e.template.clone(),
            first_seen_ns: e.first_seen_ns,
            last_seen_ns: e.last_seen_ns,
            count: e.count,
            first_id: None,
            before: Some(profile.clone()),
            profile,
            touched: false,
        })
    }

    /// A candidate endpoint first seen in this traffic.
    fn observed(o: Observed, segs: Vec<Seg>) -> Self {
        Entry {
            id: None,
            host: o.host,
            method: o.method,
            original: o.template,
            segs,
            first_seen_ns: o.first_seen_ns,
            last_seen_ns: o.last_seen_ns,
            count: o.count,
            first_id: Some(o.first_id),
            profile: o.profile,
            before: None,
            touched: true,
        }
    }

    /// Takes in traffic that fits this endpoint (its path parameters renamed to ours).
    fn absorb(&mut self, o: Observed, segs: &[Seg]) {
        let mut profile = o.profile;
        profile.rename_path_params(&param_renames(segs, &self.segs));
        self.profile.absorb(&profile);
        self.count += o.count;
        self.first_seen_ns = self.first_seen_ns.min(o.first_seen_ns);
        self.last_seen_ns = self.last_seen_ns.max(o.last_seen_ns);
        self.first_id = Some(self.first_id.map_or(o.first_id, |f| f.min(o.first_id)));
        self.touched = true;
    }

    /// Findings about what changed: a new endpoint on a known host, data newly exposed, new
    /// response fields on an endpoint that answered successfully before.
    /// Before `learning_ends` (record time, ns) the host is still being learned: only
    /// exposure itself is reported, not change.
    fn changes(
        &self,
        key: &EndpointKey,
        known_hosts: &BTreeSet<&str>,
        learning_ends: Option<i64>,
        updates: &mut Vec<NewFinding>,
    ) -> Vec<NewFinding> {
        let learning = |ts: i64| learning_ends.is_some_and(|end| ts < end);
        let template = &key.template;
        let finding = |kind, severity, confidence, count, title, detail| NewFinding {
            kind,
            severity,
            confidence,
            endpoint: Some(key.clone()),
            first_seen_ns: self.first_seen_ns,
            last_seen_ns: self.last_seen_ns,
            count,
            evidence: self.first_id.into_iter().collect(),
            title,
            detail,
            actor: Default::default(),
        };
        match (&self.before, self.id) {
            (None, None) => {
                let mut out = excessively_exposed(None, &self.profile, key, updates);
                if known_hosts.contains(self.host.as_str()) && !learning(self.first_seen_ns) {
                    out.push(finding(
                        FindingKind::NewEndpoint,
                        Severity::Low,
                        1.0,
                        self.count,
                        format!("New endpoint {} {}{}", self.method, self.host, template),
                        None,
                    ));
                }
                out
            }
            (Some(before), Some(_)) if learning(self.last_seen_ns) => {
                excessively_exposed(Some(before), &self.profile, key, updates)
            }
            (Some(before), Some(_)) => {
                let mut out = newly_exposed(before, &self.profile, key);
                out.extend(excessively_exposed(
                    Some(before),
                    &self.profile,
                    key,
                    updates,
                ));
                let old = before.response_fields();
                let new: Vec<String> = self
                    .profile
                    .response_fields()
                    .into_iter()
                    .filter(|f| !old.contains(f))
                    .collect();
                if !new.is_empty() && before.statuses.keys().any(|s| s.starts_with('2')) {
                    let shown = new.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
                    out.push(finding(
                        FindingKind::NewResponseField,
                        Severity::Low,
                        0.9,
                        new.len() as u64,
                        format!(
                            "{} {}{} now returns {shown}",
                            self.method, self.host, template
                        ),
                        Some(serde_json::json!({ "fields": new }).to_string()),
                    ));
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

fn consolidate(
    existing: &[Endpoint],
    observed: Vec<Observed>,
    values: &BodyValues,
    baseline: Baseline,
) -> Result<DiscoveryOutput, ProfileError> {
    let known_hosts: BTreeSet<&str> = existing.iter().map(|e| e.host.as_str()).collect();
    let mut host_first: HashMap<&str, i64> = HashMap::new();
    for e in existing {
        let first = host_first.entry(e.host.as_str()).or_insert(e.first_seen_ns);
        *first = (*first).min(e.first_seen_ns);
    }
    let mut entries: Vec<Entry> = existing
        .iter()
        .map(Entry::known)
        .collect::<Result<_, ProfileError>>()?;
    let n_existing = entries.len();

    // Traffic that fits a known endpoint goes to it (the most specific one).
    for o in observed {
        let segs = segments(&o.template);
        let target = entries[..n_existing]
            .iter()
            .enumerate()
            .filter(|(_, e)| e.host == o.host && e.method == o.method && covers(&e.segs, &segs))
            .min_by_key(|(_, e)| e.segs.iter().filter(|s| matches!(s, Seg::Param(_))).count())
            .map(|(i, _)| i);
        match target {
            Some(i) => entries[i].absorb(o, &segs),
            None => entries.push(Entry::observed(o, segs)),
        }
    }

    learn_parameters(&mut entries, values);
    let (mut entries, retired) = merge_identical(entries);
    unique_param_names(&mut entries);

    let mut out = DiscoveryOutput {
        retired,
        ..DiscoveryOutput::default()
    };
    for e in entries.into_iter().filter(|e| e.touched) {
        let template = render(&e.segs);
        let key = EndpointKey {
            host: e.host.clone(),
            method: e.method.clone(),
            template: template.clone(),
        };
        let learning_ends = match baseline {
            Baseline::CaseSoFar => None,
            Baseline::Learning(ns) => Some(
                host_first
                    .get(e.host.as_str())
                    .map_or(i64::MAX, |f| f.saturating_add(ns)),
            ),
        };
        let found = e.changes(&key, &known_hosts, learning_ends, &mut out.updates);
        out.findings.extend(found);
        let detail = e
            .profile
            .to_json(&format!("{} {}{template}", e.method, e.host))?;
        out.endpoints.push(EndpointRecord {
            id: e.id,
            host: e.host,
            method: e.method,
            template,
            first_seen_ns: e.first_seen_ns,
            last_seen_ns: e.last_seen_ns,
            count: e.count,
            detail,
        });
    }
    out.endpoints
        .sort_by(|a, b| (&a.host, &a.template, &a.method).cmp(&(&b.host, &b.template, &b.method)));
    Ok(out)
}

/// Path-parameter renames from `from`'s names to `to`'s, position by position.
fn param_renames(from: &[Seg], to: &[Seg]) -> Vec<(String, String)> {
    from.iter()
        .zip(to)
        .filter_map(|(f, t)| match (f, t) {
            (Seg::Param(a), Seg::Param(b)) => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect()
}

/// What is seen at one position under one prefix.
#[derive(Default)]
struct Position {
    /// Literal words, with hits.
    words: BTreeMap<String, u64>,
    /// A parameter name already used there.
    param: Option<String>,
    /// What each word's own endpoints (the word last in the path) answer: their 2xx
    /// response fields. Under the key "{}", what the parameter's endpoints answer.
    answers: BTreeMap<String, BTreeSet<String>>,
    /// The literal segments under each word (`name1` → `email`, `password`).
    children: BTreeMap<String, BTreeSet<String>>,
}

/// Key of the parameter's answers in [`Position::answers`].
const PARAM_ANSWERS: &str = "{}";

/// Step 2: positions with many different words under one parent become parameters — words
/// that behave as their siblings do; a literal with its own behaviour (its own response
/// shape) stays literal beside them. Where a parameter is already established, a few words
/// answering as it does are enough.
fn learn_parameters(entries: &mut [Entry], values: &BodyValues) {
    let depth = entries.iter().map(|e| e.segs.len()).max().unwrap_or(0);
    for d in 1..depth {
        for ((host, prefix), pos) in positions(entries, d) {
            // Under a parameter (`/repos/{owner}/…`) there is no resource word to go by: only
            // strong evidence makes its words values.
            let context = resource_word(&prefix);
            let under_param = matches!(prefix.last(), Some(Seg::Param(_)));
            if context.is_none() && !under_param {
                continue;
            }
            let Some(ids) = identifiers(&pos, values) else {
                continue;
            };
            // Sub-resources under a parameter (`/users/{id}/orders`, `/users/{id}/settings`)
            // are many words too: there, most words must have travelled as values.
            if context.is_none() && !(ids.travelled >= 2 && ids.travelled * 2 >= ids.words.len()) {
                continue;
            }
            let name = pos.param.clone().unwrap_or_else(|| {
                param_name(
                    context.or(Some("")),
                    if ids.sluggy * 2 > ids.words.len() {
                        "Slug"
                    } else {
                        "Name"
                    },
                )
            });
            fold_into_parameter(entries, &host, &prefix, d, &ids.words, &name);
        }
    }
}

/// Groups the entries deeper than `d` by host and prefix (parameters as `{}`).
fn positions(entries: &[Entry], d: usize) -> BTreeMap<(String, Vec<Seg>), Position> {
    let mut groups: BTreeMap<(String, Vec<Seg>), Position> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.segs.len() > d) {
        let prefix: Vec<Seg> = e.segs[..d]
            .iter()
            .map(|s| match s {
                Seg::Param(_) => Seg::Param(String::new()),
                l => l.clone(),
            })
            .collect();
        let g = groups.entry((e.host.clone(), prefix)).or_default();
        let last = e.segs.len() == d + 1;
        let word = match &e.segs[d] {
            Seg::Lit(v) => {
                *g.words.entry(v.clone()).or_default() += e.count;
                v.as_str()
            }
            Seg::Param(p) => {
                g.param.get_or_insert_with(|| p.clone());
                PARAM_ANSWERS
            }
        };
        if let (false, Some(Seg::Lit(child))) = (last, e.segs.get(d + 1)) {
            g.children
                .entry(word.to_owned())
                .or_default()
                .insert(child.clone());
        }
        if last {
            let fields = e.profile.response_fields();
            if !fields.is_empty() {
                g.answers.entry(word.to_owned()).or_default().extend(fields);
            }
        }
    }
    groups
}

/// The resource a position's values belong to: the literal before it, or before a version
/// segment (`/books/v1/{title}` → `books`). None under a parameter, `api`, or a non-word.
fn resource_word(prefix: &[Seg]) -> Option<&str> {
    let mut lits = prefix.iter().rev();
    let Some(Seg::Lit(parent)) = lits.next() else {
        return None; // under a parameter: too little context to call words identifiers
    };
    let parent = if is_version(parent) {
        match lits.next() {
            Some(Seg::Lit(p)) => p,
            _ => return None,
        }
    } else {
        parent
    };
    (parent != "api" && is_word(parent) && !is_version(parent)).then_some(parent.as_str())
}

/// Words at a position found to be values of one parameter.
struct Identifiers<'p> {
    words: BTreeSet<&'p str>,
    /// How many look like slugs or names with digits.
    sluggy: usize,
    /// How many travelled as values in bodies.
    travelled: usize,
}

/// The words at a position that are values of one parameter; None when nothing says so.
/// Evidence, any of: many distinct words; words that also travel as values in bodies
/// (registered, created, listed); words answering as an established parameter's values do;
/// words with the same segments under them (`name1/email`, `name2/email`).
fn identifiers<'p>(pos: &'p Position, values: &BodyValues) -> Option<Identifiers<'p>> {
    let typical = typical_answer(pos, values);
    let behaves = |w: &str| match (pos.answers.get(w), &typical) {
        (Some(own), Some(t)) => similar(own, t),
        _ => true, // no JSON answer to tell it apart: judged by the words alone
    };
    let words: BTreeSet<&str> = pos
        .words
        .keys()
        .map(String::as_str)
        .filter(|w| !ACTION_WORDS.contains(w) && !has_file_extension(w) && behaves(w))
        .collect();
    if words.is_empty() {
        return None;
    }
    let sluggy = words
        .iter()
        .filter(|w| w.contains(['-', '_']) || w.bytes().any(|b| b.is_ascii_digit()))
        .count();
    let many = words.len() >= LEARN_MIN_DISTINCT
        || (words.len() >= LEARN_MIN_DISTINCT_SLUGS && sluggy * 2 > words.len());
    let travelled = words
        .iter()
        .filter(|w| values.contains(&super::values::decoded(w)))
        .count();
    let alike = same_children(pos, &words);
    // Beside an established parameter, words that answer as its values do are its values.
    let like_param = pos.param.is_some()
        && typical.is_some()
        && words.iter().all(|w| pos.answers.contains_key(*w));
    let crossref = travelled >= 2 || (travelled == 1 && (pos.param.is_some() || alike >= 2));
    (many || crossref || like_param || alike >= 3).then_some(Identifiers {
        words,
        sluggy,
        travelled,
    })
}

/// How many candidate words have a child segment that another candidate has too.
fn same_children(pos: &Position, candidates: &BTreeSet<&str>) -> usize {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for w in candidates {
        for c in pos.children.get(*w).into_iter().flatten() {
            *seen.entry(c.as_str()).or_default() += 1;
        }
    }
    candidates
        .iter()
        .filter(|w| {
            pos.children.get(**w).is_some_and(|cs| {
                cs.iter()
                    .any(|c| seen.get(c.as_str()).is_some_and(|&n| n >= 2))
            })
        })
        .count()
}

/// What a value's endpoints answer at a position: the established parameter's answer, else
/// the fields most answers of words that travelled as values share, else the fields most
/// answers of all words share (at least three) — action words (`login`) never vote.
fn typical_answer(pos: &Position, values: &BodyValues) -> Option<BTreeSet<String>> {
    if let Some(p) = pos.answers.get(PARAM_ANSWERS) {
        return Some(p.clone());
    }
    let voters = pos
        .answers
        .iter()
        .filter(|(w, _)| !ACTION_WORDS.contains(&w.as_str()) && !has_file_extension(w));
    let travelled: Vec<&BTreeSet<String>> = voters
        .clone()
        .filter(|(w, _)| values.contains(&super::values::decoded(w)))
        .map(|(_, a)| a)
        .collect();
    if !travelled.is_empty() {
        return majority(&travelled);
    }
    let answers: Vec<&BTreeSet<String>> = voters.map(|(_, a)| a).collect();
    if answers.len() < 3 {
        return None;
    }
    majority(&answers)
}

/// The fields present in more than half of `answers`.
fn majority(answers: &[&BTreeSet<String>]) -> Option<BTreeSet<String>> {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for a in answers {
        for f in a.iter() {
            *votes.entry(f.as_str()).or_default() += 1;
        }
    }
    let typical: BTreeSet<String> = votes
        .into_iter()
        .filter(|(_, n)| n * 2 > answers.len())
        .map(|(f, _)| f.to_owned())
        .collect();
    (!typical.is_empty()).then_some(typical)
}

/// Two answers share most of their fields (Jaccard ≥ ½).
fn similar(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    let common = a.intersection(b).count();
    let all = a.union(b).count();
    all > 0 && common * 2 >= all
}

/// Rewrites position `d` of the entries under `prefix` whose word is a candidate into the
/// parameter `name`.
fn fold_into_parameter(
    entries: &mut [Entry],
    host: &str,
    prefix: &[Seg],
    d: usize,
    candidates: &BTreeSet<&str>,
    name: &str,
) {
    for e in entries
        .iter_mut()
        .filter(|e| e.host == host && e.segs.len() > d)
    {
        let fits = e.segs[..d].iter().zip(prefix).all(|(a, b)| match (a, b) {
            (Seg::Param(_), Seg::Param(_)) => true,
            (a, b) => a == b,
        });
        let Seg::Lit(v) = &e.segs[d] else { continue };
        if fits && candidates.contains(v.as_str()) {
            let from = render(&e.segs);
            e.segs[d] = Seg::Param(name.to_owned());
            if !e.profile.merged_from.contains(&from) {
                e.profile.merged_from.push(from);
            }
            e.touched = true;
        }
    }
}

/// Entries that now share host, method and template become one; the lowest existing id
/// survives and the other existing ids are retired.
fn merge_identical(entries: Vec<Entry>) -> (Vec<Entry>, Vec<i64>) {
    let mut by_key: BTreeMap<(String, String, Vec<Seg>), Entry> = BTreeMap::new();
    let mut retired = Vec::new();
    for e in entries {
        let key = (e.host.clone(), e.method.clone(), normalised(&e.segs));
        match by_key.remove(&key) {
            None => {
                by_key.insert(key, e);
            }
            Some(mut a) => {
                let mut b = e;
                if b.id.is_some() && (a.id.is_none() || b.id < a.id) {
                    std::mem::swap(&mut a, &mut b);
                }
                if let Some(id) = b.id {
                    retired.push(id);
                }
                let renames = param_renames(&b.segs, &a.segs);
                b.profile.rename_path_params(&renames);
                a.profile.absorb(&b.profile);
                if !a.profile.merged_from.contains(&b.original) && b.original != render(&a.segs) {
                    a.profile.merged_from.push(b.original.clone());
                }
                a.count += b.count;
                a.first_seen_ns = a.first_seen_ns.min(b.first_seen_ns);
                a.last_seen_ns = a.last_seen_ns.max(b.last_seen_ns);
                a.first_id = match (a.first_id, b.first_id) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                a.before = a.before.take().or(b.before.take());
                a.touched = true;
                by_key.insert(key, a);
            }
        }
    }
    (by_key.into_values().collect(), retired)
}

/// Parameters as positions, names ignored: `/users/{id}` and `/users/{userId}` are one.
fn normalised(segs: &[Seg]) -> Vec<Seg> {
    segs.iter()
        .map(|s| match s {
            Seg::Param(_) => Seg::Param(String::new()),
            l => l.clone(),
        })
        .collect()
}

/// OpenAPI wants parameter names unique within a path: `/a/{id}/b/{id}` → `{id}`, `{id2}`.
fn unique_param_names(entries: &mut [Entry]) {
    for e in entries {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut renames = Vec::new();
        for s in &mut e.segs {
            if let Seg::Param(p) = s {
                let n = seen.entry(p.clone()).or_default();
                *n += 1;
                if *n > 1 {
                    let new = format!("{p}{n}");
                    renames.push((p.clone(), new.clone()));
                    *p = new;
                }
            }
        }
        if !renames.is_empty() {
            e.touched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consolidation without cross-references from bodies.
    fn consolidate(
        existing: &[Endpoint],
        observed: Vec<Observed>,
    ) -> Result<DiscoveryOutput, ProfileError> {
        super::consolidate(
            existing,
            observed,
            &BodyValues::default(),
            Baseline::CaseSoFar,
        )
    }

    #[test]
    fn identifiers_become_named_parameters() {
        assert_eq!(template("/api/v1/users/123"), "/api/v1/users/{userId}");
        assert_eq!(template("/users/me"), "/users/me");
        assert_eq!(
            template("/orders/0000002a-1b2c-4d5e-8f90-000000000126"),
            "/orders/{orderId}"
        );
        assert_eq!(
            template("/categories/7/items/9"),
            "/categories/{categoryId}/items/{itemId}"
        );
        assert_eq!(template("/"), "/");
        assert_eq!(template("/users/7/"), "/users/{userId}");
        assert_eq!(
            template("/v2/blob/0123456789abcdef0123"),
            "/v2/blob/{blobId}"
        );
        assert_eq!(template("/events/2024-05-01"), "/events/{eventDate}");
        assert_eq!(template("/invites/a@b.org"), "/invites/{inviteEmail}");
        assert_eq!(
            template("/v2/products/SKU-00042"),
            "/v2/products/{productId}"
        );
        assert_eq!(template("/v1/42"), "/v1/{id}");
    }

    #[test]
    fn deep_paths_are_cut_at_the_segment_cap_and_counted() {
        // 60 requests whose paths have 30,000 segments each (it took minutes before the cap).
        let mut d = Discovery::new(false);
        for i in 0..60 {
            // The same first hundred segments, then each its own.
            let path: String = (0..30_000)
                .map(|k| format!("/s{}", if k < 100 { k } else { k + i }))
                .collect();
            let tx = Transaction {
                method: "GET".into(),
                uri: path,
                host: Some("h".into()),
                ..Transaction::default()
            };
            d.observe(i, &tx);
        }
        let out = d.finish(&[]).unwrap();
        assert_eq!(out.endpoints.len(), 1, "one endpoint, not 60");
        let t = &out.endpoints[0].template;
        assert_eq!(t.matches('/').count(), MAX_PATH_SEGMENTS);
        assert!(t.ends_with("/{rest}"), "{t}");
        let profile: EndpointProfile = serde_json::from_str(&out.endpoints[0].detail).unwrap();
        assert_eq!(profile.limits.get("path_segments"), Some(&60));
        // A path at the cap is kept whole.
        let at_cap: String = (0..MAX_PATH_SEGMENTS).map(|k| format!("/s{k}")).collect();
        assert_eq!(template(&at_cap), at_cap);
    }

    fn obs(method: &str, template: &str, count: u64) -> Observed {
        Observed {
            host: "api.test".into(),
            method: method.into(),
            template: template.into(),
            first_seen_ns: 1,
            last_seen_ns: 2,
            count,
            first_id: 1,
            profile: EndpointProfile::default(),
            bodies_noted: 0,
        }
    }

    /// An observation whose responses carried `class` at `location`, `anonymous` of them
    /// to requests without credentials.
    fn carrying(template: &str, class: &str, location: &str, anonymous: u64) -> Observed {
        use crate::profile::{Anonymous, DataSeen};
        let mut o = obs("GET", template, 5);
        let seen = DataSeen {
            count: 5,
            first_seen_ns: 10,
            last_seen_ns: 20,
            first_tx: 7,
            anonymous: (anonymous > 0).then_some(Anonymous {
                count: anonymous,
                first_tx: 9,
            }),
        };
        o.profile
            .data_classes
            .entry(class.into())
            .or_default()
            .insert(location.into(), seen);
        o
    }

    fn exposures(out: &DiscoveryOutput) -> Vec<(Severity, String)> {
        out.findings
            .iter()
            .filter(|f| f.kind == FindingKind::ExcessiveDataExposure)
            .map(|f| (f.severity, f.title.clone()))
            .collect()
    }

    #[test]
    fn secrets_in_responses_and_personal_data_to_anonymous_clients_are_findings() {
        let first = consolidate(
            &[],
            vec![
                carrying(
                    "/users/v1/_debug",
                    "password",
                    "response.body.users[].password",
                    4,
                ),
                carrying("/users/me", "email", "response.body.email", 0),
                carrying("/users/{id}", "email", "response.body.email", 2),
                carrying("/login", "jwt", "response.body.token", 5),
                carrying("/keys", "aws_secret_access_key", "response.body.secret", 0),
            ],
        )
        .unwrap();
        let found = exposures(&first);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.contains(&(
            Severity::Critical,
            "password in responses of GET api.test/users/v1/_debug to clients that sent no credentials".into()
        )), "{found:?}");
        assert!(found.iter().any(|(s, t)| *s == Severity::High
            && t.contains("email in responses of GET api.test/users/{id}")));
        assert!(
            found
                .iter()
                .any(|(s, t)| *s == Severity::High && t.contains("aws_secret_access_key"))
        );
        let f = first
            .findings
            .iter()
            .find(|f| f.title.starts_with("password"))
            .unwrap();
        assert_eq!(
            (f.count, f.evidence.clone()),
            (4, vec![9]),
            "the anonymous ones"
        );

        // The next import of the same traffic repeats nothing.
        let again = consolidate(
            &stored(&first),
            vec![carrying(
                "/users/v1/_debug",
                "password",
                "response.body.users[].password",
                1,
            )],
        )
        .unwrap();
        assert_eq!(exposures(&again), []);
        // ... but what it adds goes to the case's finding: one more anonymous response.
        let added: Vec<(u64, &str)> = again
            .updates
            .iter()
            .map(|f| (f.count, f.title.as_str()))
            .collect();
        assert_eq!(
            added,
            [(
                1,
                "password in responses of GET api.test/users/v1/_debug to clients that sent no credentials"
            )]
        );
        // A secret that reaches anonymous clients later is reported again, worse.
        let later = consolidate(
            &stored(&first),
            vec![carrying(
                "/keys",
                "aws_secret_access_key",
                "response.body.secret",
                1,
            )],
        )
        .unwrap();
        assert_eq!(
            exposures(&later).first().map(|f| f.0),
            Some(Severity::Critical)
        );
    }

    #[test]
    fn an_unreadable_stored_profile_is_an_error_naming_the_endpoint() {
        let first = consolidate(&[], vec![obs("GET", "/users/{userId}", 4)]).unwrap();
        let mut known = stored(&first);
        known[0].detail = Some("{\"statuses\": [oops".into());
        let err = consolidate(&known, vec![obs("GET", "/users/{userId}", 1)])
            .expect_err("a damaged profile must not be reset silently")
            .to_string();
        assert!(err.contains("GET api.test/users/{userId}"), "{err}");

        let mut newer: serde_json::Value =
            serde_json::from_str(&first.endpoints[0].detail).unwrap();
        newer["version"] = serde_json::json!(crate::profile::PROFILE_VERSION + 1);
        known[0].detail = Some(newer.to_string());
        let err = consolidate(&known, vec![])
            .expect_err("newer layout")
            .to_string();
        assert!(err.contains("newer Tapline"), "{err}");
    }

    /// The endpoints as the case holds them after writing `out` (ids from 1).
    fn stored(out: &DiscoveryOutput) -> Vec<Endpoint> {
        out.endpoints
            .iter()
            .enumerate()
            .map(|(i, r)| Endpoint {
                id: i as i64 + 1,
                host: r.host.clone(),
                method: r.method.clone(),
                template: r.template.clone(),
                first_seen_ns: r.first_seen_ns,
                last_seen_ns: r.last_seen_ns,
                count: r.count,
                detail: Some(r.detail.clone()),
            })
            .collect()
    }

    fn templates(out: &DiscoveryOutput) -> Vec<String> {
        out.endpoints
            .iter()
            .map(|e| format!("{} {}", e.method, e.template))
            .collect()
    }

    /// An observation whose 2xx JSON answers have these top-level fields.
    fn answering(method: &str, template: &str, fields: &[&str]) -> Observed {
        let mut o = obs(method, template, 2);
        if !fields.is_empty() {
            let body: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|f| ((*f).to_owned(), serde_json::Value::String("x".into())))
                .collect();
            let mut node = crate::schema::SchemaNode::default();
            let json = serde_json::Value::Object(body).to_string();
            assert!(node.observe_json(json.as_bytes()));
            o.profile.response_schemas.insert("200".into(), node);
        }
        o
    }

    /// Feeds one JSON exchange through discovery.
    fn exchange(d: &mut Discovery, id: i64, method: &str, uri: &str, sent: &str, got: &str) {
        let mut tx = Transaction {
            method: method.to_owned().into(),
            uri: uri.into(),
            host: Some("api.test".into()),
            status: Some(200),
            ..Transaction::default()
        };
        for (headers, body, json) in [
            (&mut tx.request_headers, &mut tx.request_body.data, sent),
            (&mut tx.response_headers, &mut tx.response_body.data, got),
        ] {
            if !json.is_empty() {
                headers.push("Content-Type", "application/json");
                *body = json.as_bytes().to_vec();
            }
        }
        d.observe(id, &tx);
    }

    #[test]
    fn two_names_that_travel_in_bodies_are_values_of_a_parameter() {
        let mut d = Discovery::new(false);
        let mut id = 0;
        let mut call = |d: &mut Discovery, method: &str, uri: &str, sent: &str, got: &str| {
            id += 1;
            exchange(d, id, method, uri, sent, got);
        };
        for name in ["name1", "admin"] {
            let body = format!(r#"{{"username": "{name}", "password": "p"}}"#);
            call(
                &mut d,
                "POST",
                "/users/v1/register",
                &body,
                r#"{"status": "ok"}"#,
            );
            call(
                &mut d,
                "POST",
                "/users/v1/login",
                &body,
                r#"{"auth_token": "t"}"#,
            );
            let user = format!(r#"{{"username": "{name}", "email": "e"}}"#);
            call(&mut d, "GET", &format!("/users/v1/{name}"), "", &user);
            call(
                &mut d,
                "PUT",
                &format!("/users/v1/{name}/email"),
                r#"{"email": "f"}"#,
                "",
            );
        }
        call(&mut d, "GET", "/users/v1/_debug", "", r#"{"users": []}"#);
        // Owners and repositories listed in bodies, addressed under a parameter.
        for (owner, repo) in [("torvalds", "linux"), ("rust-lang", "rust")] {
            let listed = format!(r#"[{{"name": "{repo}", "owner": {{"login": "{owner}"}}}}]"#);
            call(&mut d, "GET", "/repos", "", &listed);
            let uri = format!("/repos/{owner}/{repo}");
            call(&mut d, "GET", &uri, "", r#"{"stars": 1}"#);
        }
        // Sub-resources under a parameter are many words, but no values.
        for sub in [
            "orders",
            "settings",
            "profile",
            "carts",
            "wishlist",
            "invoices",
            "addresses",
            "tokens",
        ] {
            call(
                &mut d,
                "GET",
                &format!("/users/{{userId}}/{sub}").replace("{userId}", "7"),
                "",
                "{}",
            );
        }
        let out = d.finish(&[]).unwrap();
        let unnamed = |t: &str| {
            let segs: Vec<&str> = t
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect();
            segs.join("/")
        };
        let got: Vec<String> = templates(&out).iter().map(|t| unnamed(t)).collect();
        for want in [
            "GET /users/v1/{}",
            "PUT /users/v1/{}/email",
            "GET /users/v1/_debug",
            "POST /users/v1/login",
            "POST /users/v1/register",
            "GET /repos/{}/{}",
            "GET /users/{}/orders",
            "GET /users/{}/wishlist",
        ] {
            assert!(got.contains(&want.to_owned()), "{want} in {got:#?}");
        }
        assert_eq!(got.len(), 5 + 2 + 8, "{got:#?}");
        // One user name, one debug listing: the name's answer is a value's answer.
        let mut d = Discovery::new(false);
        call(
            &mut d,
            "POST",
            "/users/v1/register",
            r#"{"username": "name1"}"#,
            "{}",
        );
        call(
            &mut d,
            "GET",
            "/users/v1/name1",
            "",
            r#"{"username": "name1", "email": "e"}"#,
        );
        call(
            &mut d,
            "PUT",
            "/users/v1/name1/email",
            r#"{"email": "f"}"#,
            "",
        );
        call(&mut d, "GET", "/users/v1/_debug", "", r#"{"users": []}"#);
        let got: Vec<String> = templates(&d.finish(&[]).unwrap())
            .iter()
            .map(|t| unnamed(t))
            .collect();
        assert!(got.contains(&"GET /users/v1/_debug".to_owned()), "{got:#?}");
    }

    #[test]
    fn names_after_a_version_segment_become_a_parameter_and_siblings_with_their_own_answers_stay() {
        let user = ["username", "email"];
        let mut seen = vec![
            answering("GET", "/users/v1/_debug", &["users"]),
            answering(
                "POST",
                "/users/v1/login",
                &["auth_token", "message", "status"],
            ),
            answering("POST", "/users/v1/register", &["message", "status"]),
            answering("GET", "/users/v1", &["users"]),
        ];
        for name in [
            "name1", "name2", "admin", "mallory", "bob", "alice", "carol", "dave",
        ] {
            seen.push(answering("GET", &format!("/users/v1/{name}"), &user));
            seen.push(answering("PUT", &format!("/users/v1/{name}/email"), &[]));
        }
        let out = consolidate(&[], seen).unwrap();
        let mut got = templates(&out);
        got.sort();
        assert_eq!(
            got,
            [
                "GET /users/v1",
                "GET /users/v1/_debug",
                "GET /users/v1/{userName}",
                "POST /users/v1/login",
                "POST /users/v1/register",
                "PUT /users/v1/{userName}/email",
            ]
        );
    }

    #[test]
    fn beside_an_established_parameter_a_few_words_answering_alike_are_its_values() {
        let book = ["book_title", "owner", "secret"];
        let out = consolidate(
            &[],
            vec![
                answering("GET", "/books/v1/{bookId}", &book),
                answering("GET", "/books/v1/bookTitle7", &book),
                answering("GET", "/books/v1/theHobbit", &book),
                answering("GET", "/books/v1/export", &["url"]),
            ],
        )
        .unwrap();
        let mut got = templates(&out);
        got.sort();
        assert_eq!(got, ["GET /books/v1/export", "GET /books/v1/{bookId}"]);
    }

    #[test]
    fn many_words_under_a_collection_become_a_parameter() {
        let mut seen = Vec::new();
        for slug in [
            "tent-care",
            "lamp-repair",
            "desk-buying",
            "sofa-care",
            "rug-repair",
            "bed-buying",
        ] {
            seen.push(obs("GET", &format!("/api/v1/articles/{slug}"), 3));
        }
        seen.push(obs("POST", "/api/v1/articles/tent-care/comments", 1));
        seen.push(obs("GET", "/api/v1/articles/featured", 9));
        // Collections under a version stay words, however many.
        for c in [
            "products", "orders", "users", "carts", "invoices", "payments", "refunds", "coupons",
            "stores",
        ] {
            seen.push(obs("GET", &format!("/api/v1/{c}"), 5));
        }
        seen.push(obs("GET", "/api/v1/reports/summary.csv", 1));
        seen.push(obs("GET", "/api/v1/reports/summary.pdf", 1));
        let out = consolidate(&[], seen).unwrap();
        let t = templates(&out);
        assert!(
            t.contains(&"GET /api/v1/articles/{articleSlug}".into()),
            "{t:?}"
        );
        assert!(
            t.contains(&"POST /api/v1/articles/{articleSlug}/comments".into()),
            "{t:?}"
        );
        assert!(t.contains(&"GET /api/v1/articles/featured".into()), "{t:?}");
        assert!(t.contains(&"GET /api/v1/products".into()));
        assert!(t.contains(&"GET /api/v1/reports/summary.pdf".into()));
        assert_eq!(t.len(), 1 + 1 + 1 + 9 + 2, "{t:?}");
        let slugs = out
            .endpoints
            .iter()
            .find(|e| e.template == "/api/v1/articles/{articleSlug}" && e.method == "GET")
            .unwrap();
        assert_eq!(slugs.count, 18);
        assert!(
            out.findings.is_empty(),
            "first sight of a host is the baseline"
        );
    }

    #[test]
    fn a_live_baseline_learns_a_host_before_reporting_changes() {
        let first = consolidate(&[], vec![obs("GET", "/users/{userId}", 4)]).unwrap();
        let existing = stored(&first);
        let learned = |o: Observed| {
            let b = Baseline::Learning(100);
            let out = super::consolidate(&existing, vec![o], &BodyValues::default(), b).unwrap();
            out.findings
                .iter()
                .map(|f| f.kind.name())
                .collect::<Vec<_>>()
        };
        assert!(learned(obs("DELETE", "/users/{userId}", 1)).is_empty());
        let mut later = obs("DELETE", "/users/{userId}", 1);
        (later.first_seen_ns, later.last_seen_ns) = (500, 500);
        assert_eq!(learned(later), ["new_endpoint"]);
    }

    #[test]
    fn later_imports_keep_templates_and_report_changes() {
        let first = consolidate(&[], vec![obs("GET", "/users/{userId}", 4)]).unwrap();
        let existing = stored(&first);
        let mut newer = obs("GET", "/users/{userId}", 2);
        newer
            .profile
            .response_schemas
            .entry("200".into())
            .or_default()
            .observe_json(br#"{"ssn": "x"}"#);
        let out = consolidate(&existing, vec![newer, obs("DELETE", "/users/{userId}", 1)]).unwrap();
        let user = out.endpoints.iter().find(|e| e.method == "GET").unwrap();
        assert_eq!((user.id, user.count), (Some(1), 6));
        let kinds: Vec<&str> = out.findings.iter().map(|f| f.kind.name()).collect();
        assert_eq!(
            kinds,
            vec!["new_endpoint"],
            "no 2xx before: no field finding"
        );

        // Once the case knows the 2xx response, a new field in it is a finding.
        let mut known = existing.clone();
        let mut before: serde_json::Value = serde_json::from_str(&user.detail).unwrap();
        before["statuses"] = serde_json::json!({"200": 6});
        known[0].detail = Some(before.to_string());
        let mut later = obs("GET", "/users/{userId}", 1);
        later.profile.statuses.insert("200".into(), 1);
        later
            .profile
            .response_schemas
            .entry("200".into())
            .or_default()
            .observe_json(br#"{"ssn": "x", "card": {"number": "4111"}}"#);
        let out = consolidate(&known, vec![later]).unwrap();
        let f = &out.findings[0];
        assert_eq!(f.kind, FindingKind::NewResponseField);
        assert!(
            f.title.ends_with("now returns card, card.number"),
            "{}",
            f.title
        );
    }

    #[test]
    fn the_inventory_resolves_keys_seen_while_reading_to_the_settled_templates() {
        let record = |id, method: &str, template: &str| EndpointRecord {
            id,
            host: "h".into(),
            method: method.into(),
            template: template.into(),
            first_seen_ns: 0,
            last_seen_ns: 0,
            count: 1,
            detail: String::new(),
        };
        let out = DiscoveryOutput {
            endpoints: vec![
                record(None, "GET", "/books/v1/{title}"),
                record(None, "GET", "/books/v1/_debug"),
                record(Some(2), "PUT", "/users/{name}/email"),
            ],
            retired: vec![3],
            findings: Vec::new(),
            updates: Vec::new(),
        };
        let known = |id, method: &str, template: &str| Endpoint {
            id,
            host: "h".into(),
            method: method.into(),
            template: template.into(),
            first_seen_ns: 0,
            last_seen_ns: 0,
            count: 1,
            detail: None,
        };
        let existing = [
            known(1, "GET", "/health"),
            known(2, "PUT", "/users/bob/email"),
            known(3, "GET", "/books/v1/dune"),
        ];
        let inv = Inventory::new(&existing, &out);
        let r = |k: &str| inv.resolve(k);
        assert_eq!(
            r("h\0GET\0/books/v1/The%20Road"),
            Some((
                "h\0GET\0/books/v1/{title}".into(),
                Some("The%20Road".into())
            ))
        );
        assert_eq!(
            r("h\0GET\0/books/v1/_debug"),
            None,
            "the literal sibling stays"
        );
        assert_eq!(
            r("h\0PUT\0/users/bob/email"),
            Some(("h\0PUT\0/users/{name}/email".into(), Some("bob".into())))
        );
        assert_eq!(r("h\0GET\0/health"), None);
        assert_eq!(r("h\0POST\0/books/v1/dune"), None, "no such route");
        assert_eq!(
            r("h\0GET\0/books/v1/{id}"),
            Some(("h\0GET\0/books/v1/{title}".into(), None)),
            "a parameter keeps each request's own value"
        );
    }

    #[test]
    fn a_learned_parameter_retires_the_endpoints_it_folds() {
        let words = [
            "kitchen", "garden", "lighting", "bath", "bedding", "storage", "rugs", "lamps",
        ];
        let first = consolidate(
            &[],
            words[..3]
                .iter()
                .map(|w| obs("GET", &format!("/shop/categories/{w}"), 2))
                .collect(),
        )
        .unwrap();
        assert_eq!(
            first.endpoints.len(),
            3,
            "three words are not yet a parameter"
        );
        let existing = stored(&first);
        let out = consolidate(
            &existing,
            words
                .iter()
                .map(|w| obs("GET", &format!("/shop/categories/{w}"), 1))
                .collect(),
        )
        .unwrap();
        assert_eq!(out.endpoints.len(), 1, "{:?}", templates(&out));
        let e = &out.endpoints[0];
        assert_eq!(e.template, "/shop/categories/{categoryName}");
        assert_eq!(e.count, 6 + 8);
        assert_eq!(e.id, Some(1), "the oldest endpoint survives");
        let mut retired = out.retired.clone();
        retired.sort();
        assert_eq!(retired, vec![2, 3]);
        let profile: EndpointProfile = serde_json::from_str(&e.detail).unwrap();
        assert!(profile.merged_from.iter().any(|m| m.ends_with("/garden")));
    }
}
