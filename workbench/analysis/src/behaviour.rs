//! API abuse seen in behaviour rather than payloads: BOLA, broken authentication, brute force
//! and credential stuffing, scraping and enumeration, error-rate spikes.
//!
//! Import shards record one compact event per request ([`Behaviour::observe`]: time, endpoint,
//! actor, status, whether it carried credentials, the object its path addressed, the user name a
//! login tried). When the import ends the events become a polars frame; the detectors are
//! group-bys over it (per actor, endpoint, principal and time window), and the judgements —
//! baselines, ratios, thresholds ([`Thresholds`]) — are made in plain Rust over the small
//! grouped tables.
//!
//! Time windows are fixed 60-second windows laid twice, the second grid shifted by half a
//! window, so any burst that fits in half a window falls whole into one window.

mod stream;

pub use stream::{HORIZON_NS, STREAM_EVENTS};

use super::actor::{actor_of, describe};
use super::owners::{self, Creation, Creations, Origin, Owners};
use super::profile::API_KEY_HEADERS;
use polars::prelude::*;
// foldhash: these maps are keyed by interned ids and hashed per event (SipHash showed in profiles).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::hash::{BuildHasher, Hash, Hasher};
use tapline_record::Transaction;
use tapline_store::endpoints::{Actor, EndpointKey, FindingKind, NewFinding, Severity};

/// Events kept per import; past this, requests are counted but not analysed for behaviour.
const MAX_EVENTS: usize = 50_000_000;
/// Evidence transaction ids kept per finding.
const MAX_EVIDENCE: usize = 50;
/// Identity cache entries before it is cleared.
const MAX_IDENTITY_CACHE: usize = 1 << 20;
/// "No value" in the u32 id columns.
const NONE: u32 = u32::MAX;

/// Where the detectors draw their lines. The defaults suit API traffic seen at a tap; each is
/// stated in the finding it produces.
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Window length, ns.
    pub window_ns: i64,
    /// Failed logins (401/403) from one address within a window that make a burst.
    pub login_failures: u32,
    /// Distinct user names tried in a burst that make it credential stuffing, not brute force.
    pub stuffing_usernames: u32,
    /// Distinct objects one principal reads or changes on one endpoint before it is a walk.
    pub bola_objects: u32,
    /// … and how many times the typical other principal's count that must be.
    pub bola_ratio: f64,
    /// Objects named after other principals (`/users/7` read by user 11) that alone make BOLA.
    pub bola_foreign: u32,
    /// Credentialed requests an endpoint needs before anonymous success on it is suspicious.
    pub auth_min: u32,
    /// Requests in a window by one actor on one endpoint before it can be scraping.
    pub scrape_min: u32,
    /// … and how many times the endpoint's typical actor-window that must be.
    pub scrape_ratio: f64,
    /// Server errors (5xx) in a window on one endpoint before it can be a spike.
    pub error_min: u32,
    /// … the share of the window's requests they must be.
    pub error_share: f64,
    /// … and how many times the endpoint's error share outside the window.
    pub error_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window_ns: 60_000_000_000,
            login_failures: 10,
            stuffing_usernames: 5,
            bola_objects: 10,
            bola_ratio: 5.0,
            bola_foreign: 3,
            auth_min: 5,
            scrape_min: 60,
            scrape_ratio: 10.0,
            error_min: 10,
            error_share: 0.5,
            error_ratio: 5.0,
        }
    }
}

/// Values interned to dense u32 ids.
#[derive(Debug)]
struct Interner<K> {
    ids: HashMap<K, u32>,
    items: Vec<K>,
}

