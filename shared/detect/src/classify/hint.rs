//! Context: what a field name (or the words before a value in free text) says the value is.

use super::checks::{entropy, valid_date};
use super::{Confidence, DataClass, Scan, is_word};
use std::ops::BitOr;

/// A set of context flags derived from a field name or nearby words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Hint(u32);

impl Hint {
    /// Named as an e-mail address.
    pub const EMAIL: Hint = Hint(1);
    /// Named as a phone number.
    pub const PHONE: Hint = Hint(1 << 1);
    /// Named as a payment card.
    pub const CARD: Hint = Hint(1 << 2);
    /// Named as a US SSN.
    pub const SSN: Hint = Hint(1 << 3);
    /// Named as a birth date.
    pub const DOB: Hint = Hint(1 << 4);
    /// Named as a password.
    pub const PASSWORD: Hint = Hint(1 << 5);
    /// Named as a secret, token or key (the last word of the name).
    pub const SECRET: Hint = Hint(1 << 6);
    /// Named as a national identifier (NINO, NHS, SIN, PESEL, Aadhaar, NIF...).
    pub const NATIONAL_ID: Hint = Hint(1 << 7);
    /// Named as a session identifier.
    pub const SESSION: Hint = Hint(1 << 8);
    /// Named as public (`public_key`, `publishable`): never a secret.
    pub const PUBLIC: Hint = Hint(1 << 9);
    /// Mentions AWS.
    pub const AWS: Hint = Hint(1 << 10);
    /// Mentions Azure or a storage account key.
    pub const AZURE: Hint = Hint(1 << 11);
    /// Mentions Twilio.
    pub const TWILIO: Hint = Hint(1 << 12);
    /// Mentions GitHub.
    pub const GITHUB: Hint = Hint(1 << 13);
    /// Mentions GitLab.
    pub const GITLAB: Hint = Hint(1 << 14);
    /// Mentions Slack.
    pub const SLACK: Hint = Hint(1 << 15);
    /// Mentions Stripe.
    pub const STRIPE: Hint = Hint(1 << 16);
    /// Mentions SendGrid.
    pub const SENDGRID: Hint = Hint(1 << 17);
    /// Mentions OpenAI.
    pub const OPENAI: Hint = Hint(1 << 18);
    /// Named as an IBAN or bank account.
    pub const IBAN: Hint = Hint(1 << 19);

    /// Whether every flag of `other` is set.
    pub fn has(self, other: Hint) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// The hint of a field name: `userEmail`, `x-api-key`, `date_of_birth`, `client_secret`.
    pub fn from_key(key: &str) -> Hint {
        let mut h = Hint::default();
        let mut prev = Word::default();
        let mut last = Hint::default();
        for w in split_words(key.as_bytes()) {
            let w = Word::new(w);
            let (any, as_last) = word_flags(w.as_str(), prev.as_str());
            h = h | any;
            last = as_last;
            prev = w;
        }
        // Secret-ness is decided by the last word: `api_key` is, `key_name` is not.
        let h = h | last;
        if h.has(Hint::PUBLIC) {
            Hint(h.0 & !(Hint::SECRET.0 | Hint::PASSWORD.0))
        } else {
            h
        }
    }

    /// The hint of the words just before a value in free text (`"my credit card: …"`).
    /// Only the data-naming flags count here; secret-ness needs an assignment (see `secrets`).
    pub fn from_window(window: &[u8]) -> Hint {
        let mut h = Hint::default();
        let mut prev = Word::default();
        for w in split_words(window) {
            let w = Word::new(w);
            let (any, _) = word_flags(w.as_str(), prev.as_str());
            h = h | any;
            prev = w;
        }
        Hint(h.0 & !(Hint::SECRET.0 | Hint::PASSWORD.0 | Hint::SESSION.0))
    }
}

/// A lowercased word on the stack; longer words never match a context word.
#[derive(Clone, Copy, Default)]
struct Word {
    buf: [u8; 16],
    len: usize,
}

impl Word {
    fn new(w: &[u8]) -> Word {
        let mut out = Word::default();
        if w.len() <= out.buf.len() {
            out.buf[..w.len()].copy_from_slice(w);
            out.buf[..w.len()].make_ascii_lowercase();
            out.len = w.len();
        }
        out
    }

    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.buf[..self.len])
            .ok()
            .filter(|s| !s.is_empty())
    }
}

