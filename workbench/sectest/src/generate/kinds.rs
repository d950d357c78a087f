//! What each kind of test sends and expects, built from an endpoint's captured requests.
//!
//! Every check is written as what a secure API does (a 4xx for another user's object, no
//! reflection, a 429 in a burst), so a failed assertion is the vulnerability and the fixed
//! API passes. Expectations stay loose where secure APIs differ (`not 2xx` rather than
//! exactly 403) to keep false positives out.

use super::identities::Identities;
use super::{GeneratedTest, Kind, Target, provenance};
use crate::payloads::Family;
use crate::spec::{
    self, Assertion, HeaderCheck, Json, JsonCheck, Meta, Options, PassWhen, Request, Role,
    Similarity, StatusMatch, Step, TestFile,
};
use indexmap::IndexMap;
use serde_json::Value;
use std::path::Path;
use tapline_record::Transaction;

/// Headers never replayed: hop-by-hop, framing, and credentials (identities supply those).
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "accept-encoding",
    "user-agent",
    "authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
    "proxy-authorization",
];

/// Response fields named like owners: an object whose owner is the caller is the caller's.
const OWNER_FIELDS: &[&str] = &[
    "user_id",
    "userid",
    "owner_id",
    "ownerid",
    "owner",
    "account_id",
    "customer_id",
    "created_by",
    "author_id",
];

/// Keys HS256 tokens are too often signed with.
const WEAK_KEYS: &[&str] = &[
    "secret",
    "secretkey",
    "secret-key",
    "secret_key",
    "your-256-bit-secret",
    "your-secret-key",
    "changeme",
    "change-me",
    "password",
    "123456",
    "12345678",
    "qwerty",
    "key",
    "jwt",
    "jwtsecret",
    "jwt-secret",
    "jwt_secret",
    "test",
    "dev",
    "development",
    "default",
    "admin",
    "supersecret",
    "mysecret",
    "my-secret",
    "s3cr3t",
    "token",
    "shhhhh",
    "keyboard cat",
];

/// The probe origin CORS checks send.
const PROBE_ORIGIN: &str = "https://tapline-cors-probe.example";

pub(crate) struct Builder<'a> {
    ids: &'a Identities,
    /// Every endpoint of the case (the selected ones may be fewer).
    all: &'a [Target],
    case: &'a Path,
    tests: Vec<GeneratedTest>,
    skipped: Vec<String>,
}

type Built = Result<Option<(TestFile, Vec<i64>)>, String>;

impl<'a> Builder<'a> {
    pub fn new(ids: &'a Identities, case: &'a Path, all: &'a [Target]) -> Builder<'a> {
        Builder {
            ids,
            all,
            case,
            tests: Vec::new(),
            skipped: Vec::new(),
        }
    }

    pub fn build(&mut self, kind: Kind, t: &Target) {
        let built = match kind {
            Kind::Bola => self.bola(t),
            Kind::Bfla => self.bfla(t),
            Kind::Auth => self.auth(t),
            Kind::Injection => self.injection(t),
            Kind::MassAssignment => self.mass_assignment(t),
            Kind::DataExposure => self.data_exposure(t),
            Kind::RateLimit => self.rate_limit(t),
            Kind::UserEnumeration => self.user_enumeration(t),
            Kind::Headers => Ok(None),
        };
        self.keep(kind, t, built);
    }

    fn keep(&mut self, kind: Kind, t: &Target, built: Built) {
        match built {
            Ok(Some((mut test, txs))) => {
                test.meta.built_from = Some(provenance(self.case, t, txs));
                self.tests.push(GeneratedTest {
                    file_name: format!("{}--{}.yaml", kind.name(), t.slug()),
                    test,
                });
            }
            Ok(None) => {}
            Err(why) => self
                .skipped
                .push(format!("{} {}: {why}", kind.name(), t.label())),
        }
    }

    pub fn finish(self) -> (Vec<GeneratedTest>, Vec<String>) {
        (self.tests, self.skipped)
    }

    /// The identity of a sample (`None`: it carried no credentials we know).
    fn who(&self, tx: &Transaction) -> Option<String> {
        self.ids.of(tx).map(str::to_owned)
    }

    /// A 2xx sample sent as an identity, preferring identities that can log in.
    fn authenticated_sample<'t>(&self, t: &'t Target) -> Option<(i64, &'t Transaction, String)> {
        let logins: Vec<&str> = self
            .ids
            .logins
            .iter()
            .map(|l| l.identity.as_str())
            .collect();
        let ok = t
            .samples
            .iter()
            .filter(|(_, tx)| is_2xx(tx))
            .filter_map(|(id, tx)| Some((*id, tx, self.who(tx)?)));
        let all: Vec<_> = ok.collect();
        all.iter()
            .find(|(_, _, w)| logins.contains(&w.as_str()))
            .or_else(|| all.first())
            .cloned()
    }

