//! Attack payload detectors: which attack families a request value carries, by which rule and
//! why. Pure functions over one value (and the name of its field), usable at the sensor.
//!
//! Every value is first normalised ([`normalize`]): nested percent-encoding, `%u`, HTML
//! references, JS escapes, overlong UTF-8 and look-alike characters are undone and the text is
//! lowercased, so one rule sees `../`, `%2e%2e%2f`, `%c0%ae%c0%ae%c0%af` and `．．／` alike.

mod html;
mod js;
pub mod normalize;
pub mod request;
mod rules;
mod sqli;
mod xss;

pub use normalize::normalize;
pub use request::{AttackFound, RequestScanner};

/// Attack families: the record's vocabulary, so a finding names the family that found it.
pub use tapline_record::finding::AttackFamily as Family;

/// One detection in one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackHit {
    /// The family.
    pub family: Family,
    /// The rule that fired (stable id, e.g. `traversal.dotdot`).
    pub rule: &'static str,
    /// Why, for people: what was seen in the decoded value.
    pub why: String,
}

/// Detects attacks in one value. `key` is the field's name (a redirect parameter makes an
/// absolute URL an open redirect). Returns at most one hit per family.
pub fn detect(value: &str, key: Option<&str>) -> Vec<AttackHit> {
    let mut out = Vec::new();
    if value.len() < 2 {
        return out;
    }
    let n = normalize(value);
    rules::run(&n, key, &mut out);
    // A value that is only an escaped `<` (`&#060`, `\x3c`, `%3C`): a filter probe.
    if out.is_empty() && n.trim() == "<" && value.trim() != "<" {
        out.push(AttackHit {
            family: Family::Xss,
            rule: "xss.encoding_probe",
            why: format!("the value is an encoded '<' ({})", value.trim()),
        });
    }
    out
}