impl BitOr for Hint {
    type Output = Hint;
    fn bitor(self, rhs: Hint) -> Hint {
        Hint(self.0 | rhs.0)
    }
}

/// Words of a name: split at non-alphanumerics and camelCase boundaries.
pub(crate) fn split_words(s: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < s.len() && !s[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i >= s.len() {
            return None;
        }
        let start = i;
        i += 1;
        while i < s.len() && s[i].is_ascii_alphanumeric() {
            // camelCase: a lower→upper step starts a new word; so does UPPER→Upper+lower.
            let (p, c) = (s[i - 1], s[i]);
            if p.is_ascii_lowercase() && c.is_ascii_uppercase() {
                break;
            }
            if p.is_ascii_uppercase()
                && c.is_ascii_uppercase()
                && s.get(i + 1).is_some_and(u8::is_ascii_lowercase)
            {
                break;
            }
            i += 1;
        }
        Some(&s[start..i])
    })
}

/// Flags a word sets anywhere in a name, and flags it sets only as the last word.
fn word_flags(w: Option<&str>, prev: Option<&str>) -> (Hint, Hint) {
    let Some(w) = w else {
        return (Hint::default(), Hint::default());
    };
    let any = match w {
        "email" | "mail" | "emailaddress" => Hint::EMAIL,
        "phone" | "mobile" | "tel" | "telephone" | "msisdn" | "fax" | "cell" | "cellphone"
        | "telefon" | "telefono" | "telepono" | "phonenumber" => Hint::PHONE,
        "card" | "cc" | "pan" | "cardnumber" | "creditcard" | "ccnumber" => Hint::CARD,
        "ssn" | "social" => Hint::SSN,
        "dob" | "birth" | "birthday" | "birthdate" | "born" => Hint::DOB,
        "nino" | "nhs" | "sin" | "nas" | "pesel" | "aadhaar" | "aadhar" | "nif" | "nie" | "dni" => {
            Hint::NATIONAL_ID
        }
        "iban" => Hint::IBAN,
        "public" | "publishable" | "pub" => Hint::PUBLIC,
        "aws" | "amazon" => Hint::AWS,
        "azure" | "accountkey" | "storage" | "azurite" => Hint::AZURE,
        "twilio" => Hint::TWILIO,
        "github" | "gh" => Hint::GITHUB,
        "gitlab" => Hint::GITLAB,
        "slack" => Hint::SLACK,
        "stripe" => Hint::STRIPE,
        "sendgrid" => Hint::SENDGRID,
        "openai" => Hint::OPENAI,
        _ => Hint::default(),
    };
    let last = match w {
        "password" | "passwd" | "pwd" | "pass" | "passphrase" | "passcode" => Hint::PASSWORD,
        "secret" | "secrets" | "token" | "apikey" | "credential" | "credentials" | "creds"
        | "auth" | "bearer" => Hint::SECRET,
        "key"
            if matches!(
                prev,
                Some(
                    "api"
                        | "access"
                        | "secret"
                        | "private"
                        | "auth"
                        | "client"
                        | "signing"
                        | "master"
                        | "encryption"
                        | "account"
                        | "app"
                        | "service"
                        | "admin"
                )
            ) =>
        {
            Hint::SECRET
        }
        "session" | "sessionid" | "sid" | "phpsessid" | "jsessionid" | "sess" => Hint::SESSION,
        "id" if prev == Some("session") => Hint::SESSION,
        _ => Hint::default(),
    };
    (any, last)
}

/// Words that mark a value as a stand-in (`changeme`, `xxxx`, `your_api_key`).
static FILLERS: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([
                "xxxx",
                "****",
                "....",
                "changeme",
                "change_me",
                "your_",
                "your-",
                "example",
                "placeholder",
                "redacted",
                "secret_here",
                "todo",
                "dummy",
                "null",
                "none",
                "undefined",
                "password",
            ])
            .ok()
    });

/// Values that stand in for a secret rather than being one.
pub(crate) fn is_placeholder(v: &[u8]) -> bool {
    let first = v.first().copied().unwrap_or(b' ');
    if matches!(first, b'$' | b'%' | b'<' | b'{' | b'[' | b'*' | b'#')
        || v.starts_with(b"ENC(")
        || v.windows(2).any(|w| w == b"{{" || w == b"${")
    {
        return true;
    }
    v.iter().all(|&c| c == first) || FILLERS.as_ref().is_some_and(|f| f.is_match(v))
}