    fn bola(&self, t: &Target) -> Built {
        if !t.template.contains('{') || !requires_credentials(t) {
            return Ok(None);
        }
        let owned = t
            .samples
            .iter()
            .filter(|(_, tx)| is_2xx(tx))
            .find_map(|(id, tx)| {
                let a = self.who(tx)?;
                let p = self.ids.principal(&a)?;
                owns(&t.template, tx, p).then_some((*id, tx, a))
            });
        let Some((id, tx, a)) = owned else {
            return Err("no request read an object its caller owns (an id equal to the caller's, or an owner field)".into());
        };
        let Some(b) = self.other_identity(&a, false) else {
            return Err(format!(
                "only one identity ({a}) was seen; BOLA needs a second"
            ));
        };
        let request = replay(tx);
        let steps = vec![
            step(
                &format!("{a} reads their own object"),
                Role::Setup,
                Some(&a),
                request.clone(),
                vec![status_class(2)],
            ),
            step(
                &format!("{b} reads {a}'s object"),
                Role::Check,
                Some(&b),
                request,
                vec![not_2xx()],
            ),
        ];
        let test = self.test(
            Kind::Bola,
            t,
            format!("BOLA: {} — another identity's object", t.label()),
            vec![a, b],
            steps,
        );
        Ok(Some((test, vec![id])))
    }

    /// Whether the endpoint's answers are evidently not for everyone: it refused requests
    /// without credentials, writes, answers with personal data or the caller's own objects, or
    /// sits under an admin path.
    fn evidently_private(&self, t: &Target) -> bool {
        let refused = t
            .samples
            .iter()
            .any(|(_, x)| !has_credentials(x) && matches!(x.status, Some(401 | 403)));
        let writes = !matches!(t.method.as_str(), "GET" | "HEAD" | "OPTIONS");
        let admin = t
            .template
            .split('/')
            .any(|s| s.eq_ignore_ascii_case("admin"));
        let personal = t.details.iter().any(|d| {
            d.get("data_classes")
                .and_then(Value::as_object)
                .is_some_and(|classes| {
                    classes.iter().any(|(class, locs)| {
                        class != "jwt"
                            && locs
                                .as_object()
                                .is_some_and(|l| l.keys().any(|k| k.starts_with("response.body")))
                    })
                })
        });
        let callers_own = t.samples.iter().any(|(_, x)| {
            self.who(x)
                .and_then(|a| self.ids.principal(&a).map(str::to_owned))
                .is_some_and(|p| owns(&t.template, x, &p))
        });
        refused || writes || admin || personal || callers_own
    }

    /// Another identity than `not`, preferring ones that log in (and, for BFLA, not admins).
    fn other_identity(&self, not: &str, no_admin: bool) -> Option<String> {
        self.ids
            .all()
            .into_iter()
            .filter(|i| *i != not && !(no_admin && self.ids.is_admin(i)))
            .map(str::to_owned)
            .next()
    }

    fn bfla(&self, t: &Target) -> Built {
        let admin_path = t
            .template
            .split('/')
            .any(|s| s.eq_ignore_ascii_case("admin"));
        let callers: Vec<String> = t
            .samples
            .iter()
            .filter(|(_, tx)| is_2xx(tx))
            .filter_map(|(_, tx)| self.who(tx))
            .collect();
        let admin_only = !callers.is_empty() && callers.iter().all(|c| self.ids.is_admin(c));
        if !(admin_path || admin_only) {
            return Ok(None);
        }
        let Some((id, tx)) = representative(t) else {
            return Ok(None);
        };
        let Some(user) = self.other_identity("", true) else {
            return Err("no identity without an admin role was seen".into());
        };
        let steps = vec![step(
            &format!("{user} calls it"),
            Role::Check,
            Some(&user),
            replay(tx),
            vec![not_2xx()],
        )];
        let test = self.test(
            Kind::Bfla,
            t,
            format!("BFLA: {} called by a non-admin identity", t.label()),
            vec![user],
            steps,
        );
        Ok(Some((test, vec![id])))
    }

    fn auth(&self, t: &Target) -> Built {
        if !requires_credentials(t) {
            return Ok(None);
        }
        if !self.evidently_private(t) {
            return Err("called with credentials, but nothing shows it needs them (no 401/403 without, \
                        no personal data, no caller's objects, no writes); a public endpoint would fail this test"
                .into());
        }
        let Some((id, tx, a)) = self.authenticated_sample(t) else {
            return Ok(None);
        };
        let request = replay(tx);
        let mut txs = vec![id];
        let mut steps = vec![
            step(
                &format!("{a}'s request works"),
                Role::Setup,
                Some(&a),
                request.clone(),
                vec![status_class(2)],
            ),
            step(
                "no credentials",
                Role::Check,
                Some("anonymous"),
                request.clone(),
                vec![not_2xx()],
            ),
        ];
        // A request that got through without credentials where others needed them.
        if let Some((uid, utx)) = t
            .samples
            .iter()
            .find(|(_, x)| is_2xx(x) && !has_credentials(x))
        {
            steps.push(step(
                "the request seen succeeding without credentials",
                Role::Check,
                Some("anonymous"),
                replay(utx),
                vec![not_2xx()],
            ));
            txs.push(*uid);
        }
        let token = self.ids.token_ref(&a);
        if bearer(tx).is_some() {
            for (name, filter) in [
                ("alg none", "jwt_alg_none"),
                ("a damaged signature", "jwt_bad_signature"),
            ] {
                let mut r = request.clone();
                r.headers.insert(
                    "Authorization".into(),
                    format!("Bearer {{{{{token} | {filter}}}}}"),
                );
                steps.push(step(
                    &format!("{a}'s token with {name}"),
                    Role::Check,
                    None,
                    r,
                    vec![not_2xx()],
                ));
            }
            if let Some(key) = bearer(tx).and_then(weak_key) {
                let other = self
                    .other_identity(&a, false)
                    .and_then(|b| self.ids.principal(&b).map(str::to_owned))
                    .unwrap_or_else(|| "0".into());
                let mut r = request.clone();
                r.headers.insert(
                    "Authorization".into(),
                    format!(
                        "Bearer {{{{{token} | jwt_claim:sub={other} | jwt_sign_hs256:{key}}}}}"
                    ),
                );
                steps.push(step(
                    &format!("a token for principal {other} signed with the guessed key `{key}`"),
                    Role::Check,
                    None,
                    r,
                    vec![not_2xx()],
                ));
                // With the key known, an expired token can be forged properly: is expiry checked?
                let mut r = request.clone();
                r.headers.insert(
                    "Authorization".into(),
                    format!("Bearer {{{{{token} | jwt_claim:exp=1 | jwt_sign_hs256:{key}}}}}"),
                );
                steps.push(step(
                    &format!("{a}'s token, expired in 1970"),
                    Role::Check,
                    None,
                    r,
                    vec![not_2xx()],
                ));
            }
        }
        let mut test = self.test(
            Kind::Auth,
            t,
            format!(
                "Broken authentication: {} without valid credentials",
                t.label()
            ),
            vec![a],
            steps,
        );
        test.options.stop_on_failure = false;
        Ok(Some((test, txs)))
    }

