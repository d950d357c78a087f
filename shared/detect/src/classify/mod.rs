//! Sensitive-data classifiers: which personal data and secrets a string holds, and where.
//!
//! [`classify`] takes one value — a header, a query parameter, a JSON string, a line of text —
//! and the name of the field it came from, and returns [`Hit`]s: a [`DataClass`], a byte span
//! and a [`Confidence`]. Every class is validated beyond its shape (Luhn and card brands,
//! IBAN mod 97, SSA rules for SSNs, check digits of national IDs, JWT headers that decode,
//! token prefixes with their exact alphabets and lengths); classes that have no validator
//! (passwords, generic secrets, dates of birth) are only reported with supporting context.
//!
//! Context is the field name (`"email"`, `"x-api-key"`, `"dob"`) and, in free text, the few
//! words before a candidate (`"my credit card: …"`). It raises confidence (a bare nine-digit
//! number named `ssn`) or is required (a 40-character string is an AWS secret key only next to
//! an AWS key id or under a name that says so).
//!
//! Pure functions: no I/O, no allocation beyond the output, safe on any input. The sensor
//! (redaction) and the workbench (inventory, findings) share them.

mod checks;
mod hint;
mod numbers;
mod opaque;
mod phones;
mod secrets;
mod words;

pub use checks::{card_brand, entropy, iban_mod97, luhn};
pub use hint::Hint;

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! data_classes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $kind:ident, $rank:literal; )*) => {
        /// What kind of sensitive value a hit is. Names are stable (stored in cases, used in
        /// policies and on the command line).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DataClass {
            $( $(#[$doc])* $variant, )*
        }

        impl DataClass {
            /// Every class, in declaration order.
            pub const ALL: &'static [DataClass] = &[$(DataClass::$variant,)*];

            /// The stable snake_case name.
            pub fn name(self) -> &'static str {
                match self { $(DataClass::$variant => $name,)* }
            }

            /// Personal data or a secret.
            pub fn kind(self) -> ClassKind {
                match self { $(DataClass::$variant => ClassKind::$kind,)* }
            }

            /// How strongly the class is validated: 3 = check digits or an exact token format,
            /// 2 = a strict format, 1 = context only. Decides overlaps.
            fn rank(self) -> u8 {
                match self { $(DataClass::$variant => $rank,)* }
            }
        }
    };
}

data_classes! {
    /// An e-mail address.
    Email = "email", Pii, 2;
    /// A phone number: E.164 or a national format that validates.
    PhoneNumber = "phone_number", Pii, 2;
    /// A payment card number (Luhn-valid, known brand or named as a card).
    CreditCard = "credit_card", Pii, 3;
    /// A US Social Security Number.
    UsSsn = "us_ssn", Pii, 3;
    /// An International Bank Account Number (mod 97).
    Iban = "iban", Pii, 3;
    /// An IPv4 or IPv6 address (optionally with a prefix length).
    IpAddress = "ip_address", Pii, 2;
    /// A MAC address.
    MacAddress = "mac_address", Pii, 2;
    /// A date under a field named as a birth date.
    DateOfBirth = "date_of_birth", Pii, 1;
    /// A UK National Insurance number.
    UkNino = "uk_nino", Pii, 3;
    /// A UK NHS number (mod 11).
    UkNhs = "uk_nhs", Pii, 3;
    /// A Canadian Social Insurance Number (Luhn).
    CaSin = "ca_sin", Pii, 3;
    /// A Spanish DNI/NIF or NIE (control letter).
    EsNif = "es_nif", Pii, 3;
    /// An Indian Aadhaar number (Verhoeff).
    InAadhaar = "in_aadhaar", Pii, 3;
    /// A Polish PESEL (check digit and birth date).
    PlPesel = "pl_pesel", Pii, 3;
    /// A JSON Web Token (header decodes to a JOSE header).
    Jwt = "jwt", Secret, 3;
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKeyId = "aws_access_key_id", Secret, 3;
    /// An AWS secret access key (next to a key id or named as one).
    AwsSecretAccessKey = "aws_secret_access_key", Secret, 2;
    /// A Google API key (`AIza…`).
    GcpApiKey = "gcp_api_key", Secret, 3;
    /// A Google Cloud service-account key file.
    GcpServiceAccount = "gcp_service_account", Secret, 3;
    /// An Azure storage account key.
    AzureStorageKey = "azure_storage_key", Secret, 2;
    /// An Azure AD (Entra) client secret (`…8Q~…`).
    AzureClientSecret = "azure_client_secret", Secret, 3;
    /// A GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken = "github_token", Secret, 3;
    /// A GitLab token (`glpat-`, `gloas-`, `glrt-`, ...).
    GitlabToken = "gitlab_token", Secret, 3;
    /// A Slack token (`xoxb-`, `xoxp-`, `xapp-`, ...).
    SlackToken = "slack_token", Secret, 3;
    /// A Slack incoming-webhook or workflow URL.
    SlackWebhook = "slack_webhook", Secret, 3;
    /// A Stripe secret or restricted key (`sk_live_`, `rk_test_`, ...).
    StripeKey = "stripe_key", Secret, 3;
    /// A Twilio account SID or API key SID.
    TwilioKey = "twilio_key", Secret, 3;
    /// A SendGrid API key (`SG.x.y`).
    SendgridKey = "sendgrid_key", Secret, 3;
    /// An OpenAI API key (`sk-…T3BlbkFJ…`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`).
    OpenaiKey = "openai_key", Secret, 3;
    /// A PEM or PGP private key block.
    PrivateKey = "private_key", Secret, 3;
    /// A password: a value under a password field, or the password of Basic auth or URL
    /// credentials.
    Password = "password", Secret, 1;
    /// HTTP Basic credentials (`Basic base64(user:password)`).
    BasicAuth = "basic_auth", Secret, 3;
    /// A session identifier in a session cookie.
    SessionCookie = "session_cookie", Secret, 1;
    /// A high-entropy value under a name that says it is a secret (`client_secret`, `api_key`).
    GenericSecret = "generic_secret", Secret, 1;
}