impl<K> Default for Interner<K> {
    fn default() -> Self {
        Interner {
            ids: HashMap::new(),
            items: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Interner<K> {
    fn id(&mut self, k: K) -> u32 {
        if let Some(&id) = self.ids.get(&k) {
            return id;
        }
        let id = self.items.len() as u32;
        self.items.push(k.clone());
        self.ids.insert(k, id);
        id
    }
}

impl Interner<String> {
    /// The text of string id `id` (empty for an id it never gave).
    fn text(&self, id: u32) -> &str {
        self.items.get(id as usize).map_or("", String::as_str)
    }

    fn id_str(&mut self, s: &str) -> u32 {
        match self.ids.get(s) {
            Some(&id) => id,
            None => self.id(s.to_owned()),
        }
    }
}

/// What a known actor resolves to, by actor id.
#[derive(Clone, Copy, Debug)]
struct ActorIds {
    ip: u32,
    /// User, else API key, else session: whoever the request claims to be.
    principal: u32,
}

/// The events of one import shard, column by column.
#[derive(Default)]
pub struct Behaviour {
    id: Vec<i64>,
    ts: Vec<i64>,
    endpoint: Vec<u32>,
    actor: Vec<u32>,
    status: Vec<u16>,
    creds: Vec<bool>,
    object: Vec<u32>,
    username: Vec<u32>,
    /// Objects principals created, for owners of objects (BOLA).
    creations: Creations,
    /// Requests not analysed because the import exceeded [`MAX_EVENTS`].
    skipped: u64,

    endpoints: Interner<String>,
    /// Whether each endpoint is a login (by id).
    login: Vec<bool>,
    actors: Interner<Actor>,
    actor_ids: Vec<ActorIds>,
    strings: Interner<String>,
    /// Identity fingerprint (client address + credential headers) → actor id.
    identity: HashMap<u64, u32>,
    hasher: foldhash::fast::FixedState,
}

/// Last path words of login endpoints (`POST /api/v1/login`, `/oauth/token`).
const LOGIN_WORDS: &[&str] = &[
    "login",
    "signin",
    "sign-in",
    "sign_in",
    "logon",
    "authenticate",
    "auth",
    "token",
    "session",
    "sessions",
];

/// Body fields naming the account a login tries.
const USERNAME_FIELDS: &[&str] = &[
    "username",
    "user",
    "user_name",
    "userName",
    "login",
    "email",
    "account",
];

fn is_login(key: &str) -> bool {
    let mut parts = key.split('\0');
    let (_, method, template) = (parts.next(), parts.next(), parts.next());
    let last = template
        .and_then(|t| t.trim_end_matches('/').rsplit('/').next())
        .unwrap_or("");
    method == Some("POST") && LOGIN_WORDS.iter().any(|w| last.eq_ignore_ascii_case(w))
}

/// The account a login request names, from a JSON or form body.
fn login_username(tx: &Transaction) -> Option<String> {
    let body = &tx.request_body.data;
    let body = &body[..body.len().min(8192)];
    if body.first().is_some_and(|b| *b == b'{') {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
        return USERNAME_FIELDS.iter().find_map(|k| match v.get(*k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    }
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        USERNAME_FIELDS.contains(&k).then(|| {
            let mut out = String::new();
            tapline_detect::fields::percent_decode_into(v, true, &mut out);
            out
        })
    })
}

impl Behaviour {
    /// Requests kept as events so far.
    pub fn events(&self) -> usize {
        self.id.len()
    }

    /// Sees one stored request: `key` is discovery's `host \0 method \0 template` for it,
    /// `object` the value of its last path parameter.
    pub fn observe(&mut self, id: i64, tx: &Transaction, key: Option<&str>, object: Option<&str>) {
        if self.id.len() >= MAX_EVENTS {
            self.skipped += 1;
            return;
        }
        let (endpoint, login) = match key {
            Some(k) => {
                let e = self.intern_endpoint(k);
                (e, self.login[e as usize])
            }
            None => (NONE, false),
        };
        let (actor, creds) = self.actor(tx);
        if let Some(k) = key {
            self.note_creation(endpoint, k, actor, tx);
        }
        self.id.push(id);
        self.ts.push(tx.request_ts_nanos);
        self.endpoint.push(endpoint);
        self.actor.push(actor);
        self.status.push(tx.status.unwrap_or(0));
        self.creds.push(creds);
        let object = object.map_or(NONE, |o| self.strings.id_str(o));
        self.object.push(object);
        let username = if login {
            login_username(tx).map_or(NONE, |u| self.strings.id_str(&u))
        } else {
            NONE
        };
        self.username.push(username);
    }

    /// Notes the objects a principal's request may have created (their keys from its bodies).
    fn note_creation(&mut self, endpoint: u32, key: &str, actor: u32, tx: &Transaction) {
        let principal = self.actor_ids[actor as usize].principal;
        let template = key.rsplit('\0').next().unwrap_or("");
        if principal == NONE || !owners::creates(tx, template) {
            return;
        }
        for v in owners::key_values(tx) {
            let value = self.strings.id_str(&v);
            self.creations.push(Creation {
                endpoint,
                value,
                principal,
                ts: tx.request_ts_nanos,
            });
        }
    }

    /// The request's actor id and whether it carried credentials. Actors are resolved once per
    /// distinct (address, credential headers): decoding a JWT per request would cost more than
    /// everything else here.
    fn actor(&mut self, tx: &Transaction) -> (u32, bool) {
        let mut h = self.hasher.build_hasher();
        tx.client.map(|c| c.ip()).hash(&mut h);
        let mut creds = false;
        for (name, value) in tx.request_headers.iter() {
            let credential = name.eq_ignore_ascii_case("authorization")
                || API_KEY_HEADERS.iter().any(|k| k.eq_ignore_ascii_case(name));
            if credential || name.eq_ignore_ascii_case("cookie") {
                name.len().hash(&mut h);
                value.hash(&mut h);
                creds |= credential;
            }
        }
        let fingerprint = h.finish();
        if let Some(&a) = self.identity.get(&fingerprint) {
            let principal = self.actor_ids[a as usize].principal;
            return (a, creds || principal != NONE);
        }
        let a = self.intern_actor(actor_of(tx));
        let principal = self.actor_ids[a as usize].principal;
        if self.identity.len() >= MAX_IDENTITY_CACHE {
            self.identity.clear();
        }
        self.identity.insert(fingerprint, a);
        (a, creds || principal != NONE)
    }

    fn intern_actor(&mut self, actor: Actor) -> u32 {
        let principal = actor
            .user
            .as_deref()
            .or(actor.key.as_deref())
            .or(actor.session.as_deref())
            .map_or(NONE, |p| self.strings.id_str(p));
        let ip = actor.ip.as_deref().map_or(NONE, |p| self.strings.id_str(p));
        let a = self.actors.id(actor);
        if a as usize == self.actor_ids.len() {
            self.actor_ids.push(ActorIds { ip, principal });
        }
        a
    }

    fn intern_endpoint(&mut self, key: &str) -> u32 {
        let e = self.endpoints.id_str(key);
        if e as usize == self.login.len() {
            self.login.push(is_login(key));
        }
        e
    }

    /// Folds in another shard's events, re-numbering its ids into this shard's tables.
    pub fn absorb(&mut self, other: Behaviour) {
        let strings: Vec<u32> = other
            .strings
            .items
            .iter()
            .map(|s| self.strings.id_str(s))
            .collect();
        let map = |table: &[u32], v: u32| if v == NONE { NONE } else { table[v as usize] };
        let endpoints: Vec<u32> = other
            .endpoints
            .items
            .iter()
            .zip(&other.login)
            .map(|(k, &login)| {
                let e = self.endpoints.id_str(k);
                if e as usize == self.login.len() {
                    self.login.push(login);
                }
                e
            })
            .collect();
        let actors: Vec<u32> = other
            .actors
            .items
            .into_iter()
            .zip(&other.actor_ids)
            .map(|(actor, ids)| {
                let a = self.actors.id(actor);
                if a as usize == self.actor_ids.len() {
                    self.actor_ids.push(ActorIds {
                        ip: map(&strings, ids.ip),
                        principal: map(&strings, ids.principal),
                    });
                }
                a
            })
            .collect();
        let room = MAX_EVENTS.saturating_sub(self.id.len());
        let take = other.id.len().min(room);
        self.skipped += other.skipped + (other.id.len() - take) as u64;
        self.id.extend_from_slice(&other.id[..take]);
        self.ts.extend_from_slice(&other.ts[..take]);
        self.status.extend_from_slice(&other.status[..take]);
        self.creds.extend_from_slice(&other.creds[..take]);
        self.endpoint
            .extend(other.endpoint[..take].iter().map(|&e| map(&endpoints, e)));
        self.actor
            .extend(other.actor[..take].iter().map(|&a| map(&actors, a)));
        self.object
            .extend(other.object[..take].iter().map(|&o| map(&strings, o)));
        self.username
            .extend(other.username[..take].iter().map(|&u| map(&strings, u)));
        self.creations.dropped += other.creations.dropped;
        for c in other.creations.items {
            self.creations.push(Creation {
                endpoint: map(&endpoints, c.endpoint),
                value: map(&strings, c.value),
                principal: map(&strings, c.principal),
                ts: c.ts,
            });
        }
    }

    /// Moves the events onto the endpoints discovery settled on at the end of the import:
    /// `resolve` maps an endpoint key seen while reading (`/books/v1/dune`, before `dune` was
    /// known to be a title) to the final key and, when the final template turned a literal
    /// into its last parameter, that literal as the object.
    pub fn remap(&mut self, resolve: impl Fn(&str) -> Option<(String, Option<String>)>) {
        let old = std::mem::take(&mut self.endpoints).items;
        self.login.clear();
        let table: Vec<(u32, u32)> = old
            .iter()
            .map(|k| {
                let (key, object) = resolve(k).unwrap_or_else(|| (k.clone(), None));
                let e = self.endpoints.id_str(&key);
                if e as usize == self.login.len() {
                    self.login.push(is_login(&key));
                }
                (e, object.map_or(NONE, |o| self.strings.id_str(&o)))
            })
            .collect();
        for (e, o) in self.endpoint.iter_mut().zip(self.object.iter_mut()) {
            if let Some(&(ne, no)) = table.get(*e as usize) {
                *e = ne;
                if no != NONE {
                    *o = no;
                }
            }
        }
        for c in &mut self.creations.items {
            if let Some(&(ne, _)) = table.get(c.endpoint as usize) {
                c.endpoint = ne;
            }
        }
    }

    /// Runs the detectors over everything observed.
    pub fn finish(&self, t: &Thresholds) -> PolarsResult<Vec<NewFinding>> {
        if self.id.is_empty() {
            return Ok(Vec::new());
        }
        let frame = self.frame(t.window_ns)?.lazy();
        let mut out = Vec::new();
        self.logins(&frame, t, &mut out)?;
        self.bola(&frame, t, &mut out)?;
        self.broken_auth(&frame, t, &mut out)?;
        self.scraping(&frame, t, &mut out)?;
        self.error_spikes(&frame, t, &mut out)?;
        if self.skipped > 0 {
            for f in &mut out {
                f.title.push_str(&format!(
                    " [behaviour judged on the first {MAX_EVENTS} requests]"
                ));
            }
        }
        Ok(out)
    }

    /// The events as a frame; id columns hold nulls for "none".
    fn frame(&self, window_ns: i64) -> PolarsResult<DataFrame> {
        let window_ns = window_ns.max(1);
        let opt = |v: &[u32]| -> Vec<Option<u32>> {
            v.iter().map(|&x| (x != NONE).then_some(x)).collect()
        };
        let ip: Vec<Option<u32>> = self
            .actor
            .iter()
            .map(|&a| Some(self.actor_ids[a as usize].ip).filter(|&x| x != NONE))
            .collect();
        let principal: Vec<Option<u32>> = self
            .actor
            .iter()
            .map(|&a| Some(self.actor_ids[a as usize].principal).filter(|&x| x != NONE))
            .collect();
        let login: Vec<bool> = self
            .endpoint
            .iter()
            .map(|&e| e != NONE && self.login[e as usize])
            .collect();
        let status: Vec<i32> = self.status.iter().map(|&s| i32::from(s)).collect();
        let grid = |offset: i64| -> Vec<i64> {
            self.ts
                .iter()
                .map(|&ts| ts.saturating_add(offset).div_euclid(window_ns))
                .collect()
        };
        DataFrame::new(
            self.id.len(),
            vec![
                Column::new("id".into(), &self.id),
                Column::new("ts".into(), &self.ts),
                Column::new("win0".into(), grid(0)),
                Column::new("win1".into(), grid(window_ns / 2)),
                Column::new("endpoint".into(), opt(&self.endpoint)),
                Column::new("actor".into(), &self.actor),
                Column::new("ip".into(), ip),
                Column::new("principal".into(), principal),
                Column::new("status".into(), status),
                Column::new("creds".into(), &self.creds),
                Column::new("login".into(), login),
                Column::new("object".into(), opt(&self.object)),
                Column::new("username".into(), opt(&self.username)),
            ],
        )
    }

    fn endpoint_of(&self, e: u32) -> Option<EndpointKey> {
        let key = self.endpoints.items.get(e as usize)?;
        let mut parts = key.split('\0');
        Some(EndpointKey {
            host: parts.next()?.to_owned(),
            method: parts.next()?.to_owned(),
            template: parts.next()?.to_owned(),
        })
    }

    fn actor_at(&self, a: Option<u32>) -> Actor {
        a.and_then(|a| self.actors.items.get(a as usize).cloned())
            .unwrap_or_default()
    }

    /// Completes a detector's judgement of row `i` of `r` with the group's time span
    /// (columns `first`, `last`) and evidence.
    fn finding(&self, r: &Rows, i: usize, j: Judgement) -> PolarsResult<NewFinding> {
        Ok(NewFinding {
            kind: j.kind,
            severity: j.severity,
            confidence: j.confidence,
            endpoint: j.endpoint,
            first_seen_ns: r.i64("first", i)?.unwrap_or(0),
            last_seen_ns: r.i64("last", i)?.unwrap_or(0),
            count: j.count,
            evidence: r.i64s("evidence", i)?,
            title: j.title,
            detail: Some(j.detail.to_string()),
            actor: j.actor,
        })
    }

    fn string(&self, id: u32) -> &str {
        self.strings.text(id)
    }

    fn actor_by_ip(&self, ip: u32) -> Actor {
        Actor {
            ip: (ip != NONE).then(|| self.string(ip).to_owned()),
            ..Actor::default()
        }
    }

    /// Brute force and credential stuffing: bursts of failed logins per address.
    fn logins(&self, f: &LazyFrame, t: &Thresholds, out: &mut Vec<NewFinding>) -> PolarsResult<()> {
        let rows = failed_login_bursts(f, t)?;
        let r = Rows(&rows);
        for i in 0..rows.height() {
            out.push(self.login_finding(&r, i, t)?);
        }
        Ok(())
    }

    /// Judges one address's burst of failed logins: stuffing when it tried many accounts,
    /// brute force otherwise; critical when a login then succeeded.
    fn login_finding(&self, r: &Rows, i: usize, t: &Thresholds) -> PolarsResult<NewFinding> {
        let ip = r.u32("ip", i)?.unwrap_or(NONE);
        let usernames = r.u32s("usernames", i)?;
        let succeeded: Vec<&str> = r
            .u32s("succeeded", i)?
            .into_iter()
            .map(|u| self.string(u))
            .collect();
        let names: Vec<&str> = usernames.iter().map(|&u| self.string(u)).collect();
        let failures = r.i64("failures", i)?.unwrap_or(0);
        let peak = r.i64("peak", i)?.unwrap_or(0);
        let stuffing = names.len() >= t.stuffing_usernames as usize;
        let (kind, what) = if stuffing {
            (
                FindingKind::CredentialStuffing,
                format!(
                    "Credential stuffing: {failures} failed logins for {} accounts",
                    names.len()
                ),
            )
        } else {
            let whom = match names.as_slice() {
                [one] => format!(" for {one}"),
                [] => String::new(),
                many => format!(" for {} accounts", many.len()),
            };
            (
                FindingKind::BruteForce,
                format!("Brute force: {failures} failed logins{whom}"),
            )
        };
        let actor = self.actor_by_ip(ip);
        let then = if succeeded.is_empty() {
            String::new()
        } else {
            format!(", then logged in as {}", succeeded.join(", "))
        };
        self.finding(
            r,
            i,
            Judgement {
                kind,
                severity: if succeeded.is_empty() {
                    Severity::High
                } else {
                    Severity::Critical
                },
                confidence: if peak >= 2 * i64::from(t.login_failures) {
                    0.9
                } else {
                    0.7
                },
                endpoint: r.u32("endpoint", i)?.and_then(|e| self.endpoint_of(e)),
                count: failures as u64,
                title: format!("{what} from {}{then}", describe(&actor)),
                detail: serde_json::json!({
                    "failures": failures,
                    "peak_per_window": peak,
                    "window_s": t.window_ns / 1_000_000_000,
                    "threshold": t.login_failures,
                    "accounts": names.iter().take(50).collect::<Vec<_>>(),
                    "accounts_tried": names.len(),
                    "logged_in_after": succeeded,
                }),
                actor,
            },
        )
    }

    /// BOLA: a principal succeeding on many objects of an endpoint where others touch few, on
    /// objects named after other principals, or on objects other principals own where the
    /// endpoint's principals otherwise keep to their own.
    fn bola(&self, f: &LazyFrame, t: &Thresholds, out: &mut Vec<NewFinding>) -> PolarsResult<()> {
        let rows = principal_objects(f)?;
        let r = Rows(&rows);
        let ownership = Ownership::of(self);
        let spread = ObjectSpread::of(&r, &ownership)?;
        for i in 0..rows.height() {
            if let Some(finding) = self.bola_finding(&r, i, &spread, &ownership, t)? {
                out.push(finding);
            }
        }
        Ok(())
    }

    /// Judges one principal on one endpoint against the endpoint's other principals.
    fn bola_finding(
        &self,
        r: &Rows,
        i: usize,
        spread: &ObjectSpread,
        ownership: &Ownership,
        t: &Thresholds,
    ) -> PolarsResult<Option<NewFinding>> {
        let (Some(e), Some(p)) = (r.u32("endpoint", i)?, r.u32("principal", i)?) else {
            return Ok(None);
        };
        let objects = r.u32s("objects", i)?;
        let foreign: Vec<&str> = objects
            .iter()
            .filter(|&&o| o != p && spread.principals.contains(&o))
            .map(|&o| self.string(o))
            .collect();
        let others = spread.others(e, p);
        let typical = others.get(others.len() / 2).copied();
        let walk = objects.len() >= t.bola_objects as usize
            && typical.is_some_and(|m| objects.len() as f64 >= t.bola_ratio * m.max(1) as f64);
        let named = foreign.len() >= t.bola_foreign as usize;
        let owned: Vec<(&str, &str, Origin)> = ownership
            .others_objects(e, p, &objects)
            .into_iter()
            .map(|(o, q, how)| (self.string(o), self.string(q), how))
            .collect();
        let trespass = !ownership.public.contains(&e)
            && owned.len() >= t.bola_foreign as usize
            && owned.len() * 2 >= objects.len()
            && spread.others_keep_to_their_own(e, p);
        if !walk && !named && !trespass {
            return Ok(None);
        }
        let actor = self.actor_at(r.u32("actor", i)?);
        let endpoint = self.endpoint_of(e);
        let on = format!(" on {}", label(endpoint.as_ref()));
        let mut why = Vec::new();
        if walk {
            why.push(format!(
                "{} distinct objects where other principals touch {} (median)",
                objects.len(),
                typical.unwrap_or(0)
            ));
        }
        if named {
            why.push(format!(
                "{} objects named after other principals",
                foreign.len()
            ));
        }
        if trespass {
            why.push(format!(
                "{} objects owned by other principals, where the others keep to their own",
                owned.len()
            ));
        }
        let mut sample: Vec<&str> = objects.iter().map(|&o| self.string(o)).collect();
        sample.sort_by(|a, b| natural(a, b));
        sample.truncate(50);
        let judgement = Judgement {
            kind: FindingKind::Bola,
            severity: Severity::High,
            confidence: if [walk, named, trespass].iter().filter(|&&b| b).count() >= 2 {
                0.9
            } else {
                0.6
            },
            endpoint,
            count: r.i64("requests", i)?.unwrap_or(0) as u64,
            title: format!(
                "Broken object-level authorisation: {} reached {} objects{on}",
                describe(&actor),
                objects.len()
            ),
            detail: serde_json::json!({
                "objects": objects.len(),
                "others_median_objects": typical,
                "other_principals": others.len(),
                "foreign_objects": foreign,
                "objects_of_other_owners": owned.iter().take(50).map(|(o, q, how)| serde_json::json!({
                    "object": o,
                    "owner": q,
                    "owner_because": match how {
                        Origin::Created => "created it",
                        Origin::FirstReached => "reached it first",
                    },
                })).collect::<Vec<_>>(),
                "object_sample": sample,
                "why": why,
            }),
            actor,
        };
        self.finding(r, i, judgement).map(Some)
    }

    /// Broken authentication: anonymous success on an endpoint that otherwise sees credentials
    /// and turns anonymous requests away.
    fn broken_auth(
        &self,
        f: &LazyFrame,
        t: &Thresholds,
        out: &mut Vec<NewFinding>,
    ) -> PolarsResult<()> {
        let suspect = suspect_endpoints(f, t)?;
        if suspect.is_empty() {
            return Ok(());
        }
        let anonymous = col("creds").not();
        let success = status_in(200, 299);
        let suspect = DataFrame::new(suspect.len(), vec![Column::new("endpoint".into(), suspect)])?;
        let rows = f
            .clone()
            .filter(anonymous.and(success))
            .inner_join(suspect.lazy(), col("endpoint"), col("endpoint"))
            .group_by([col("endpoint"), col("actor")])
            .agg([
                len().cast(DataType::Int64).alias("requests"),
                col("ts").min().alias("first"),
                col("ts").max().alias("last"),
                evidence_ids(),
            ])
            .sort(["endpoint", "actor"], Default::default())
            .collect()?;
        let r = Rows(&rows);
        for i in 0..rows.height() {
            let actor = self.actor_at(r.u32("actor", i)?);
            let endpoint = r.u32("endpoint", i)?.and_then(|e| self.endpoint_of(e));
            let on = label(endpoint.as_ref());
            let n = r.i64("requests", i)?.unwrap_or(0);
            out.push(self.finding(
                &r,
                i,
                Judgement {
                    kind: FindingKind::BrokenAuthentication,
                    severity: Severity::High,
                    confidence: 0.8,
                    endpoint,
                    count: n as u64,
                    title: format!(
                    "Broken authentication: {on} answered {n} request(s) from {} without credentials",
                    describe(&actor)
                ),
                    detail: serde_json::json!({
                        "why": "the endpoint otherwise sees credentials and refuses requests without them",
                    }),
                    actor,
                },
            )?);
        }
        Ok(())
    }

    /// Scraping and enumeration: an actor's rate on an endpoint far above the endpoint's
    /// typical actor.
    fn scraping(
        &self,
        f: &LazyFrame,
        t: &Thresholds,
        out: &mut Vec<NewFinding>,
    ) -> PolarsResult<()> {
        let on_endpoint = f.clone().filter(col("endpoint").is_not_null());
        for busy in busy_actors(&on_endpoint, t)? {
            out.push(self.scraping_finding(&on_endpoint, busy, t)?);
        }
        Ok(())
    }

    /// Judges one busy actor on one endpoint: enumeration when it walks many objects or
    /// mostly misses, scraping otherwise.
    fn scraping_finding(
        &self,
        on_endpoint: &LazyFrame,
        busy: Busy,
        t: &Thresholds,
    ) -> PolarsResult<NewFinding> {
        let Busy {
            endpoint: e,
            actor: a,
            peak: p,
            typical,
        } = busy;
        let rows = on_endpoint
            .clone()
            .filter(col("endpoint").eq(lit(e)).and(col("actor").eq(lit(a))))
            .select([
                len().cast(DataType::Int64).alias("requests"),
                col("object")
                    .drop_nulls()
                    .n_unique()
                    .cast(DataType::Int64)
                    .alias("objects"),
                status_in(400, 499)
                    .cast(DataType::Int64)
                    .sum()
                    .alias("client_errors"),
                col("ts").min().alias("first"),
                col("ts").max().alias("last"),
                evidence_ids(),
            ])
            .collect()?;
        let r = Rows(&rows);
        let requests = r.i64("requests", 0)?.unwrap_or(0);
        let objects = r.i64("objects", 0)?.unwrap_or(0);
        let misses = r.i64("client_errors", 0)?.unwrap_or(0);
        // Walking many objects (or mostly missing) is enumeration; the same few, scraping.
        let enumeration = objects * 2 >= i64::from(t.scrape_min) || misses * 2 >= requests;
        let actor = self.actor_at(Some(a));
        let endpoint = self.endpoint_of(e);
        let on = label(endpoint.as_ref());
        let (kind, what) = if enumeration {
            (FindingKind::Enumeration, "Enumeration")
        } else {
            (FindingKind::Scraping, "Scraping")
        };
        self.finding(
            &r,
            0,
            Judgement {
                kind,
                severity: Severity::Medium,
                confidence: if p as f64 >= 2.0 * t.scrape_ratio * typical.max(1) as f64 {
                    0.8
                } else {
                    0.6
                },
                endpoint,
                count: requests as u64,
                title: format!(
                    "{what}: {} sent {p} requests in a minute to {on} (typical client: {typical})",
                    describe(&actor)
                ),
                detail: serde_json::json!({
                    "peak_per_window": p,
                    "typical_per_window": typical,
                    "window_s": t.window_ns / 1_000_000_000,
                    "requests": requests,
                    "distinct_objects": objects,
                    "client_errors": misses,
                }),
                actor,
            },
        )
    }

    /// Error-rate spikes: a window where an endpoint's server errors jump.
    fn error_spikes(
        &self,
        f: &LazyFrame,
        t: &Thresholds,
        out: &mut Vec<NewFinding>,
    ) -> PolarsResult<()> {
        let on_endpoint = f.clone().filter(col("endpoint").is_not_null());
        let rows = error_windows(&on_endpoint, t)?;
        let r = Rows(&rows);
        let mut done: HashSet<u32> = HashSet::new();
        for i in 0..rows.height() {
            let Some(e) = r.u32("endpoint", i)? else {
                continue;
            };
            let n = r.i64("n", i)?.unwrap_or(0) as f64;
            let errors = r.i64("errors", i)?.unwrap_or(0) as f64;
            let outside_n = r.i64("total", i)?.unwrap_or(0) as f64 - n;
            let outside_errors = r.i64("total_errors", i)?.unwrap_or(0) as f64 - errors;
            let share = errors / n.max(1.0);
            let before = if outside_n > 0.0 {
                outside_errors / outside_n
            } else {
                0.0
            };
            if share < t.error_share || share < t.error_ratio * before || !done.insert(e) {
                continue;
            }
            // Whose requests failed most in the window: the likely cause.
            let (first, last) = (
                r.i64("first", i)?.unwrap_or(0),
                r.i64("last", i)?.unwrap_or(0),
            );
            let top = top_failing_actor(&on_endpoint, e, first, last)?;
            let actor = self.actor_at(top);
            let endpoint = self.endpoint_of(e);
            let on = label(endpoint.as_ref());
            out.push(self.finding(
                &r,
                i,
                Judgement {
                    kind: FindingKind::ErrorSpike,
                    severity: Severity::Medium,
                    confidence: 0.7,
                    endpoint,
                    count: errors as u64,
                    title: format!(
                    "Error spike: {on} failed {errors} of {n} requests in a minute ({:.0}% vs {:.0}% otherwise), mostly for {}",
                    share * 100.0,
                    before * 100.0,
                    describe(&actor)
                ),
                    detail: serde_json::json!({
                        "errors": errors,
                        "requests": n,
                        "share": share,
                        "share_outside": before,
                        "window_s": t.window_ns / 1_000_000_000,
                    }),
                    actor,
                },
            )?);
        }
        Ok(())
    }
}

/// Per address with a burst of failed logins at or above the threshold: its failures, peak
/// per window, accounts tried and accounts it then logged in as.
fn failed_login_bursts(f: &LazyFrame, t: &Thresholds) -> PolarsResult<DataFrame> {
    let failed = f.clone().filter(
        col("login")
            .and(is_denied_expr())
            .and(col("ip").is_not_null()),
    );
    let peaks = window_counts(failed.clone(), &["ip"])?
        .group_by([col("ip")])
        .agg([col("n").max().alias("peak")]);
    let per_ip = failed.group_by([col("ip")]).agg([
        len().cast(DataType::Int64).alias("failures"),
        col("ts").min().alias("first"),
        col("ts").max().alias("last"),
        col("endpoint").first().alias("endpoint"),
        col("username")
            .drop_nulls()
            .unique()
            .implode(false)
            .alias("usernames"),
        evidence_ids(),
    ]);
    let succeeded = f
        .clone()
        .filter(col("login").and(status_in(200, 299)))
        .group_by([col("ip")])
        .agg([col("username")
            .drop_nulls()
            .unique()
            .implode(false)
            .alias("succeeded")]);
    per_ip
        .inner_join(peaks, col("ip"), col("ip"))
        .filter(col("peak").gt_eq(lit(i64::from(t.login_failures))))
        .left_join(succeeded, col("ip"), col("ip"))
        .sort(["ip"], Default::default())
        .collect()
}

/// Per endpoint and principal, its successful requests: the distinct objects it reached.
fn principal_objects(f: &LazyFrame) -> PolarsResult<DataFrame> {
    f.clone()
        .filter(
            col("principal")
                .is_not_null()
                .and(col("object").is_not_null())
                .and(col("endpoint").is_not_null())
                .and(status_in(200, 299)),
        )
        .group_by([col("endpoint"), col("principal")])
        .agg([
            len().cast(DataType::Int64).alias("requests"),
            col("object").unique().implode(false).alias("objects"),
            col("ts").min().alias("first"),
            col("ts").max().alias("last"),
            col("actor").first().alias("actor"),
            evidence_ids(),
        ])
        .sort(["endpoint", "principal"], Default::default())
        .collect()
}

/// How objects spread over principals: who the principals are, and per endpoint each
/// principal's count of distinct objects and of those owned by other principals.
struct ObjectSpread {
    principals: HashSet<u32>,
    per_endpoint: HashMap<u32, Vec<Reach>>,
}

/// What one principal reached on one endpoint.
struct Reach {
    principal: u32,
    objects: usize,
    of_others: usize,
}

impl ObjectSpread {
    fn of(r: &Rows, ownership: &Ownership) -> PolarsResult<Self> {
        let mut principals = HashSet::new();
        let mut per_endpoint: HashMap<u32, Vec<Reach>> = HashMap::new();
        for i in 0..r.0.height() {
            let (e, p) = (r.u32("endpoint", i)?, r.u32("principal", i)?);
            principals.extend(p);
            if let (Some(e), Some(p)) = (e, p) {
                let objects = r.u32s("objects", i)?;
                per_endpoint.entry(e).or_default().push(Reach {
                    principal: p,
                    objects: objects.len(),
                    of_others: ownership.count_others(e, p, &objects),
                });
            }
        }
        Ok(Self {
            principals,
            per_endpoint,
        })
    }

    fn reaches(&self, e: u32, p: u32) -> impl Iterator<Item = &Reach> {
        self.per_endpoint
            .get(&e)
            .into_iter()
            .flatten()
            .filter(move |r| r.principal != p)
    }

    /// The other principals' object counts on endpoint `e`, sorted.
    fn others(&self, e: u32, p: u32) -> Vec<usize> {
        let mut others: Vec<usize> = self.reaches(e, p).map(|r| r.objects).collect();
        others.sort_unstable();
        others
    }

    /// Whether the other principals on `e` mostly reach objects they own: the typical one
    /// reaches at most a quarter of others' (none there: nothing says otherwise).
    fn others_keep_to_their_own(&self, e: u32, p: u32) -> bool {
        let mut shares: Vec<f64> = self
            .reaches(e, p)
            .map(|r| r.of_others as f64 / r.objects.max(1) as f64)
            .collect();
        shares.sort_by(f64::total_cmp);
        shares.get(shares.len() / 2).is_none_or(|&m| m <= 0.25)
    }
}

/// Owners of the objects endpoints address, and which endpoints serve anonymous clients.
struct Ownership {
    owners: Owners,
    /// Per endpoint id, the object space of its last parameter (host + template up to it).
    space: Vec<Option<u32>>,
    /// Endpoints that answered a request without credentials successfully: public objects.
    public: HashSet<u32>,
    /// Key ids of the objects whose path segment decodes to something else (`%` escapes);
    /// every other object is its own key.
    decoded: HashMap<u32, u32>,
}

impl Ownership {
    fn of(b: &Behaviour) -> Ownership {
        let mut spaces: Interner<String> = Interner::default();
        let space: Vec<Option<u32>> = b
            .endpoints
            .items
            .iter()
            .map(|k| object_space(k, false).map(|s| spaces.id(s)))
            .collect();
        let created: Vec<Option<u32>> = b
            .endpoints
            .items
            .iter()
            .map(|k| object_space(k, true).map(|s| spaces.id(s)))
            .collect();
        let mut public = HashSet::new();
        let mut keys = KeyIds::new(&b.strings);
        // Every successful reach of an object by a principal: the earliest one owns it.
        let mut reaches = Vec::new();
        for i in 0..b.id.len() {
            let e = b.endpoint[i];
            if e == NONE || !(200..300).contains(&b.status[i]) {
                continue;
            }
            if !b.creds[i] {
                public.insert(e);
            }
            let principal = b.actor_ids[b.actor[i] as usize].principal;
            let (o, Some(s)) = (b.object[i], space[e as usize]) else {
                continue;
            };
            if principal != NONE && o != NONE {
                reaches.push((s, keys.learn(o), principal, b.ts[i]));
            }
        }
        // A created value is compared as written in the body (no decoding).
        let creations = b.creations.items.iter().filter_map(|c| {
            let s = created.get(c.endpoint as usize).copied().flatten()?;
            Some((s, c.value, c.principal, c.ts))
        });
        Ownership {
            owners: Owners::learn(creations, reaches.into_iter()),
            space,
            public,
            decoded: keys.decoded,
        }
    }

    /// The key id of object `o` (a string id of `b`).
    fn key(&self, o: u32) -> u32 {
        self.decoded.get(&o).copied().unwrap_or(o)
    }

    /// The objects among `objects` (reached by `p` on `e`) that other principals own, with
    /// their owners.
    fn others_objects(&self, e: u32, p: u32, objects: &[u32]) -> Vec<(u32, u32, Origin)> {
        let Some(space) = self.space.get(e as usize).copied().flatten() else {
            return Vec::new();
        };
        objects
            .iter()
            .filter_map(|&o| match self.owners.owner(space, self.key(o)) {
                Some((q, how)) if q != p => Some((o, q, how)),
                _ => None,
            })
            .collect()
    }

    fn count_others(&self, e: u32, p: u32, objects: &[u32]) -> usize {
        let Some(space) = self.space.get(e as usize).copied().flatten() else {
            return 0;
        };
        objects
            .iter()
            .filter(|&&o| matches!(self.owners.owner(space, self.key(o)), Some((q, _)) if q != p))
            .count()
    }
}

/// Assigns object keys their ids: a path segment's key is its percent-decoded text, which for
/// almost every segment is the segment itself (its own string id). Decoded texts that are
/// another string of the tables take that string's id (so they meet values created under it);
/// the rest get ids past the tables' end.
struct KeyIds<'a> {
    strings: &'a Interner<String>,
    /// Object string id → key id, for segments with `%` escapes.
    decoded: HashMap<u32, u32>,
    /// Decoded texts that are none of the tables' strings.
    extra: HashMap<String, u32>,
}

impl<'a> KeyIds<'a> {
    fn new(strings: &'a Interner<String>) -> Self {
        KeyIds {
            strings,
            decoded: HashMap::new(),
            extra: HashMap::new(),
        }
    }

    fn learn(&mut self, o: u32) -> u32 {
        let raw = self.strings.text(o);
        if !raw.contains('%') {
            return o;
        }
        if let Some(&k) = self.decoded.get(&o) {
            return k;
        }
        let text = super::values::decoded(raw);
        let k = match self.strings.ids.get(text.as_str()) {
            Some(&id) => id,
            None => {
                let next = (self.strings.items.len() + self.extra.len()) as u32;
                *self.extra.entry(text).or_insert(next)
            }
        };
        self.decoded.insert(o, k);
        k
    }
}

/// The object space of an endpoint key (`host \0 method \0 template`): host and template up
/// to its last parameter, that parameter written `{}`, so every method on `/books/v1/{title}`
/// shares one. With `created`, the space a creation on a collection (`POST /books/v1`) fills.
fn object_space(key: &str, created: bool) -> Option<String> {
    let mut parts = key.split('\0');
    let (host, _method, template) = (parts.next()?, parts.next()?, parts.next()?);
    let template = template.trim_end_matches('/');
    if created {
        return (!template.ends_with('}')).then(|| format!("{host}\0{template}/{{}}"));
    }
    let (parent, last) = template.rsplit_once('/')?;
    (last.starts_with('{') && last.ends_with('}')).then(|| format!("{host}\0{parent}/{{}}"))
}

/// Endpoints that are mostly called with credentials and where anonymous success is the
/// exception: someone without credentials was turned away, or almost nobody comes without.
fn suspect_endpoints(f: &LazyFrame, t: &Thresholds) -> PolarsResult<Vec<u32>> {
    let anonymous = col("creds").not();
    let success = status_in(200, 299);
    let endpoints = f
        .clone()
        .filter(col("endpoint").is_not_null().and(col("login").not()))
        .group_by([col("endpoint")])
        .agg([
            col("creds").cast(DataType::Int64).sum().alias("with_creds"),
            anonymous
                .clone()
                .and(is_denied_expr())
                .cast(DataType::Int64)
                .sum()
                .alias("denied_anon"),
            anonymous
                .clone()
                .and(success.clone())
                .cast(DataType::Int64)
                .sum()
                .alias("anon_ok"),
        ])
        .filter(
            col("anon_ok")
                .gt(lit(0i64))
                .and(col("with_creds").gt_eq(lit(i64::from(t.auth_min)))),
        )
        .collect()?;
    let r = Rows(&endpoints);
    let mut suspect: Vec<u32> = Vec::new();
    for i in 0..endpoints.height() {
        let with = r.i64("with_creds", i)?.unwrap_or(0) as f64;
        let anon_ok = r.i64("anon_ok", i)?.unwrap_or(0) as f64;
        let denied = r.i64("denied_anon", i)?.unwrap_or(0);
        // Mostly credentialed, and either someone without credentials was turned away or
        // almost nobody comes without them: anonymous success is then the exception.
        let rule =
            with >= 0.8 * (with + anon_ok) && (denied > 0 || with >= 0.95 * (with + anon_ok));
        if let Some(e) = r.u32("endpoint", i)?.filter(|_| rule) {
            suspect.push(e);
        }
    }
    Ok(suspect)
}

/// An actor whose peak rate on an endpoint is far above the endpoint's typical actor.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Busy {
    endpoint: u32,
    actor: u32,
    peak: i64,
    typical: i64,
}

/// The busy actors of every endpoint, in (endpoint, actor) order.
fn busy_actors(on_endpoint: &LazyFrame, t: &Thresholds) -> PolarsResult<Vec<Busy>> {
    let by = ["endpoint", "actor"];
    let windows = window_counts(on_endpoint.clone(), &by)?
        .select([col("endpoint"), col("actor"), col("n")])
        .collect()?;
    // Per endpoint, each actor's window counts; per (endpoint, actor), its peak.
    let r = Rows(&windows);
    let mut per_endpoint: HashMap<u32, Vec<(u32, i64)>> = HashMap::new();
    let mut peak: HashMap<(u32, u32), i64> = HashMap::new();
    for i in 0..windows.height() {
        let (Some(e), Some(a)) = (r.u32("endpoint", i)?, r.u32("actor", i)?) else {
            continue;
        };
        let n = r.i64("n", i)?.unwrap_or(0);
        per_endpoint.entry(e).or_default().push((a, n));
        let p = peak.entry((e, a)).or_default();
        *p = (*p).max(n);
    }
    let mut flagged: Vec<Busy> = Vec::new();
    for (&(e, a), &p) in &peak {
        if p < i64::from(t.scrape_min) {
            continue;
        }
        let mut others: Vec<i64> = per_endpoint
            .get(&e)
            .map(|v| v.iter().filter(|(b, _)| *b != a).map(|(_, n)| *n).collect())
            .unwrap_or_default();
        if others.is_empty() {
            continue; // no one to compare with
        }
        others.sort_unstable();
        let typical = others[others.len() / 2];
        if p as f64 >= t.scrape_ratio * typical.max(1) as f64 {
            flagged.push(Busy {
                endpoint: e,
                actor: a,
                peak: p,
                typical,
            });
        }
    }
    flagged.sort_unstable();
    Ok(flagged)
}

/// Per endpoint and minute window (two grids offset by half a window) with at least the
/// threshold of server errors: the window's requests and errors, the endpoint's totals.
fn error_windows(on_endpoint: &LazyFrame, t: &Thresholds) -> PolarsResult<DataFrame> {
    let error = col("status").gt_eq(lit(500));
    let totals = on_endpoint.clone().group_by([col("endpoint")]).agg([
        len().cast(DataType::Int64).alias("total"),
        error
            .clone()
            .cast(DataType::Int64)
            .sum()
            .alias("total_errors"),
    ]);
    let mut grids = Vec::new();
    for grid in ["win0", "win1"] {
        let windowed = on_endpoint.clone().with_column(col(grid).alias("win"));
        let counts = windowed
            .clone()
            .group_by([col("endpoint"), col("win")])
            .agg([
                len().cast(DataType::Int64).alias("n"),
                error.clone().cast(DataType::Int64).sum().alias("errors"),
            ]);
        let failed = windowed
            .filter(error.clone())
            .group_by([col("endpoint"), col("win")])
            .agg([
                col("ts").min().alias("first"),
                col("ts").max().alias("last"),
                evidence_ids(),
            ]);
        let on = [col("endpoint"), col("win")];
        grids.push(counts.join(failed, on.clone(), on, JoinArgs::new(JoinType::Inner)));
    }
    concat(grids, UnionArgs::default())?
        .filter(col("errors").gt_eq(lit(i64::from(t.error_min))))
        .inner_join(totals, col("endpoint"), col("endpoint"))
        .sort(
            ["endpoint", "errors"],
            SortMultipleOptions::default().with_order_descending_multi([false, true]),
        )
        .collect()
}

/// The actor whose requests to endpoint `e` failed most between `first` and `last`.
fn top_failing_actor(
    on_endpoint: &LazyFrame,
    e: u32,
    first: i64,
    last: i64,
) -> PolarsResult<Option<u32>> {
    let top = on_endpoint
        .clone()
        .filter(
            col("endpoint")
                .eq(lit(e))
                .and(col("status").gt_eq(lit(500)))
                .and(col("ts").gt_eq(lit(first)))
                .and(col("ts").lt_eq(lit(last))),
        )
        .group_by([col("actor")])
        .agg([len().cast(DataType::Int64).alias("n")])
        .sort(
            ["n", "actor"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(1)
        .collect()?;
    Rows(&top).u32("actor", 0)
}

/// `lo <= status <= hi`.
fn status_in(lo: i32, hi: i32) -> Expr {
    col("status")
        .gt_eq(lit(lo))
        .and(col("status").lt_eq(lit(hi)))
}

/// What a detector concluded about one group.
struct Judgement {
    kind: FindingKind,
    severity: Severity,
    confidence: f64,
    endpoint: Option<EndpointKey>,
    count: u64,
    title: String,
    detail: serde_json::Value,
    actor: Actor,
}

/// `GET api.test/users/{userId}`.
fn label(endpoint: Option<&EndpointKey>) -> String {
    endpoint.map(ToString::to_string).unwrap_or_default()
}

/// The first [`MAX_EVIDENCE`] transaction ids of a group, as the list column `evidence`.
fn evidence_ids() -> Expr {
    col("id")
        .sort(Default::default())
        .head(Some(MAX_EVIDENCE))
        .implode(false)
        .alias("evidence")
}

fn is_denied_expr() -> Expr {
    col("status").eq(lit(401)).or(col("status").eq(lit(403)))
}

/// Request counts per `by` and window, over both window grids (column `n`).
fn window_counts(f: LazyFrame, by: &[&str]) -> PolarsResult<LazyFrame> {
    let mut keys: Vec<Expr> = by.iter().map(|c| col(*c)).collect();
    keys.push(col("win"));
    let grids: Vec<LazyFrame> = ["win0", "win1"]
        .into_iter()
        .map(|grid| {
            f.clone()
                .with_column(col(grid).alias("win"))
                .group_by(keys.clone())
                .agg([len().cast(DataType::Int64).alias("n")])
        })
        .collect();
    concat(grids, UnionArgs::default())
}

/// Compare `"9"` before `"10"`.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Typed reads from a collected frame; a missing column or null reads as `None`/empty.
struct Rows<'a>(&'a DataFrame);

impl Rows<'_> {
    // A column that is missing or of another type is an error (a misspelled name in a query
    // must fail loudly, not read as zero); a null cell is `None`.
    fn i64(&self, name: &str, row: usize) -> PolarsResult<Option<i64>> {
        Ok(self.0.column(name)?.i64()?.get(row))
    }

    fn u32(&self, name: &str, row: usize) -> PolarsResult<Option<u32>> {
        Ok(self.0.column(name)?.u32()?.get(row))
    }

    fn list(&self, name: &str, row: usize) -> PolarsResult<Option<Series>> {
        Ok(self.0.column(name)?.list()?.get_as_series(row))
    }

    fn i64s(&self, name: &str, row: usize) -> PolarsResult<Vec<i64>> {
        match self.list(name, row)? {
            Some(s) => Ok(s.i64()?.iter().flatten().collect()),
            None => Ok(Vec::new()),
        }
    }

    fn u32s(&self, name: &str, row: usize) -> PolarsResult<Vec<u32>> {
        match self.list(name, row)? {
            Some(s) => Ok(s.u32()?.iter().flatten().collect()),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn a_misspelled_column_is_an_error_not_zero() {
        let df = DataFrame::new(
            1,
            vec![
                Column::new("requests".into(), [3i64]),
                Column::new("ids".into(), [7u32]),
            ],
        )
        .unwrap();
        let r = Rows(&df);
        assert_eq!(r.i64("requests", 0).unwrap(), Some(3));
        assert!(r.i64("reqeusts", 0).is_err());
        assert!(r.u32("requests", 0).is_err(), "wrong type");
        assert!(r.i64s("ids", 0).is_err(), "not a list");
    }

    /// A request from `ip` (with `user`'s JWT when given) at second `t`.
    fn tx(
        t: i64,
        ip: &str,
        method: &str,
        path: &str,
        status: u16,
        user: Option<&str>,
    ) -> Transaction {
        let mut tx = Transaction {
            request_ts_nanos: 1_700_000_000 * SEC + t * SEC,
            client: format!("{ip}:40000").parse().ok(),
            method: method.to_owned().into(),
            uri: path.to_owned(),
            status: Some(status),
            ..Transaction::default()
        };
        if let Some(u) = user {
            let claims = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                format!("{{\"sub\":\"{u}\"}}"),
            );
            tx.request_headers.push(
                "Authorization",
                &format!("Bearer eyJhbGciOiJIUzI1NiJ9.{claims}.c2ln"),
            );
        }
        tx
    }

    pub(super) fn login(t: i64, ip: &str, user: &str, status: u16) -> Transaction {
        let mut tx = tx(t, ip, "POST", "/api/login", status, None);
        tx.request_body.data =
            format!("{{\"username\":\"{user}\",\"password\":\"x\"}}").into_bytes();
        tx
    }

    pub(super) fn see(
        b: &mut Behaviour,
        id: i64,
        tx: &Transaction,
        template: &str,
        object: Option<&str>,
    ) {
        let key = format!("api.test\0{}\0{template}", tx.method);
        b.observe(id, tx, Some(&key), object);
    }

    fn kinds(b: &Behaviour) -> Vec<String> {
        let mut k: Vec<String> = b
            .finish(&Thresholds::default())
            .unwrap()
            .into_iter()
            .map(|f| f.kind.to_string())
            .collect();
        k.sort();
        k
    }

    #[test]
    fn failed_logins_make_a_burst_only_past_the_threshold() {
        let mut b = Behaviour::default();
        for i in 0..9 {
            see(
                &mut b,
                i,
                &login(i, "10.0.0.9", "alice", 401),
                "/api/login",
                None,
            );
        }
        assert!(kinds(&b).is_empty(), "9 failures are below 10");
        see(
            &mut b,
            9,
            &login(9, "10.0.0.9", "alice", 401),
            "/api/login",
            None,
        );
        assert_eq!(kinds(&b), ["brute_force"]);
        // The same ten failures spread over ten minutes are no burst.
        let mut slow = Behaviour::default();
        for i in 0..10 {
            see(
                &mut slow,
                i,
                &login(i * 70, "10.0.0.9", "alice", 401),
                "/api/login",
                None,
            );
        }
        assert!(kinds(&slow).is_empty());
    }

    #[test]
    fn a_burst_split_across_shards_is_found_after_absorb() {
        let (mut a, mut b) = (Behaviour::default(), Behaviour::default());
        for i in 0..6 {
            see(
                &mut a,
                i,
                &login(i, "10.0.0.9", &format!("user{i}"), 401),
                "/api/login",
                None,
            );
            see(
                &mut b,
                10 + i,
                &login(i, "10.0.0.9", &format!("other{i}"), 401),
                "/api/login",
                None,
            );
        }
        see(
            &mut b,
            20,
            &login(7, "10.0.0.9", "carol", 200),
            "/api/login",
            None,
        );
        assert!(kinds(&a).is_empty() && kinds(&b).is_empty());
        a.absorb(b);
        let out = a.finish(&Thresholds::default()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, FindingKind::CredentialStuffing);
        assert_eq!(out[0].severity, Severity::Critical, "{}", out[0].title);
        assert_eq!(out[0].actor.ip.as_deref(), Some("10.0.0.9"));
        assert!(
            out[0].title.ends_with("then logged in as carol"),
            "{}",
            out[0].title
        );
    }

    #[test]
    fn bola_needs_a_baseline_or_other_principals_objects() {
        let mut b = Behaviour::default();
        let mut id = 0;
        // One principal reading 30 records, nobody to compare with: a catalogue, not BOLA.
        for n in 0..30 {
            let t = tx(
                n,
                "10.0.0.6",
                "GET",
                &format!("/users/{}", 100 + n),
                200,
                Some("mallory"),
            );
            see(
                &mut b,
                id,
                &t,
                "/users/{userId}",
                Some(&(100 + n).to_string()),
            );
            id += 1;
        }
        assert!(kinds(&b).is_empty());
        // Three users each reading their own record: now 30 is far above the others' 1.
        for u in ["1", "2", "3"] {
            let t = tx(40, "10.0.0.1", "GET", &format!("/users/{u}"), 200, Some(u));
            see(&mut b, id, &t, "/users/{userId}", Some(u));
            id += 1;
        }
        assert_eq!(kinds(&b), ["bola"]);
    }

    #[test]
    fn objects_named_after_other_principals_are_bola_without_a_walk() {
        let mut b = Behaviour::default();
        let mut id = 0;
        for u in ["1", "2", "3", "4"] {
            let t = tx(1, "10.0.0.1", "GET", &format!("/users/{u}"), 200, Some(u));
            see(&mut b, id, &t, "/users/{userId}", Some(u));
            id += 1;
        }
        for u in ["1", "2", "3"] {
            let t = tx(
                5,
                "10.0.0.6",
                "GET",
                &format!("/users/{u}/orders"),
                200,
                Some("9"),
            );
            see(&mut b, id, &t, "/users/{userId}/orders", Some(u));
            id += 1;
        }
        let out = b.finish(&Thresholds::default()).unwrap();
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].actor.user.as_deref(), Some("9"));
        assert_eq!(out[0].count, 3);
    }