    fn injection(&self, t: &Target) -> Built {
        let Some((id, tx)) = representative(t) else {
            return Ok(None);
        };
        let who = self.who(tx);
        let base = replay(tx);
        // The captured request as it was: the time payloads that sleep are measured against.
        let baseline = "the captured request";
        let mut steps = vec![step(
            baseline,
            Role::Setup,
            who.as_deref(),
            base.clone(),
            vec![not_5xx()],
        )];
        for (location, name, value) in parameters(&base).into_iter().take(8) {
            for family in families(&name, &value, &location) {
                let request = with_parameter(&base, &location, "{{p}}");
                let mut checks = vec![not_5xx(), Assertion::NoSignsOf(family)];
                if family == Family::SqliTime {
                    // The payloads sleep 3 s: an answer 2.5 s slower than the baseline slept.
                    checks.push(Assertion::DurationMs(spec::Bound {
                        below: Some(2500.0),
                        above: None,
                        than: Some(baseline.into()),
                    }));
                }
                let mut s = step(
                    &format!("{} into {} `{name}`", family.name(), location.word()),
                    Role::Check,
                    who.as_deref(),
                    request,
                    checks,
                );
                s.for_each = Some(
                    [("p".to_owned(), family.name().to_owned())]
                        .into_iter()
                        .collect(),
                );
                steps.push(s);
            }
        }
        if steps.len() == 1 {
            return Ok(None);
        }
        let ids: Vec<String> = who.into_iter().collect();
        let mut test = self.test(
            Kind::Injection,
            t,
            format!("Injection: payloads into {}'s parameters", t.label()),
            ids,
            steps,
        );
        test.options.stop_on_failure = false;
        Ok(Some((test, vec![id])))
    }

    fn mass_assignment(&self, t: &Target) -> Built {
        let login = self
            .ids
            .logins
            .iter()
            .any(|l| l.method == t.method && l.path == t.template);
        if !matches!(t.method.as_str(), "POST" | "PUT" | "PATCH") || login {
            return Ok(None);
        }
        let sample = t.samples.iter().find(|(_, x)| {
            is_2xx(x)
                && matches!(
                    serde_json::from_slice::<Json>(&x.request_body.data),
                    Ok(Json::Object(_))
                )
        });
        let Some((id, tx)) = sample.map(|(i, x)| (*i, x)) else {
            return Ok(None);
        };
        let sent = sent_fields(t);
        let answer = match serde_json::from_slice::<Value>(&tx.response_body.data) {
            Ok(Value::Object(o)) => o,
            _ => serde_json::Map::new(),
        };
        let mut request = replay(tx);
        // Where the written object can be read back (`GET /users/v1/{name}` after registering).
        let read = match &mut request.json {
            Some(Json::Object(body)) => self.read_back(body),
            _ => None,
        };
        let probes = mass_probes(
            &answer,
            read.as_ref().map(|r| r.fields.as_slice()).unwrap_or(&[]),
            &sent,
        );
        if probes.is_empty() {
            return Ok(None);
        }
        if let Some(Json::Object(body)) = &mut request.json {
            for (k, v) in &probes {
                body.insert(k.clone(), Json::from(v));
            }
        }
        let not_taken = |checks: &mut Vec<Assertion>| {
            for (k, v) in &probes {
                checks.push(Assertion::Json(JsonCheck {
                    path: json_path_key(k),
                    not_equals: Some(v.clone()),
                    ..Default::default()
                }));
            }
        };
        let who = self.who(tx);
        let names: Vec<String> = probes.iter().map(|(k, _)| k.clone()).collect();
        let mut checks = vec![not_5xx()];
        not_taken(&mut checks);
        let mut steps = vec![step(
            &format!("send {}", names.join(", ")),
            Role::Check,
            who.as_deref(),
            request,
            checks,
        )];
        if let Some(r) = read {
            let mut checks = vec![not_5xx()];
            not_taken(&mut checks);
            let back = Request {
                method: "GET".into(),
                url: r.url,
                ..Default::default()
            };
            steps.push(step(
                "read the object back",
                Role::Check,
                who.as_deref(),
                back,
                checks,
            ));
        }
        let name = format!(
            "Mass assignment: {} takes fields clients never send",
            t.label()
        );
        let test = self.test(
            Kind::MassAssignment,
            t,
            name,
            who.into_iter().collect(),
            steps,
        );
        Ok(Some((test, vec![id])))
    }

