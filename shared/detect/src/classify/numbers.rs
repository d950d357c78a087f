//! Numbers: a run of digit groups (`4012 8888 8888 1881`, `+1 415 555 0132`, `078-05-1123`,
//! `192.168.0.1`) is read once, then every contiguous range of its groups is tried against the
//! numeric classes, longest first, so one run can hold several values.

use super::checks::{self, card_brand, luhn, num};
use super::{Confidence, DataClass, Hint, Scan, is_word};

const MAX_GROUPS: usize = 12;

#[derive(Clone, Copy, Default)]
struct Group {
    start: usize,
    len: usize,
}

/// Reads the number run starting at the digit `p` (a word start) and records what it holds.
/// Returns where scanning resumes.
pub(super) fn at(s: &mut Scan<'_, '_>, p: usize) -> usize {
    let b = s.b;
    let mut groups = [Group::default(); MAX_GROUPS];
    let mut seps = [0u8; MAX_GROUPS];
    let mut n = 0;
    let mut j = p;
    let paren = p > 0 && b[p - 1] == b'(';
    loop {
        let gs = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j - gs > 19 {
            // A long digit string (a hash, a big id): no class starts inside it.
            return j;
        }
        groups[n] = Group {
            start: gs,
            len: j - gs,
        };
        n += 1;
        if n == MAX_GROUPS || j + 1 >= b.len() {
            break;
        }
        let c = b[j];
        if matches!(c, b' ' | b'-' | b'.' | b':') && b[j + 1].is_ascii_digit() {
            seps[n - 1] = c;
            j += 1;
        } else if c == b')' && paren && n == 1 {
            if b[j + 1].is_ascii_digit() {
                seps[0] = b')';
                j += 1;
            } else if b[j + 1] == b' ' && b.get(j + 2).is_some_and(u8::is_ascii_digit) {
                seps[0] = b')';
                j += 2;
            } else {
                break;
            }
        } else {
            break;
        }
    }
    let end = j;
    let after_ok = end >= b.len() || !is_word(b[end]);
    if n == 1 {
        es_nif(s, groups[0]);
    }
    if !after_ok {
        // Digits glued to letters (`v2`, `12345678Z`): nothing else to read here.
        return end;
    }
    let hint = s.hint_at(p);
    let mut a = 0;
    while a < n {
        let mut matched = false;
        for z in (a + 1..=n).rev() {
            // A range inside a longer run of the same layout (`8709 8372 1959 4843 62`) is
            // not a card on its own: the number is the whole run — unless the run is too long
            // to be one number (two cards side by side), when its ranges stand alone.
            let inner = if z - a > 1 { Some(seps[a]) } else { None };
            let continues = inner.is_some_and(|sep| {
                let within = (z < n && seps[z - 1] == sep && (z + 1 == n || seps[z] == sep))
                    || (a > 0 && seps[a - 1] == sep && (a == 1 || seps[a - 2] == sep));
                within && same_layout_digits(&groups[..n], &seps[..n], a, z, sep) <= 19
            });
            let run = Run {
                b,
                groups: &groups[a..z],
                seps: &seps[a..z - 1],
                first: a == 0,
                paren,
                part_of_longer: continues,
            };
            if let Some((class, conf, start, stop)) = run.eval(hint) {
                s.push(class, start, stop, conf);
                a = z;
                matched = true;
                break;
            }
        }
        if !matched {
            a += 1;
        }
    }
    end
}

/// Digits in the longest stretch of groups around `a..z` joined by `sep`.
fn same_layout_digits(groups: &[Group], seps: &[u8], a: usize, z: usize, sep: u8) -> usize {
    let mut first = a;
    while first > 0 && seps[first - 1] == sep {
        first -= 1;
    }
    let mut last = z - 1;
    while last + 1 < groups.len() && seps[last] == sep {
        last += 1;
    }
    groups[first..=last].iter().map(|g| g.len).sum()
}