    #[test]
    fn object_keys_meet_whatever_spelling_decodes_to_them() {
        let mut strings = Interner::default();
        let [road, escaped, odd, odder, plain] =
            ["The Road", "The%20Road", "n%C3%B6", "n%c3%b6", "sicp"].map(|s| strings.id_str(s));
        let mut keys = KeyIds::new(&strings);
        assert_eq!(
            keys.learn(escaped),
            road,
            "the decoded text is a known string"
        );
        assert_eq!(keys.learn(plain), plain, "no escapes: its own key");
        let fresh = keys.learn(odd);
        assert!(
            fresh as usize >= strings.items.len(),
            "nö is none of the strings"
        );
        assert_eq!(keys.learn(odder), fresh, "both spellings are one object");
    }

    /// `who` adds a book by POSTing its title.
    fn add_book(b: &mut Behaviour, id: i64, who: &str, title: &str) {
        let mut t = tx(1, "10.0.0.1", "POST", "/books/v1", 201, Some(who));
        t.request_body.data = format!(r#"{{"book_title": "{title}", "secret": "s"}}"#).into_bytes();
        see(b, id, &t, "/books/v1", None);
    }

    fn read_book(b: &mut Behaviour, id: i64, ip: &str, who: Option<&str>, title: &str) {
        let path = format!("/books/v1/{}", title.replace(' ', "%20"));
        let t = tx(2, ip, "GET", &path, 200, who);
        see(
            b,
            id,
            &t,
            "/books/v1/{title}",
            Some(&path["/books/v1/".len()..]),
        );
    }

    #[test]
    fn reaching_three_objects_others_created_is_bola_where_owners_keep_to_their_own() {
        let mut b = Behaviour::default();
        let books = [
            ("ann", "dune"),
            ("ben", "The Road"),
            ("cat", "emma"),
            ("dan", "sicp"),
        ];
        for (i, (who, title)) in books.iter().enumerate() {
            add_book(&mut b, i as i64, who, title);
            read_book(&mut b, 10 + i as i64, "10.0.0.1", Some(who), title);
        }
        // Two of others' books: below the line.
        read_book(&mut b, 20, "10.0.0.6", Some("eve"), "dune");
        read_book(&mut b, 21, "10.0.0.6", Some("eve"), "The Road");
        assert!(kinds(&b).is_empty());
        read_book(&mut b, 22, "10.0.0.6", Some("eve"), "emma");
        let out = b.finish(&Thresholds::default()).unwrap();
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].kind, FindingKind::Bola);
        assert_eq!(out[0].actor.user.as_deref(), Some("eve"));
        let detail = out[0].detail.as_deref().unwrap_or("");
        assert!(detail.contains(r#""owner":"ben""#), "{detail}");
    }

    #[test]
    fn a_shared_catalogue_or_a_public_one_is_no_bola() {
        // Everybody reads everybody's: reaching others' objects is what the endpoint is for.
        let mut shared = Behaviour::default();
        let books = [
            ("ann", "dune"),
            ("ben", "The Road"),
            ("cat", "emma"),
            ("dan", "sicp"),
        ];
        let mut id = 0;
        for (who, title) in books {
            add_book(&mut shared, id, who, title);
            id += 1;
        }
        for (who, _) in books {
            for (_, title) in books {
                read_book(&mut shared, id, "10.0.0.1", Some(who), title);
                id += 1;
            }
        }
        assert!(kinds(&shared).is_empty(), "{:?}", kinds(&shared));
        // Owners keep to their own, but anonymous clients read books too: public objects.
        let mut public = Behaviour::default();
        for (i, (who, title)) in books.iter().enumerate() {
            add_book(&mut public, i as i64, who, title);
            read_book(&mut public, 10 + i as i64, "10.0.0.1", Some(who), title);
        }
        read_book(&mut public, 20, "10.0.0.9", None, "sicp");
        for (i, (_, title)) in books[..3].iter().enumerate() {
            read_book(&mut public, 30 + i as i64, "10.0.0.6", Some("eve"), title);
        }
        assert!(kinds(&public).is_empty());
    }

    #[test]
    fn events_move_onto_the_templates_discovery_settles_on() {
        let mut b = Behaviour::default();
        let books = [("ann", "dune"), ("ben", "The Road"), ("cat", "emma")];
        for (i, (who, title)) in books.iter().enumerate() {
            add_book(&mut b, i as i64, who, title);
            let path = format!("/books/v1/{}", title.replace(' ', "%20"));
            // Read before the titles were known to be values of one parameter: literal paths.
            let t = tx(2, "10.0.0.6", "GET", &path, 200, Some("eve"));
            see(&mut b, 10 + i as i64, &t, &path, None);
        }
        assert!(kinds(&b).is_empty(), "literal paths starve BOLA");
        b.remap(|key| {
            let path = key.rsplit('\0').next()?;
            let title = path.strip_prefix("/books/v1/")?;
            Some((
                "api.test\0GET\0/books/v1/{title}".to_owned(),
                Some(title.to_owned()),
            ))
        });
        assert_eq!(kinds(&b), ["bola"]);
    }

    #[test]
    fn a_lone_fast_client_is_not_scraping_without_others_to_compare() {
        let mut b = Behaviour::default();
        for i in 0..500 {
            let t = tx(i / 20, "10.0.0.8", "GET", "/products", 200, None);
            see(&mut b, i, &t, "/products", None);
        }
        assert!(kinds(&b).is_empty());
        for (i, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
            let t = tx(3, ip, "GET", "/products", 200, None);
            see(&mut b, 1000 + i as i64, &t, "/products", None);
        }
        assert_eq!(kinds(&b), ["scraping"]);
    }

    #[test]
    fn anonymous_success_is_broken_auth_only_where_credentials_are_the_rule() {
        let mut b = Behaviour::default();
        let mut id = 0;
        for u in 0..6 {
            let t = tx(u, "10.0.0.1", "GET", "/orders", 200, Some(&u.to_string()));
            see(&mut b, id, &t, "/orders", None);
            id += 1;
        }
        // Public pages answer anyone: no finding there.
        for i in 0..20 {
            see(
                &mut b,
                id,
                &tx(i, "10.0.0.2", "GET", "/products", 200, None),
                "/products",
                None,
            );
            id += 1;
        }
        see(
            &mut b,
            id,
            &tx(9, "10.0.0.5", "GET", "/orders", 401, None),
            "/orders",
            None,
        );
        id += 1;
        assert!(kinds(&b).is_empty());
        see(
            &mut b,
            id,
            &tx(10, "10.0.0.5", "GET", "/orders", 200, None),
            "/orders",
            None,
        );
        let out = b.finish(&Thresholds::default()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, FindingKind::BrokenAuthentication);
        assert_eq!(out[0].actor.ip.as_deref(), Some("10.0.0.5"));
    }

    #[test]
    fn a_window_of_server_errors_is_a_spike_against_a_quiet_baseline() {
        let mut b = Behaviour::default();
        let mut id = 0;
        // Ten quiet minutes, one error each.
        for m in 0..10 {
            for s in 0..10 {
                let status = if s == 0 { 500 } else { 200 };
                see(
                    &mut b,
                    id,
                    &tx(m * 60 + s, "10.0.0.1", "POST", "/orders", status, None),
                    "/orders",
                    None,
                );
                id += 1;
            }
        }
        assert!(kinds(&b).is_empty());
        for s in 0..12 {
            see(
                &mut b,
                id,
                &tx(700 + s, "10.0.0.4", "POST", "/orders", 503, None),
                "/orders",
                None,
            );
            id += 1;
        }
        let out = b.finish(&Thresholds::default()).unwrap();
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].kind, FindingKind::ErrorSpike);
        assert_eq!(out[0].count, 12);
        assert_eq!(out[0].actor.ip.as_deref(), Some("10.0.0.4"));
    }
}
