//! Identities proposed from the traffic: every login the case saw (a POST with a user name and
//! a password whose answer carries a JWT) becomes an identity that logs in afresh at each run,
//! its password a placeholder; principals seen only through their tokens become identities
//! whose token is a placeholder.

use super::Target;
use crate::spec::{self, Extract, IdentitiesFile, Identity, Json, Login};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::BTreeMap;
use tapline_detect::jwt::Jwt;
use tapline_record::Transaction;

/// Request fields that carry a password.
const PASSWORD_FIELDS: &[&str] = &["password", "passwd", "pass", "pwd", "secret", "passphrase"];
/// Headers that carry API keys.
const API_KEY_HEADERS: &[&str] = &[
    "x-api-key",
    "api-key",
    "apikey",
    "x-apikey",
    "x-auth-token",
    "x-access-token",
    "x-api-token",
    "x-token",
];

/// Request fields that name the user.
const USER_FIELDS: &[&str] = &[
    "username",
    "user",
    "login",
    "email",
    "user_name",
    "name",
    "account",
];

/// A login seen in the traffic.
#[derive(Debug, Clone)]
pub struct LoginSeen {
    /// The identity it becomes (the user name, made a plain word).
    pub identity: String,
    /// The user name as sent.
    pub username: String,
    /// The principal its token speaks for (`sub`).
    pub principal: String,
    /// `POST`.
    pub method: String,
    /// The login path.
    pub path: String,
    /// The JSON body as sent (password included; replaced when written out).
    pub body: IndexMap<String, Json>,
    /// The key holding the user name.
    pub user_field: String,
    /// The key holding the password.
    pub password_field: String,
    /// Where the token is in the answer (`$.token`).
    pub token_path: String,
    /// The transaction.
    pub tx: i64,
    /// The answer's status.
    pub status: u16,
}

/// The identities of a case.
#[derive(Debug, Default)]
pub struct Identities {
    /// Logins, first per user name.
    pub logins: Vec<LoginSeen>,
    /// Principal → identity name.
    by_principal: BTreeMap<String, String>,
    /// Identities whose tokens claim an admin role.
    admins: std::collections::BTreeSet<String>,
    /// API keys and session cookies (by a hash of the value) → identity name.
    by_credential: BTreeMap<String, String>,
    /// Such an identity's header: (name, value template), its variable and what it holds.
    credential_headers: BTreeMap<String, (String, String, String, String)>,
}

impl Identities {
    /// Finds the logins and principals in the samples.
    pub(crate) fn discover(targets: &[Target]) -> Identities {
        let mut ids = Identities::default();
        for t in targets {
            for (id, tx) in &t.samples {
                if let Some(l) = login(*id, tx)
                    && !ids.logins.iter().any(|x| x.username == l.username)
                {
                    ids.by_principal
                        .insert(l.principal.clone(), l.identity.clone());
                    ids.logins.push(l);
                }
            }
        }
        for t in targets {
            for (_, tx) in &t.samples {
                if let Some((p, jwt)) = bearer_principal(tx) {
                    let name = ids
                        .by_principal
                        .entry(p.clone())
                        .or_insert_with(|| format!("user-{}", plain(&p)))
                        .clone();
                    if claims_admin(&jwt) {
                        ids.admins.insert(name);
                    }
                } else if let Some(c) = other_credential(tx) {
                    ids.add_credential(c);
                }
            }
        }
        ids
    }

    /// An API key or session seen: an identity whose value is a placeholder.
    fn add_credential(&mut self, c: Credential) {
        if self.by_credential.contains_key(&c.hash) {
            return;
        }
        let n = self.by_credential.len() + 1;
        let name = format!("{}-{n}", c.kind);
        let var = env_name(&name, "");
        let var = var.trim_end_matches('_').to_owned();
        let value = c.template.replace("VAR", &format!("{{{{env.{var}}}}}"));
        let what = format!(
            "the {} sent as `{}` (first seen on {})",
            c.kind_words, c.header, c.first_path
        );
        self.credential_headers
            .insert(name.clone(), (c.header, value, var, what));
        self.by_credential.insert(c.hash, name);
    }

    /// The identity a request was sent as, if its credentials are known.
    pub fn of(&self, tx: &Transaction) -> Option<&str> {
        if let Some((p, _)) = bearer_principal(tx) {
            return self.by_principal.get(&p).map(String::as_str);
        }
        let c = other_credential(tx)?;
        self.by_credential.get(&c.hash).map(String::as_str)
    }

    /// The principal an identity speaks for.
    pub fn principal(&self, identity: &str) -> Option<&str> {
        self.by_principal
            .iter()
            .find(|(_, v)| *v == identity)
            .map(|(k, _)| k.as_str())
    }