/// A Spanish DNI/NIF: 7–8 digits and the control letter, optionally after a dash.
fn es_nif(s: &mut Scan<'_, '_>, g: Group) {
    let b = s.b;
    if !(7..=8).contains(&g.len) {
        return;
    }
    let mut k = g.start + g.len;
    if b.get(k) == Some(&b'-') {
        k += 1;
    }
    let Some(&letter) = b.get(k) else { return };
    if !letter.is_ascii_alphabetic() || b.get(k + 1).is_some_and(|&c| is_word(c)) {
        return;
    }
    let n = num(&b[g.start..g.start + g.len]);
    if checks::es_nif_letter(n) == letter.to_ascii_uppercase() {
        s.push(DataClass::EsNif, g.start, k + 1, Confidence::Medium);
    }
}

struct Run<'a> {
    b: &'a [u8],
    groups: &'a [Group],
    seps: &'a [u8],
    /// The range starts at the run's first group (a leading `+` or `(` belongs to it).
    first: bool,
    paren: bool,
    /// The range continues, with the same separator, into more groups of the run.
    part_of_longer: bool,
}

impl Run<'_> {
    fn start(&self) -> usize {
        self.groups[0].start
    }

    fn end(&self) -> usize {
        let g = self.groups[self.groups.len() - 1];
        g.start + g.len
    }

    fn lens(&self, want: &[usize]) -> bool {
        self.groups.len() == want.len() && self.groups.iter().zip(want).all(|(g, &w)| g.len == w)
    }

    /// All separators equal and one of `allowed` (true for a single group).
    fn uniform(&self, allowed: &[u8]) -> bool {
        match self.seps.first() {
            None => true,
            Some(&c) => allowed.contains(&c) && self.seps.iter().all(|&x| x == c),
        }
    }

    fn bare(&self) -> bool {
        self.groups.len() == 1
    }

    fn eval(&self, hint: Hint) -> Option<(DataClass, Confidence, usize, usize)> {
        let mut digits = [0u8; 40];
        let mut nd = 0;
        for g in self.groups {
            if nd + g.len > digits.len() {
                return None;
            }
            digits[nd..nd + g.len].copy_from_slice(&self.b[g.start..g.start + g.len]);
            nd += g.len;
        }
        let d = &digits[..nd];
        if let Some(hit) = self.ipv4() {
            return Some(hit);
        }
        if nd < 7 {
            return None;
        }
        if self.after_plus() {
            // `+` and digits are a number in international form, never an id.
            return self.phone(d, hint);
        }
        let (start, end) = (self.start(), self.end());
        let grouped = |conf_if_bare: Confidence| {
            if self.bare() {
                conf_if_bare
            } else {
                Confidence::Medium
            }
        };
        let named_id = hint.has(Hint::NATIONAL_ID);
        match nd {
            13..=19 if !self.part_of_longer && luhn(d) && self.card_layout() => {
                if card_brand(d).is_some() {
                    return Some((DataClass::CreditCard, Confidence::High, start, end));
                }
                if hint.has(Hint::CARD) {
                    return Some((DataClass::CreditCard, Confidence::Medium, start, end));
                }
            }
            12 if (self.bare() || self.lens(&[4, 4, 4]) && self.uniform(b" -:"))
                && d[0] >= b'2'
                && checks::verhoeff(d) =>
            {
                let conf = if named_id {
                    Confidence::High
                } else {
                    grouped(Confidence::Low)
                };
                return Some((DataClass::InAadhaar, conf, start, end));
            }
            9 => {
                if let Ok(arr) = <[u8; 9]>::try_from(d) {
                    let ssn_layout = self.lens(&[3, 2, 4]) && self.uniform(b"- .");
                    if (ssn_layout || self.bare() && hint.has(Hint::SSN)) && checks::us_ssn(&arr) {
                        let conf = if hint.has(Hint::SSN) {
                            Confidence::High
                        } else {
                            Confidence::Medium
                        };
                        return Some((DataClass::UsSsn, conf, start, end));
                    }
                }
                let sin_layout = self.bare() || self.lens(&[3, 3, 3]) && self.uniform(b" -");
                if sin_layout && !matches!(d[0], b'0' | b'8') && luhn(d) {
                    let conf = if named_id {
                        Confidence::High
                    } else {
                        grouped(Confidence::Low)
                    };
                    return Some((DataClass::CaSin, conf, start, end));
                }
            }
            10 if (self.bare() || self.lens(&[3, 3, 4]) && self.uniform(b" -"))
                && checks::uk_nhs(d) =>
            {
                let conf = if named_id {
                    Confidence::High
                } else {
                    grouped(Confidence::Low)
                };
                return Some((DataClass::UkNhs, conf, start, end));
            }
            11 if self.bare() && checks::pl_pesel(d) => {
                let conf = if named_id {
                    Confidence::High
                } else {
                    Confidence::Low
                };
                return Some((DataClass::PlPesel, conf, start, end));
            }
            _ => {}
        }
        self.phone(d, hint)
    }

    /// Four dot-separated octets, optionally with a `/prefix`.
    fn ipv4(&self) -> Option<(DataClass, Confidence, usize, usize)> {
        if self.groups.len() != 4 || !self.seps.iter().all(|&c| c == b'.') {
            return None;
        }
        for g in self.groups {
            if g.len > 3 || num(&self.b[g.start..g.start + g.len]) > 255 {
                return None;
            }
        }
        let mut end = self.end();
        // A prefix length belongs to the address when it is one.
        if self.b.get(end) == Some(&b'/') {
            let digits = self.b[end + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let after = end + 1 + digits;
            if (1..=2).contains(&digits)
                && num(&self.b[end + 1..after]) <= 32
                && self.b.get(after).is_none_or(|&c| !is_word(c))
            {
                end = after;
            }
        }
        Some((DataClass::IpAddress, Confidence::Medium, self.start(), end))
    }

    fn card_layout(&self) -> bool {
        if self.bare() {
            return true;
        }
        if !self.uniform(b" -") {
            return false;
        }
        let lens: Vec<usize> = self.groups.iter().map(|g| g.len).collect();
        matches!(lens.as_slice(), [4, 6, 5] | [4, 6, 4])
            || (lens.len() >= 3
                && lens[..lens.len() - 1].iter().all(|&l| l == 4)
                && (1..=4).contains(&lens[lens.len() - 1]))
    }

    /// A phone number: a layout phones are written in, then libphonenumber's metadata says
    /// whether the digits are a number some country really assigns — international (`+…`)
    /// for any country, national ones for the countries the layout points to.
    fn phone(&self, d: &[u8], hint: Hint) -> Option<(DataClass, Confidence, usize, usize)> {
        let nd = d.len();
        let (start, end) = (self.start(), self.end());
        let phone_seps = b" -.";
        if self.after_plus() {
            let seps_ok = self.seps.iter().all(|c| phone_seps.contains(c));
            let groups_ok = self.bare() || self.groups.iter().all(|g| g.len <= 12);
            if seps_ok && groups_ok && (8..=15).contains(&nd) && international(d) {
                return Some((DataClass::PhoneNumber, Confidence::High, start - 1, end));
            }
            return None;
        }
        if self.first && self.paren && self.seps.first() == Some(&b')') {
            let rest_ok = self.seps[1..].iter().all(|c| phone_seps.contains(c));
            // The layout first: validation costs microseconds.
            if self.groups.len() >= 2
                && rest_ok
                && (self.regions(d).iter().any(|r| national(d, r)) || self.written_at_home(d))
            {
                return Some((DataClass::PhoneNumber, Confidence::High, start - 1, end));
            }
            return None;
        }
        if hint.has(Hint::PHONE) && (7..=15).contains(&nd) {
            return Some((DataClass::PhoneNumber, Confidence::High, start, end));
        }
        // Layouts other classes own (`078-05-0000` is a malformed SSN, not a phone; dates).
        // Spaces and dashes mix in national layouts (`11 98456-5666`); dots stand alone.
        let seps_ok = self.uniform(phone_seps) || self.seps.iter().all(|c| b" -".contains(c));
        if !seps_ok || self.lens(&[3, 2, 4]) || self.date_layout() {
            return None;
        }
        // A stretch of a longer run (`1331 9268 19` of an account number) is no number alone.
        // Thirteen digits only as a country groups them (`011 15-2345-6789` in Argentina).
        let grouped_13 = nd == 13 && !self.bare();
        if !((9..=12).contains(&nd) || grouped_13) || self.part_of_longer {
            return None;
        }
        let national_ok = !grouped_13 && self.regions(d).iter().any(|r| national(d, r));
        let found = national_ok || (!self.bare() && self.written_at_home(d));
        if !found {
            return None;
        }
        // A bare run of digits is as often an id or an amount: only the Low tier.
        let confidence = if self.bare() {
            Confidence::Low
        } else {
            Confidence::Medium
        };
        Some((DataClass::PhoneNumber, confidence, start, end))
    }

    /// The digits are a valid national number of a country that groups its numbers exactly as
    /// they are written here (from the metadata's own national formats), remembered.
    fn written_at_home(&self, d: &[u8]) -> bool {
        // North America's layout is its own: `917-123-4567` failing the plan's rules is a
        // made-up number, not a Mexican or Italian one that happens to group alike.
        if self.regions(d) == PLAN_NANP {
            return false;
        }
        if self.groups.len() > 14 || self.groups.iter().any(|g| g.len > 15) {
            return false;
        }
        // The grouping is part of the question: packed four bits a group, above any address.
        let packed = self.groups.iter().fold(1usize, |a, g| (a << 4) | g.len) | (1 << 62);
        let from = self.start() - usize::from(self.paren && self.first);
        let (Ok(digits), Ok(text)) = (
            std::str::from_utf8(d),
            std::str::from_utf8(&self.b[from..self.end()]),
        ) else {
            return false;
        };
        remembered(packed, d, || super::phones::written_at_home(digits, text))
    }

    /// Where a national number can be from follows from how it is written: a trunk `0` is
    /// a country that dials one; `415-555-0132` and `(415) 555-0132` are North American.
    fn regions(&self, d: &[u8]) -> &'static [&'static [Id]] {
        if d.first() == Some(&b'0') {
            &PLAN_TRUNK
        } else if self.lens(&[3, 3, 4]) || (self.lens(&[1, 3, 3, 4]) && d[0] == b'1') {
            &PLAN_NANP
        } else if self.bare() {
            // Ten bare digits are valid somewhere in most plans (`1234567890` is Indian,
            // Brazilian, British): only plans where they are the usual written form count.
            &PLAN_BARE
        } else {
            &PLAN_GROUPED
        }
    }

    /// The run starts right after a `+` that starts a word: a number in international form.
    fn after_plus(&self) -> bool {
        let start = self.start();
        self.first
            && start > 0
            && self.b[start - 1] == b'+'
            && (start < 2 || !is_word(self.b[start - 2]))
    }

    /// `2024-01-15`, `15.01.2024`: three groups as a date writes them.
    fn date_layout(&self) -> bool {
        self.lens(&[4, 2, 2]) || self.lens(&[2, 2, 4])
    }
}