    /// A read endpoint that showed an object named by a value this body sends: the value is
    /// made unique per run (`alice` → `alice-{{unique}}`), so the read finds this run's object.
    fn read_back(&self, body: &mut IndexMap<String, Json>) -> Option<ReadBack> {
        for (k, v) in body.iter_mut() {
            let Json::String(value) = v else { continue };
            for r in self.all.iter().filter(|r| r.method == "GET") {
                let Some((prefix, last)) = r.template.rsplit_once('/') else {
                    continue;
                };
                if !last.starts_with('{') || prefix.contains('{') {
                    continue;
                }
                let seen = r.samples.iter().any(|(_, x)| {
                    let path = x.uri.split('?').next().unwrap_or(&x.uri);
                    path.rsplit_once('/')
                        .is_some_and(|(p, l)| p == prefix && percent_decoded(l) == *value)
                });
                if !seen {
                    continue;
                }
                let unique = match value.split_once('@') {
                    Some((local, domain)) => format!("{local}-{{{{unique}}}}@{domain}"),
                    None => format!("{value}-{{{{unique}}}}"),
                };
                let fields = response_fields(r);
                tracing::debug!(field = %k, read = %r.template, "mass assignment read back");
                *value = unique.clone();
                return Some(ReadBack {
                    url: format!("{prefix}/{unique}"),
                    fields,
                });
            }
        }
        None
    }

    fn data_exposure(&self, t: &Target) -> Built {
        let mut paths: Vec<String> = Vec::new();
        for d in &t.details {
            if let Some(classes) = d.get("data_classes").and_then(Value::as_object) {
                for (class, locations) in classes {
                    if !restricted(class) {
                        continue;
                    }
                    let locs: Vec<String> = locations
                        .as_object()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    for loc in &locs {
                        // The client's own input echoed back is not an exposure.
                        let echoed = loc
                            .strip_prefix("response.body")
                            .is_some_and(|rest| locs.contains(&format!("request.body{rest}")));
                        if echoed {
                            continue;
                        }
                        if let Some(p) = body_location_to_path(loc)
                            && !paths.contains(&p)
                        {
                            paths.push(p);
                        }
                    }
                }
            }
        }
        if paths.is_empty() {
            return Ok(None);
        }
        let Some((id, tx)) = t
            .samples
            .iter()
            .find(|(_, x)| is_2xx(x))
            .map(|(i, x)| (*i, x))
        else {
            return Ok(None);
        };
        let who = self.who(tx);
        let mut checks = vec![status_class(2)];
        checks.extend(paths.iter().map(|p| {
            Assertion::Json(JsonCheck {
                path: p.clone(),
                exists: Some(false),
                ..Default::default()
            })
        }));
        let steps = vec![step(
            "read it",
            Role::Check,
            who.as_deref(),
            replay(tx),
            checks,
        )];
        let test = self.test(
            Kind::DataExposure,
            t,
            format!(
                "Excessive data exposure: {} returns restricted data",
                t.label()
            ),
            who.into_iter().collect(),
            steps,
        );
        Ok(Some((test, vec![id])))
    }

    fn rate_limit(&self, t: &Target) -> Built {
        let Some(login) = self
            .ids
            .logins
            .iter()
            .find(|l| l.method == t.method && l.path == t.template)
        else {
            return Ok(None);
        };
        let mut body = login.body.clone();
        body.insert(
            login.user_field.clone(),
            Json::String("tapline-rate-probe".into()),
        );
        body.insert(
            login.password_field.clone(),
            Json::String("wrong-password".into()),
        );
        let request = Request {
            method: login.method.clone(),
            url: login.path.clone(),
            json: Some(Json::Object(body)),
            ..Default::default()
        };
        let mut s = step(
            "a burst of 12 wrong passwords",
            Role::Check,
            Some("anonymous"),
            request,
            vec![Assertion::Status(StatusMatch::Code(429))],
        );
        s.repeat = Some(12);
        s.pass_when = PassWhen::AnyAttempt;
        let mut test = self.test(
            Kind::RateLimit,
            t,
            format!(
                "Unrestricted resource consumption: {} never limits failed logins",
                t.label()
            ),
            Vec::new(),
            vec![s],
        );
        test.options.max_requests = Some(12);
        Ok(Some((test, vec![login.tx])))
    }