/// Classes decided by the field name over the whole value: passwords, dates of birth, named
/// secrets and session identifiers.
pub(super) fn whole_value(s: &mut Scan<'_, '_>) {
    let key = s.key;
    if key == Hint::default() {
        return;
    }
    let v = s.text.trim();
    let start = s.text.len() - s.text.trim_start().len();
    let end = start + v.len();
    let vb = v.as_bytes();
    if vb.is_empty() {
        return;
    }
    if key.has(Hint::PASSWORD) {
        if !is_placeholder(vb) && vb.len() <= 256 {
            s.push(DataClass::Password, start, end, Confidence::High);
        }
    } else if key.has(Hint::DOB) {
        if is_date(vb) {
            s.push(DataClass::DateOfBirth, start, end, Confidence::High);
        }
    } else if key.has(Hint::SESSION) {
        if vb.len() >= 16 && entropy(vb) >= 3.0 && !is_placeholder(vb) {
            s.push(DataClass::SessionCookie, start, end, Confidence::Medium);
        }
    } else if key.has(Hint::SECRET) && looks_secret(vb) {
        let class = super::secrets::refine(vb, key);
        s.push(class, start, end, Confidence::Medium);
    }
}

/// The vendor class a secret-named value belongs to when the name mentions the vendor.
pub(crate) fn vendor_class(h: Hint) -> Option<DataClass> {
    [
        (Hint::AWS, DataClass::AwsSecretAccessKey),
        (Hint::GITHUB, DataClass::GithubToken),
        (Hint::GITLAB, DataClass::GitlabToken),
        (Hint::SLACK, DataClass::SlackToken),
        (Hint::STRIPE, DataClass::StripeKey),
        (Hint::TWILIO, DataClass::TwilioKey),
        (Hint::SENDGRID, DataClass::SendgridKey),
        (Hint::OPENAI, DataClass::OpenaiKey),
        (Hint::AZURE, DataClass::AzureStorageKey),
    ]
    .into_iter()
    .find(|(f, _)| h.has(*f))
    .map(|(_, c)| c)
}

/// A value that could be a generated secret: long enough, varied enough, one token, not a
/// UUID (identifiers are not secrets), not a placeholder.
pub(crate) fn looks_secret(v: &[u8]) -> bool {
    if !(16..=512).contains(&v.len()) || is_placeholder(v) {
        return false;
    }
    if v.iter()
        .any(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b',' | b';'))
    {
        return false;
    }
    if is_uuid(v) {
        return false;
    }
    let digits = v.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = v.iter().filter(|c| c.is_ascii_alphabetic()).count();
    // Words and paths (`prod5zyxlmy-cmk`, `cmp2-qat-1208358310`) are names, not keys.
    let seps = v.iter().filter(|c| matches!(c, b'-' | b'.' | b':')).count();
    digits > 0 && letters > 0 && seps <= 1 && entropy(v) >= 3.5
}

/// `8-4-4-4-12` hexadecimal.
pub(crate) fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A calendar date in a common layout: ISO `YYYY-MM-DD` (optionally with a time),
/// `DD/MM/YYYY`, `MM/DD/YYYY`, `DD.MM.YYYY`, `YYYYMMDD`.
fn is_date(v: &[u8]) -> bool {
    let digits: Vec<u32> = v
        .split(|c| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .take(3)
        .map(super::checks::num)
        .collect();
    if v.len() == 8 && v.iter().all(u8::is_ascii_digit) {
        let n = super::checks::num(v);
        return valid_date(n / 10_000, n / 100 % 100, n % 100) && n / 10_000 > 1850;
    }
    let &[a, b, c] = digits.as_slice() else {
        return false;
    };
    let word_ok = v.len() <= 35
        && !v
            .iter()
            .any(|&c| is_word(c) && c.is_ascii_alphabetic() && c != b'T' && c != b'Z');
    word_ok
        && if a > 1850 {
            valid_date(a, b, c)
        } else {
            c > 1850 && (valid_date(c, b, a) || valid_date(c, a, b))
        }
}