use phonenumber::country::Id;

/// North America: numbers written `415-555-0132`, `1 415 555 0132`, `4155550132`.
static NANP: &[Id] = &[Id::US, Id::CA];
/// Countries whose national numbers are written with a trunk `0` (`0532 123 45 67`,
/// `09171234567`, `020 7123 4567`).
static TRUNK_REGIONS: &[Id] = &[
    Id::GB,
    Id::DE,
    Id::FR,
    Id::NL,
    Id::BE,
    Id::AT,
    Id::CH,
    Id::SE,
    Id::IL,
    Id::IN,
    Id::BR,
    Id::AR,
    Id::TR,
    Id::PH,
    Id::AU,
    Id::ZA,
    Id::NG,
    Id::EG,
    Id::PK,
    Id::ID,
    Id::VN,
    Id::JP,
    Id::KR,
];
/// Countries whose numbers are often written without it (`532 123 45 67`, `98765 43210`,
/// `11 98456 5666`).
static NO_TRUNK_REGIONS: &[Id] = &[Id::TR, Id::IN, Id::BR];
/// … and bare, ten digits in a row (`2121234567`).
static BARE_REGIONS: &[Id] = &[Id::TR];

/// The plans a layout points to (statics: their addresses key the remembered verdicts).
static PLAN_TRUNK: [&[Id]; 1] = [TRUNK_REGIONS];
static PLAN_NANP: [&[Id]; 1] = [NANP];
static PLAN_BARE: [&[Id]; 2] = [NANP, BARE_REGIONS];
static PLAN_GROUPED: [&[Id]; 2] = [NANP, NO_TRUNK_REGIONS];