    fn user_enumeration(&self, t: &Target) -> Built {
        let logins: Vec<_> = self
            .ids
            .logins
            .iter()
            .filter(|l| l.method == t.method && l.path == t.template)
            .collect();
        // The last user seen: the identities tests act as come first, and a wrong password
        // here should not count against them where failures are limited.
        let Some(login) = logins.last() else {
            return Ok(None);
        };
        let attempt = |user: &str| {
            let mut body = login.body.clone();
            body.insert(login.user_field.clone(), Json::String(user.into()));
            body.insert(
                login.password_field.clone(),
                Json::String("wrong-password".into()),
            );
            Request {
                method: login.method.clone(),
                url: login.path.clone(),
                json: Some(Json::Object(body)),
                ..Default::default()
            }
        };
        let known = "a known user, wrong password";
        let steps = vec![
            step(
                known,
                Role::Setup,
                Some("anonymous"),
                attempt(&login.username),
                vec![status_class(4)],
            ),
            step(
                "an unknown user",
                Role::Check,
                Some("anonymous"),
                attempt("tapline-no-such-user"),
                vec![
                    status_class(4),
                    Assertion::Similar(Similarity {
                        to: known.into(),
                        at_least: Some(0.9),
                        below: None,
                    }),
                ],
            ),
        ];
        let test = self.test(
            Kind::UserEnumeration,
            t,
            format!(
                "User enumeration: {} answers unknown users differently",
                t.label()
            ),
            Vec::new(),
            steps,
        );
        Ok(Some((test, vec![login.tx])))
    }

    /// One test for the whole API: security headers and CORS on a readable endpoint.
    pub fn headers(&mut self, targets: &[Target]) {
        let pick = |anonymous: bool| {
            targets.iter().find_map(|t| {
                let (id, tx) = t.samples.iter().find(|(_, x)| {
                    x.method == "GET" && is_2xx(x) && has_credentials(x) != anonymous
                })?;
                Some((t, *id, tx))
            })
        };
        let Some((t, id, tx)) = pick(true).or_else(|| pick(false)) else {
            self.skipped
                .push("headers: no GET answered 2xx in the case".into());
            return;
        };
        let who = self.who(tx);
        let mut request = replay(tx);
        request.headers.insert("Origin".into(), PROBE_ORIGIN.into());
        let checks = vec![
            Assertion::Header(HeaderCheck {
                name: "X-Content-Type-Options".into(),
                equals: Some("nosniff".into()),
                ..Default::default()
            }),
            Assertion::Header(HeaderCheck {
                name: "Access-Control-Allow-Origin".into(),
                not_equals: Some(PROBE_ORIGIN.into()),
                ..Default::default()
            }),
        ];
        let steps = vec![step(
            &format!("{} from a foreign origin", t.label()),
            Role::Check,
            who.as_deref(),
            request,
            checks,
        )];
        let mut test = self.test(
            Kind::Headers,
            t,
            "Security misconfiguration: missing nosniff, or CORS open to any origin".into(),
            who.into_iter().collect(),
            steps,
        );
        test.id = "headers-api".into();
        test.meta.built_from = Some(provenance(self.case, t, vec![id]));
        self.tests.push(GeneratedTest {
            file_name: "headers--api.yaml".into(),
            test,
        });
    }

    fn test(
        &self,
        kind: Kind,
        t: &Target,
        name: String,
        identities: Vec<String>,
        steps: Vec<Step>,
    ) -> TestFile {
        let mut identities = identities;
        identities.retain(|i| i != "anonymous");
        identities.dedup();
        TestFile {
            version: spec::FORMAT.into(),
            id: format!("{}-{}", kind.name(), t.slug()),
            meta: Meta {
                name,
                severity: kind.severity(),
                tags: kind.tags().iter().map(|s| s.to_string()).collect(),
                description: None,
                built_from: None,
            },
            env: IndexMap::new(),
            identities,
            payloads: Default::default(),
            options: Options::default(),
            steps,
        }
    }
}

fn step(
    name: &str,
    role: Role,
    identity: Option<&str>,
    request: Request,
    asserts: Vec<Assertion>,
) -> Step {
    Step {
        name: Some(name.to_owned()),
        role,
        identity: identity.map(str::to_owned),
        for_each: None,
        repeat: None,
        pass_when: PassWhen::EveryAttempt,
        request,
        extract: Vec::new(),
        asserts,
    }
}

fn status_class(c: u16) -> Assertion {
    Assertion::Status(StatusMatch::Class(format!("{c}xx")))
}

fn not_2xx() -> Assertion {
    Assertion::Status(StatusMatch::Not {
        not: Box::new(StatusMatch::Class("2xx".into())),
    })
}

fn not_5xx() -> Assertion {
    Assertion::Status(StatusMatch::Not {
        not: Box::new(StatusMatch::Class("5xx".into())),
    })
}

/// The endpoint's first 2xx sample, else its first.
fn representative(t: &Target) -> Option<(i64, &Transaction)> {
    t.samples
        .iter()
        .find(|(_, x)| is_2xx(x))
        .or_else(|| t.samples.first())
        .map(|(i, x)| (*i, x))
}

fn is_2xx(tx: &Transaction) -> bool {
    tx.status.is_some_and(|s| (200..300).contains(&s))
}

fn has_credentials(tx: &Transaction) -> bool {
    tx.request_headers.iter().any(|(n, _)| {
        [
            "authorization",
            "cookie",
            "x-api-key",
            "api-key",
            "apikey",
            "x-auth-token",
            "x-access-token",
        ]
        .iter()
        .any(|h| n.eq_ignore_ascii_case(h))
    })
}

/// Most of the endpoint's requests carry credentials.
fn requires_credentials(t: &Target) -> bool {
    let with = t.samples.iter().filter(|(_, x)| has_credentials(x)).count();
    with > 0 && with * 2 >= t.samples.len()
}