    /// Whether the identity's tokens claim an admin role.
    pub fn is_admin(&self, identity: &str) -> bool {
        self.admins.contains(identity)
    }

    /// Identities that can log in by themselves, then the others, in a stable order.
    pub fn all(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.logins.iter().map(|l| l.identity.as_str()).collect();
        for v in self
            .by_principal
            .values()
            .chain(self.credential_headers.keys())
        {
            if !out.contains(&v.as_str()) {
                out.push(v);
            }
        }
        out
    }

    /// How a test refers to the identity's raw token.
    pub fn token_ref(&self, identity: &str) -> String {
        if self.logins.iter().any(|l| l.identity == identity) {
            format!("identity.{identity}.token")
        } else {
            format!("env.{}", env_name(identity, "TOKEN"))
        }
    }

    /// The identities file for `used`, and the variables to fill.
    pub fn file(&self, used: &[String]) -> (IdentitiesFile, Vec<(String, String)>) {
        let mut identities = IndexMap::new();
        let mut placeholders = Vec::new();
        for name in used {
            let def = match self.logins.iter().find(|l| &l.identity == name) {
                Some(l) => {
                    let var = env_name(name, "PASSWORD");
                    placeholders.push((
                        var.clone(),
                        format!("{name}'s password (user name `{}`)", l.username),
                    ));
                    login_identity(l, &var)
                }
                None if self.credential_headers.contains_key(name) => {
                    let (header, value, var, what) = &self.credential_headers[name];
                    placeholders.push((var.clone(), what.clone()));
                    Identity {
                        description: Some(what.clone()),
                        login: None,
                        headers: [(header.clone(), value.clone())].into_iter().collect(),
                    }
                }
                None => {
                    let var = env_name(name, "TOKEN");
                    let p = self.principal(name).unwrap_or(name);
                    placeholders.push((
                        var.clone(),
                        format!("a current bearer token for principal {p} (no login was seen)"),
                    ));
                    Identity {
                        description: Some(format!(
                            "principal {p}, seen only through its tokens; tokens expire — a login step is better"
                        )),
                        login: None,
                        headers: [(
                            "Authorization".to_owned(),
                            format!("Bearer {{{{env.{var}}}}}"),
                        )]
                        .into_iter()
                        .collect(),
                    }
                }
            };
            identities.insert(name.clone(), def);
        }
        (
            IdentitiesFile {
                version: spec::IDENTITIES_FORMAT.into(),
                identities,
            },
            placeholders,
        )
    }
}

fn login_identity(l: &LoginSeen, var: &str) -> Identity {
    let mut body = l.body.clone();
    body.insert(
        l.password_field.clone(),
        Json::String(format!("{{{{env.{var}}}}}")),
    );
    Identity {
        description: Some(format!(
            "principal {}, logging in as `{}` at {} {} (transaction {})",
            l.principal, l.username, l.method, l.path, l.tx
        )),
        login: Some(Login {
            request: spec::Request {
                method: l.method.clone(),
                url: l.path.clone(),
                json: Some(Json::Object(body)),
                ..Default::default()
            },
            extract: vec![Extract {
                name: "token".into(),
                json: Some(l.token_path.clone()),
                ..Default::default()
            }],
        }),
        headers: [("Authorization".to_owned(), "Bearer {{token}}".to_owned())]
            .into_iter()
            .collect(),
    }
}

/// `ALICE_PASSWORD` for identity `alice`.
pub fn env_name(identity: &str, what: &str) -> String {
    let mut s: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    s.push('_');
    s.push_str(what);
    s
}

/// A value as a plain word for names: lowercase letters, digits and dashes.
pub fn plain(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(40) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "x".into() } else { out }
}

/// An API key or session cookie a request carried.
struct Credential {
    /// `key` or `session`: the identity's name prefix.
    kind: &'static str,
    kind_words: &'static str,
    header: String,
    /// The header value with `VAR` where the secret goes.
    template: String,
    hash: String,
    first_path: String,
}

/// The API key header or session cookie of a request without a bearer token.
fn other_credential(tx: &Transaction) -> Option<Credential> {
    let hash = |v: &str| blake3::hash(v.as_bytes()).to_hex().to_string();
    let first_path = tx.uri.split('?').next().unwrap_or(&tx.uri).to_owned();
    for (name, value) in tx.request_headers.iter() {
        if API_KEY_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) && !value.trim().is_empty()
        {
            return Some(Credential {
                kind: "key",
                kind_words: "API key",
                header: name.to_owned(),
                template: "VAR".into(),
                hash: hash(value.trim()),
                first_path,
            });
        }
    }
    let cookies = tx.request_header("cookie")?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        let n = k.to_ascii_lowercase();
        let session = n.contains("sess")
            || n == "sid"
            || n.ends_with("_sid")
            || n.contains("auth")
            || n.ends_with("token");
        (session && !v.is_empty()).then(|| Credential {
            kind: "session",
            kind_words: "session cookie",
            header: "Cookie".into(),
            template: format!("{k}=VAR"),
            hash: hash(v),
            first_path: first_path.clone(),
        })
    })
}