impl DataClass {
    /// Looks a class up by its stable name.
    pub fn from_name(name: &str) -> Option<DataClass> {
        DataClass::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Personal data or a secret (credential, key, token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassKind {
    /// Personal data (PII).
    Pii,
    /// Secrets and credentials.
    Secret,
}

/// How sure a hit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The shape and check digits fit but nothing around it says so (a bare nine-digit
    /// Luhn-valid number could be a SIN). Reported, not counted in inventories by default.
    Low,
    /// A strict format or a validator, without naming context.
    Medium,
    /// An exact token format, or a validator with context that names the class.
    High,
}

/// One classified span of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// What the span holds.
    pub class: DataClass,
    /// Byte offset of the first byte of the span.
    pub start: usize,
    /// Byte offset one past the last byte of the span.
    pub end: usize,
    /// How sure the classifier is.
    pub confidence: Confidence,
}

/// Classifies one value. `key` is the name of the field it came from (JSON key, header,
/// parameter or cookie name), if any.
pub fn classify(text: &str, key: Option<&str>) -> Vec<Hit> {
    let mut out = Vec::new();
    classify_into(text, key, &mut out);
    out
}

/// Classifies one value into `out` (cleared first), reusing its allocation.
pub fn classify_into(text: &str, key: Option<&str>, out: &mut Vec<Hit>) {
    classify_with_hint(text, key.map(Hint::from_key).unwrap_or_default(), out);
}

/// Classifies one value whose field name's [`Hint`] is already known (callers that see the
/// same names again and again compute it once).
pub fn classify_with_hint(text: &str, hint: Hint, out: &mut Vec<Hit>) {
    out.clear();
    // Nothing shorter than six characters is a class on its own; a name can still say so
    // (`pwd: abc`).
    if text.len() < 6 && hint == Hint::default() {
        return;
    }
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        key: hint,
        hits: out,
    };
    hint::whole_value(&mut s);
    words::scan(&mut s);
    secrets::scan(&mut s);
    opaque::drop_inside_tokens(s.b, s.hits);
    resolve_overlaps(s.hits);
}

/// The state detectors share while scanning one value.
pub(crate) struct Scan<'a, 'o> {
    pub text: &'a str,
    pub b: &'a [u8],
    /// What the field name says.
    pub key: Hint,
    pub hits: &'o mut Vec<Hit>,
}

impl Scan<'_, '_> {
    pub fn push(&mut self, class: DataClass, start: usize, end: usize, confidence: Confidence) {
        if start < end && end <= self.b.len() {
            self.hits.push(Hit {
                class,
                start,
                end,
                confidence,
            });
        }
    }

    /// The field hint combined with what the words just before `at` say (free text).
    pub fn hint_at(&self, at: usize) -> Hint {
        self.key | Hint::from_window(&self.b[at.saturating_sub(48)..at])
    }
}

/// Keeps, among overlapping hits, the one with the highest confidence, then the strongest
/// validation, then the longest span.
fn resolve_overlaps(hits: &mut Vec<Hit>) {
    if hits.len() < 2 {
        return;
    }
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let score = |h: &Hit| (h.confidence, h.class.rank(), h.end - h.start);
    let within = |inner: &Hit, outer: &Hit| inner.start >= outer.start && inner.end <= outer.end;
    let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits.drain(..) {
        match kept.last_mut() {
            Some(last) if h.start < last.end => {
                // A value inside a longer one (digits inside an IPv6 address) is part of it
                // unless it is surer.
                let replace = if within(&h, last) {
                    h.confidence > last.confidence
                } else if within(last, &h) {
                    h.confidence >= last.confidence
                } else {
                    score(&h) > score(last)
                };
                if replace {
                    *last = h;
                }
            }
            _ => kept.push(h),
        }
    }
    *hits = kept;
}

/// A word byte for boundary checks: ASCII alphanumerics and `_`.
pub(crate) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests;