fn bearer(tx: &Transaction) -> Option<&str> {
    let auth = tx.request_header("authorization")?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The dictionary key an HS256 token was signed with, if it was one of them.
fn weak_key(token: &str) -> Option<&'static str> {
    let jwt = tapline_detect::jwt::Jwt::parse(token)?;
    if jwt.alg() != Some("HS256") {
        return None;
    }
    WEAK_KEYS
        .iter()
        .copied()
        .find(|k| crate::filters::hs256_key_matches(token, k))
}

/// Whether the caller (principal `p`) owns the object the request names: a path parameter
/// equal to the principal, or an owner field in the answer equal to it.
fn owns(template: &str, tx: &Transaction, p: &str) -> bool {
    let path = tx.uri.split('?').next().unwrap_or(&tx.uri);
    let param_is_caller = template
        .split('/')
        .zip(path.split('/'))
        .any(|(t, v)| t.starts_with('{') && v == p);
    if param_is_caller {
        return true;
    }
    let Ok(answer) = serde_json::from_slice::<Value>(&tx.response_body.data) else {
        return false;
    };
    let obj = match &answer {
        Value::Object(o) => Some(o),
        Value::Array(a) => a.first().and_then(Value::as_object),
        _ => None,
    };
    obj.is_some_and(|o| {
        o.iter().any(|(k, v)| {
            OWNER_FIELDS.contains(&k.to_ascii_lowercase().as_str())
                && match v {
                    Value::String(s) => s == p,
                    Value::Number(n) => n.to_string() == p,
                    _ => false,
                }
        })
    })
}

/// The captured request as a test request (credentials and framing left out).
fn replay(tx: &Transaction) -> Request {
    let (path, query) = match tx.uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (tx.uri.as_str(), ""),
    };
    let query: IndexMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut headers = IndexMap::new();
    for (n, v) in tx.request_headers.iter() {
        if !DROPPED_HEADERS.iter().any(|d| n.eq_ignore_ascii_case(d)) {
            headers.insert(n.to_owned(), v.to_owned());
        }
    }
    let data = &tx.request_body.data;
    let form = tx
        .request_content_type()
        .is_some_and(|c| c.contains("x-www-form-urlencoded"));
    let (mut body, mut json, mut form_fields) = (None, None, IndexMap::new());
    if !data.is_empty() {
        if let Ok(j) = serde_json::from_slice::<Json>(data) {
            json = Some(j);
        } else if form {
            form_fields = url::form_urlencoded::parse(data).into_owned().collect();
        } else if let Ok(text) = std::str::from_utf8(data) {
            body = Some(text.to_owned());
        }
    }
    if json.is_some() || !form_fields.is_empty() {
        // The runner sets the type of what it serialises.
        headers.retain(|n, _| !n.eq_ignore_ascii_case("content-type"));
    }
    let mut query = query;
    for (k, v) in query
        .iter_mut()
        .chain(form_fields.iter_mut())
        .chain(headers.iter_mut())
    {
        *v = scrub(k, v);
    }
    if let Some(j) = &mut json {
        scrub_json(j, None);
    }
    let body = body.map(|b| scrub("body", &b));
    Request {
        method: tx.method.to_string(),
        url: path.to_owned(),
        headers,
        query,
        form: form_fields,
        body,
        json,
    }
}

/// Field names whose values are credentials.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "otp",
    "pin",
    "cvv",
    "cvc",
];

/// What stands in for a secret in a generated file.
const REDACTED: &str = "redacted-by-tapline";

/// A captured value as a file may keep it: credentials and restricted data (national ids,
/// card numbers, keys) replaced — a test file is shared, committed, attached to tickets.
fn scrub(key: &str, value: &str) -> String {
    use tapline_detect::classify::{Confidence, DataClass, classify};
    if SECRET_FIELDS.contains(&key.to_ascii_lowercase().as_str()) && !value.is_empty() {
        return REDACTED.into();
    }
    let hits = classify(value, Some(key));
    let mut out = value.to_owned();
    for h in hits
        .iter()
        .rev()
        .filter(|h| h.confidence >= Confidence::Medium)
    {
        let stand_in = match h.class {
            // A published test card number: the request stays well-formed.
            DataClass::CreditCard => "4111111111111111",
            c if c == DataClass::Jwt || restricted(c.name()) => REDACTED,
            _ => continue,
        };
        if out.is_char_boundary(h.start) && out.is_char_boundary(h.end) && h.end <= out.len() {
            out.replace_range(h.start..h.end, stand_in);
        }
    }
    out
}

fn scrub_json(j: &mut Json, key: Option<&str>) {
    match j {
        Json::String(s) => *s = scrub(key.unwrap_or("body"), s),
        Json::Array(a) => a.iter_mut().for_each(|x| scrub_json(x, key)),
        Json::Object(o) => o.iter_mut().for_each(|(k, v)| scrub_json(v, Some(k))),
        _ => {}
    }
}

/// Where a parameter sits.
#[derive(Debug, Clone, PartialEq)]
enum Location {
    Query(String),
    Form(String),
    /// Keys and indexes from the body's root.
    Json(Vec<PathPart>),
}

#[derive(Debug, Clone, PartialEq)]
enum PathPart {
    Key(String),
    Index(usize),
}