fn bearer_principal(tx: &Transaction) -> Option<(String, Jwt)> {
    let auth = tx.request_header("authorization")?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let jwt = Jwt::parse(token.trim())?;
    Some((jwt.subject()?, jwt))
}

fn claims_admin(jwt: &Jwt) -> bool {
    ["role", "roles", "scope", "scopes", "groups", "permissions"]
        .iter()
        .any(|k| {
            jwt.claims
                .get(*k)
                .is_some_and(|v| v.to_string().to_ascii_lowercase().contains("admin"))
        })
        || ["admin", "is_admin", "isAdmin"]
            .iter()
            .any(|k| jwt.claims.get(*k) == Some(&Value::Bool(true)))
}

/// A login in `tx`: a 2xx answer with a JWT to a JSON body naming a user and a password.
fn login(id: i64, tx: &Transaction) -> Option<LoginSeen> {
    let status = tx.status?;
    if !(200..300).contains(&status) || !matches!(tx.method.as_ref(), "POST" | "PUT") {
        return None;
    }
    let Ok(Json::Object(body)) = serde_json::from_slice::<Json>(&tx.request_body.data) else {
        return None;
    };
    let field = |names: &[&str]| {
        body.iter().find_map(|(k, v)| match v {
            Json::String(s) if names.contains(&k.to_ascii_lowercase().as_str()) => {
                Some((k.clone(), s.clone()))
            }
            _ => None,
        })
    };
    let (password_field, _) = field(PASSWORD_FIELDS)?;
    let (user_field, username) = field(USER_FIELDS)?;
    let answer: Value = serde_json::from_slice(&tx.response_body.data).ok()?;
    let (token_path, principal) = find_jwt(&answer, "$")?;
    let path = tx.uri.split('?').next().unwrap_or(&tx.uri).to_owned();
    Some(LoginSeen {
        identity: plain(&username),
        username,
        principal,
        method: tx.method.to_string(),
        path,
        body,
        user_field,
        password_field,
        token_path,
        tx: id,
        status,
    })
}

/// The first JWT among the string leaves, with its path and subject.
fn find_jwt(v: &Value, path: &str) -> Option<(String, String)> {
    match v {
        Value::String(s) => Jwt::parse(s)
            .and_then(|j| j.subject())
            .map(|sub| (path.to_owned(), sub)),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                format!("{path}.{k}")
            } else {
                format!("{path}['{k}']")
            };
            find_jwt(x, &p)
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_jwt(x, &format!("{path}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::Transaction;

    fn tx(headers: &[(&str, &str)]) -> Transaction {
        let mut t = Transaction {
            method: "GET".into(),
            uri: "/things/1".into(),
            status: Some(200),
            ..Transaction::default()
        };
        for (n, v) in headers {
            t.request_headers.push(n, v);
        }
        t
    }

    #[test]
    fn api_keys_and_sessions_become_identities_with_placeholders() {
        let samples = vec![
            (1, tx(&[("X-API-Key", "k-aaaa")])),
            (2, tx(&[("X-API-Key", "k-bbbb")])),
            (3, tx(&[("X-API-Key", "k-aaaa")])),
            (4, tx(&[("Cookie", "theme=dark; sessionid=s-1234")])),
        ];
        let t = Target {
            method: "GET".into(),
            template: "/things/{id}".into(),
            details: Vec::new(),
            samples,
            findings: Vec::new(),
        };
        let ids = Identities::discover(std::slice::from_ref(&t));
        assert_eq!(ids.all(), vec!["key-1", "key-2", "session-3"]);
        assert_eq!(ids.of(&t.samples[2].1), Some("key-1"));
        assert_eq!(ids.of(&t.samples[3].1), Some("session-3"));
        let (file, vars) = ids.file(&["key-2".into(), "session-3".into()]);
        let key = &file.identities["key-2"];
        assert_eq!(key.headers["X-API-Key"], "{{env.KEY_2}}");
        assert_eq!(
            file.identities["session-3"].headers["Cookie"],
            "sessionid={{env.SESSION_3}}"
        );
        let names: Vec<&str> = vars.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(names, vec!["KEY_2", "SESSION_3"]);
        // Nothing of the values reaches the file.
        let yaml = serde_saphyr::to_string(&file).unwrap();
        assert!(
            !yaml.contains("k-bbbb") && !yaml.contains("s-1234"),
            "{yaml}"
        );
    }
}