/// `d` (digits, country code first) is a valid number of its country.
fn international(d: &[u8]) -> bool {
    if d.first() == Some(&b'0') {
        return false;
    }
    let Ok(digits) = std::str::from_utf8(d) else {
        return false;
    };
    remembered(0, d, || {
        super::phones::international_shape(digits)
            && phonenumber::parse(None, format!("+{digits}"))
                .is_ok_and(|n| phonenumber::is_valid(&n))
    })
}

/// Ten digits (or eleven after a `1`) whose area code and exchange start with 2–9.
fn nanp_shape(d: &[u8]) -> bool {
    let d = match d.len() {
        11 if d[0] == b'1' => &d[1..],
        10 => d,
        _ => return false,
    };
    d[0] >= b'2' && d[3] >= b'2'
}

/// Validations remembered per thread: parsing with libphonenumber costs microseconds, and the
/// same numbers come back in an API's traffic again and again — an API of 100k users sends
/// 100k numbers in turn, which a smaller memory forgets before they come back (~8 MiB).
const REMEMBERED: usize = 1 << 18;

thread_local! {
    static VERDICTS: std::cell::RefCell<foldhash::HashMap<(usize, u64, u8), bool>> =
        std::cell::RefCell::new(foldhash::HashMap::default());
}

/// `check()`'s verdict on digits `d` for `plan` (0: international, else the regions' address),
/// remembered.
fn remembered(plan: usize, d: &[u8], check: impl FnOnce() -> bool) -> bool {
    if d.len() > 19 {
        return check();
    }
    let digits = d
        .iter()
        .fold(0u64, |a, &c| a * 10 + u64::from(c.wrapping_sub(b'0') % 10));
    let key = (plan, digits, d.len() as u8);
    if let Some(v) = VERDICTS.with(|m| m.borrow().get(&key).copied()) {
        return v;
    }
    let v = check();
    VERDICTS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= REMEMBERED {
            m.clear();
        }
        m.insert(key, v);
    });
    v
}

/// `d` (digits) is a valid national number of one of `regions` — and stays in it
/// (`4412345678` read in the US must not become a British `+44`).
fn national(d: &[u8], regions: &'static [Id]) -> bool {
    let Ok(text) = std::str::from_utf8(d) else {
        return false;
    };
    remembered(regions.as_ptr() as usize, d, || national_now(text, regions))
}

fn national_now(text: &str, regions: &[Id]) -> bool {
    // North American plans first by their digit rules: most ten-digit ids fail them cheaply.
    if regions == NANP && !nanp_shape(text.as_bytes()) {
        return false;
    }
    regions.iter().any(|&region| {
        super::phones::national_shape(text, region)
            && phonenumber::parse(Some(region), text).is_ok_and(|n| {
                phonenumber::is_valid(&n)
                    && phonenumber::metadata::DATABASE
                        .by_code(&n.code().value())
                        .is_some_and(|m| m.iter().any(|m| m.id() == region.as_ref()))
            })
    })
}