impl Location {
    fn word(&self) -> &'static str {
        match self {
            Location::Query(_) => "query",
            Location::Form(_) => "form field",
            Location::Json(_) => "JSON field",
        }
    }
}

/// Every injectable parameter: query and form fields, and the JSON body's string leaves.
fn parameters(r: &Request) -> Vec<(Location, String, String)> {
    let mut out: Vec<(Location, String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (Location::Query(k.clone()), k.clone(), v.clone()))
        .collect();
    out.extend(
        r.form
            .iter()
            .map(|(k, v)| (Location::Form(k.clone()), k.clone(), v.clone())),
    );
    if let Some(j) = &r.json {
        let mut leaves = Vec::new();
        string_leaves(j, &mut Vec::new(), &mut leaves);
        out.extend(leaves.into_iter().map(|(path, v)| {
            let name = path
                .iter()
                .rev()
                .find_map(|p| match p {
                    PathPart::Key(k) => Some(k.clone()),
                    PathPart::Index(_) => None,
                })
                .unwrap_or_else(|| "body".into());
            (Location::Json(path), name, v)
        }));
    }
    out
}

fn string_leaves(j: &Json, path: &mut Vec<PathPart>, out: &mut Vec<(Vec<PathPart>, String)>) {
    match j {
        Json::String(s) => out.push((path.clone(), s.clone())),
        Json::Object(o) => {
            for (k, v) in o {
                path.push(PathPart::Key(k.clone()));
                string_leaves(v, path, out);
                path.pop();
            }
        }
        // The first element stands for the list.
        Json::Array(a) => {
            if let Some(first) = a.first() {
                path.push(PathPart::Index(0));
                string_leaves(first, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn with_parameter(r: &Request, at: &Location, value: &str) -> Request {
    let mut r = r.clone();
    match at {
        Location::Query(k) => {
            r.query.insert(k.clone(), value.into());
        }
        Location::Form(k) => {
            r.form.insert(k.clone(), value.into());
        }
        Location::Json(path) => {
            if let Some(j) = &mut r.json {
                set_leaf(j, path, value);
            }
        }
    }
    r
}

fn set_leaf(j: &mut Json, path: &[PathPart], value: &str) {
    let Some((first, rest)) = path.split_first() else {
        *j = Json::String(value.into());
        return;
    };
    match (first, j) {
        (PathPart::Key(k), Json::Object(o)) => {
            if let Some(x) = o.get_mut(k) {
                set_leaf(x, rest, value);
            }
        }
        (PathPart::Index(i), Json::Array(a)) => {
            if let Some(x) = a.get_mut(*i) {
                set_leaf(x, rest, value);
            }
        }
        _ => {}
    }
}

/// The payload families worth a parameter, by its name, value and place.
fn families(name: &str, value: &str, at: &Location) -> Vec<Family> {
    let n = name.to_ascii_lowercase();
    let mut out = vec![
        Family::Sqli,
        Family::SqliTime,
        Family::Xss,
        Family::Ssti,
        Family::Cmd,
    ];
    let fileish = [
        "file", "path", "dir", "doc", "template", "page", "include", "name", "folder", "download",
    ];
    if fileish.iter().any(|f| n.contains(f))
        || value.contains('/')
        || value
            .rsplit_once('.')
            .is_some_and(|(_, e)| (1..=4).contains(&e.len()))
    {
        out.push(Family::Traversal);
    }
    let urlish = [
        "url", "uri", "link", "callback", "webhook", "redirect", "host", "endpoint", "dest",
        "target", "feed", "image", "avatar",
    ];
    if urlish.iter().any(|u| n.contains(u))
        || value.starts_with("http://")
        || value.starts_with("https://")
    {
        out.push(Family::Ssrf);
    }
    if matches!(at, Location::Json(_)) {
        out.push(Family::Nosql);
    }
    out
}

/// Where a written object is read back, and the fields reads of it show.
struct ReadBack {
    url: String,
    fields: Vec<(String, Value)>,
}

/// Every field the endpoint's requests sent.
fn sent_fields(t: &Target) -> std::collections::BTreeSet<String> {
    t.samples
        .iter()
        .filter_map(
            |(_, x)| match serde_json::from_slice::<Value>(&x.request_body.data) {
                Ok(Value::Object(o)) => Some(o.keys().cloned().collect::<Vec<_>>()),
                _ => None,
            },
        )
        .flatten()
        .collect()
}

/// The fields a read endpoint's 2xx answers showed, each with a value of its type.
fn response_fields(r: &Target) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (_, x) in r.samples.iter().filter(|(_, x)| is_2xx(x)) {
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&x.response_body.data) {
            for (k, v) in o {
                if !out.iter().any(|(n, _)| *n == k) {
                    out.push((k, v));
                }
            }
        }
    }
    out
}

/// What to send for mass assignment: fields the write's answer or the object's reads show
/// but no request sent (not `id`), each with a probe value, and the usual privilege fields.
fn mass_probes(
    answer: &serde_json::Map<String, Value>,
    read: &[(String, Value)],
    sent: &std::collections::BTreeSet<String>,
) -> Vec<(String, Value)> {
    let mut probes: Vec<(String, Value)> = Vec::new();
    // The write's answer speaks for the object only when it echoes something sent (not an
    // envelope such as `{"status": "success", "message": …}`).
    let echoes = answer.keys().any(|k| sent.contains(k));
    let from_answer = answer
        .iter()
        .filter(|_| echoes)
        .map(|(k, v)| (k.clone(), v.clone()));
    for (k, v) in from_answer.chain(read.iter().cloned()) {
        if sent.contains(&k) || k.eq_ignore_ascii_case("id") || probes.iter().any(|(p, _)| *p == k)
        {
            continue;
        }
        if let Some(p) = probe(&v) {
            probes.push((k, p));
        }
    }
    for (k, v) in [
        ("role", Value::from("admin")),
        ("is_admin", Value::Bool(true)),
        ("admin", Value::Bool(true)),
    ] {
        let shown = answer.get(k) == Some(&v) || read.iter().any(|(n, x)| n == k && *x == v);
        if !sent.contains(k) && !probes.iter().any(|(p, _)| p == k) && !shown {
            probes.push((k.to_owned(), v));
        }
    }
    probes
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// A value of the same type as `v` that no server would choose by itself.
fn probe(v: &Value) -> Option<Value> {
    match v {
        Value::String(_) => Some(Value::from("tapline-probe")),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::from(987_654)),
        Value::Number(_) => Some(Value::from(987_654.5)),
        Value::Bool(b) => Some(Value::Bool(!b)),
        _ => None,
    }
}

fn json_path_key(k: &str) -> String {
    if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("$.{k}")
    } else {
        format!("$['{}']", k.replace('\'', ""))
    }
}

/// Classes no response should carry to an ordinary caller: national identifiers, payment
/// data, secrets (a login answering with its own token is not one).
fn restricted(class: &str) -> bool {
    use tapline_detect::classify::{ClassKind, DataClass};
    let Some(c) = DataClass::ALL.iter().find(|c| c.name() == class) else {
        return false;
    };
    match c {
        DataClass::Jwt => false,
        DataClass::Email
        | DataClass::PhoneNumber
        | DataClass::IpAddress
        | DataClass::MacAddress
        | DataClass::DateOfBirth => false,
        other => matches!(other.kind(), ClassKind::Pii | ClassKind::Secret),
    }
}

/// `response.body.items[].card` → `$.items[*].card`; other places (headers) → `None`.
fn body_location_to_path(loc: &str) -> Option<String> {
    let rest = loc.strip_prefix("response.body")?;
    let mut out = String::from("$");
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (name, arrays) = match part.find("[]") {
            Some(i) => (&part[..i], part[i..].matches("[]").count()),
            None => (part, 0),
        };
        if !name.is_empty() {
            out.push_str(&json_path_key(name)[1..]);
        }
        for _ in 0..arrays {
            out.push_str("[*]");
        }
    }
    if rest.starts_with("[]") && !out.starts_with("$[*]") {
        out = out.replacen('$', "$[*]", 1);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::identities::plain;
    use super::*;

    #[test]
    fn body_locations_become_json_paths() {
        assert_eq!(
            body_location_to_path("response.body.ssn").as_deref(),
            Some("$.ssn")
        );
        assert_eq!(
            body_location_to_path("response.body[].ssn").as_deref(),
            Some("$[*].ssn")
        );
        assert_eq!(
            body_location_to_path("response.body.items[].card").as_deref(),
            Some("$.items[*].card")
        );
        assert_eq!(body_location_to_path("request.header.authorization"), None);
        for p in ["$.ssn", "$[*].ssn", "$.items[*].card"] {
            crate::jsonpath::JsonPath::parse(p).unwrap();
        }
    }

    #[test]
    fn tokens_signed_with_a_dictionary_key_are_recognised() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let input = format!(
            "{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(r#"{"sub":"7"}"#)
        );
        let sign = |key: &str| {
            let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
            format!(
                "{input}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(ring::hmac::sign(&k, input.as_bytes()))
            )
        };
        assert_eq!(
            weak_key(&sign("your-256-bit-secret")),
            Some("your-256-bit-secret")
        );
        assert_eq!(
            weak_key(&sign("a long random key nobody guesses 8f1e")),
            None
        );
    }

    #[test]
    fn restricted_classes_are_identifiers_cards_and_secrets_not_contact_data() {
        assert!(
            restricted("us_ssn") && restricted("credit_card") && restricted("aws_access_key_id")
        );
        assert!(
            !restricted("email")
                && !restricted("phone_number")
                && !restricted("jwt")
                && !restricted("nope")
        );
    }

    #[test]
    fn captured_secrets_never_reach_a_file() {
        assert_eq!(scrub("password", "pw-bob-2024"), REDACTED);
        assert_eq!(scrub("q", "dune"), "dune");
        assert_eq!(scrub("card", "5555555555554444"), "4111111111111111");
        assert_eq!(
            scrub("note", "ssn 123-45-6789 on file"),
            format!("ssn {REDACTED} on file")
        );
        let mut j: Json = serde_json::from_str(
            r#"{"user": "bob", "password": "hunter2", "items": [{"token": "abc"}]}"#,
        )
        .unwrap();
        scrub_json(&mut j, None);
        let text = serde_json::to_string(&j).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("abc") && text.contains("bob"),
            "{text}"
        );
    }

    #[test]
    fn names_are_plain_words() {
        assert_eq!(plain("Alice Example"), "alice-example");
        assert_eq!(plain("../"), "x");
    }
}
