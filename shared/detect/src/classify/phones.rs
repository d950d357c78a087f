//! Phone numbers against libphonenumber's metadata (crate `phonenumber`). Parsing with the
//! library costs microseconds and goes through a regex cache behind one global mutex, so every
//! candidate first meets a pre-filter built once from the same metadata: the region's possible
//! lengths and its general number pattern, compiled here without a lock. Only candidates that
//! pass are parsed and validated by the library; verdicts are remembered per thread. Each
//! shape is compiled once, and every thread uses its own clone: one regex used from two
//! decoder threads meets itself in its cache pool (a profile of an import showed the
//! contention), while a clone shares the compiled program and has a pool of its own.

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use std::cell::OnceCell;
use std::sync::{LazyLock, OnceLock};

/// What a region's numbers can be, from the metadata.
#[derive(Clone)]
struct Shape {
    /// Digits dialled before a national number (`0`; `1` in North America).
    trunk: Option<String>,
    lengths: Vec<u16>,
    /// The general national-number pattern, anchored.
    general: regex::Regex,
}

impl Shape {
    fn of(m: &phonenumber::metadata::Metadata) -> Option<Shape> {
        let d = m.descriptors();
        // The metadata's patterns are laid out with whitespace; the general descriptor's
        // lengths are the union of the number types'.
        let raw: String = d
            .general()
            .national_number()
            .as_str()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let types = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        let mut lengths: Vec<u16> = types
            .into_iter()
            .flatten()
            .flat_map(|t| t.possible_length().iter().copied())
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        Some(Shape {
            trunk: m.national_prefix().map(str::to_owned),
            lengths,
            general: regex::Regex::new(&format!("^(?:{raw})$")).ok()?,
        })
    }

    /// `nsn` (a national significant number) could be one of the region's.
    fn fits(&self, nsn: &str) -> bool {
        let length_ok = self.lengths.is_empty()
            || u16::try_from(nsn.len()).is_ok_and(|n| self.lengths.contains(&n));
        length_ok && self.general.is_match(nsn)
    }

    /// `digits` as dialled nationally (the trunk prefix optional) could be one of the region's.
    fn fits_national(&self, digits: &str) -> bool {
        let stripped = self.trunk.as_deref().and_then(|t| digits.strip_prefix(t));
        self.fits(digits) || stripped.is_some_and(|nsn| self.fits(nsn))
    }
}

/// The regions of the metadata by index, found by id (`"US"`) and by calling code, and each
/// region's shape, compiled when first asked for by any thread.
struct Regions {
    metadata: Vec<&'static phonenumber::metadata::Metadata>,
    by_region: foldhash::HashMap<&'static str, usize>,
    by_code: foldhash::HashMap<u16, Vec<usize>>,
    compiled: Vec<OnceLock<Option<Shape>>>,
}

static REGIONS: LazyLock<Regions> = LazyLock::new(|| {
    let metadata: Vec<_> = DATABASE.iter().collect();
    let mut by_region = foldhash::HashMap::default();
    let mut by_code: foldhash::HashMap<u16, Vec<usize>> = foldhash::HashMap::default();
    for (i, m) in metadata.iter().enumerate() {
        by_region.insert(m.id(), i);
        by_code.entry(m.country_code()).or_default().push(i);
    }
    Regions {
        compiled: metadata.iter().map(|_| OnceLock::new()).collect(),
        metadata,
        by_region,
        by_code,
    }
});

thread_local! {
    /// This thread's clones of the shapes, by region index.
    static SHAPES: Vec<OnceCell<Option<Shape>>> =
        REGIONS.metadata.iter().map(|_| OnceCell::new()).collect();
}

fn shape_at(local: &[OnceCell<Option<Shape>>], i: usize) -> Option<&Shape> {
    local[i]
        .get_or_init(|| {
            REGIONS.compiled[i]
                .get_or_init(|| Shape::of(REGIONS.metadata[i]))
                .clone()
        })
        .as_ref()
}

/// `digits` (country code first) could be a number of the country its code names.
pub(super) fn international_shape(digits: &str) -> bool {
    SHAPES.with(|local| {
        (1..=3).any(|n| {
            let (Some(code), Some(nsn)) = (digits.get(..n), digits.get(n..)) else {
                return false;
            };
            let Ok(code) = code.parse::<u16>() else {
                return false;
            };
            REGIONS.by_code.get(&code).is_some_and(|regions| {
                regions
                    .iter()
                    .any(|&r| shape_at(local, r).is_some_and(|shape| shape.fits(nsn)))
            })
        })
    })
}

/// `digits` dialled nationally could be a number of `region`.
pub(super) fn national_shape(digits: &str, region: Id) -> bool {
    let Some(&i) = REGIONS.by_region.get(region.as_ref()) else {
        return false;
    };
    SHAPES.with(|local| shape_at(local, i).is_some_and(|shape| shape.fits_national(digits)))
}

/// Digit-group lengths of a written number: `612 34 56 78` → `[3, 2, 2, 2]`.
type Grouping = Vec<u8>;

/// The grouping of `text`'s digit runs, a lone leading trunk `0` joined to the group after it
/// (`0 532 123 45 67` is written the way `0532 123 45 67` is).
fn grouping(text: &str) -> Grouping {
    let mut groups: Grouping = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(|g| u8::try_from(g.len()).unwrap_or(u8::MAX))
        .collect();
    if groups.len() > 2 && groups[0] == 1 && text.trim_start_matches(['(', ' ']).starts_with('0') {
        groups[1] = groups[1].saturating_add(1);
        groups.remove(0);
    }
    groups
}

/// How a number is written at home: the grouping of its national format (`0532 123 45 67`,
/// `612 34 56 78`, `(601) 2345678`).
fn home_grouping(n: &phonenumber::PhoneNumber) -> Grouping {
    grouping(
        &phonenumber::format(n)
            .mode(phonenumber::Mode::National)
            .to_string(),
    )
}

/// Regions by the groupings their numbers are written in at home, from each region's example
/// fixed-line and mobile numbers formatted nationally by the library. Built once; read-only,
/// so threads share it without a lock.
static WRITTEN: LazyLock<foldhash::HashMap<Grouping, Vec<Id>>> = LazyLock::new(|| {
    let mut by: foldhash::HashMap<Grouping, Vec<Id>> = foldhash::HashMap::default();
    for m in DATABASE.iter() {
        let Ok(region) = m.id().parse::<Id>() else {
            continue; // non-geographic entities (`001`)
        };
        let d = m.descriptors();
        let examples = [d.fixed_line(), d.mobile()]
            .into_iter()
            .flatten()
            .filter_map(|t| t.example());
        for example in examples {
            let Ok(n) = phonenumber::parse(Some(region), example) else {
                continue;
            };
            let regions = by.entry(home_grouping(&n)).or_default();
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
    }
    by
});

/// `digits`, written as `text` (its separators kept), is a valid national number of a region
/// that writes its numbers in exactly that grouping: `612 34 56 78` is Spanish, `512 345 678`
/// Polish, `(601) 2345678` Colombian — while `612-3456-78` is nobody's.
pub(super) fn written_at_home(digits: &str, text: &str) -> bool {
    let written = grouping(text);
    let Some(regions) = WRITTEN.get(&written) else {
        return false;
    };
    regions.iter().any(|&region| {
        let Ok(n) = phonenumber::parse(Some(region), digits) else {
            return false;
        };
        phonenumber::is_valid(&n)
            && n.country().id() == Some(region)
            && home_grouping(&n) == written
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_come_from_the_metadata() {
        assert!(international_shape("14155550132"));
        assert!(international_shape("905321234567"));
        assert!(!international_shape("99123456789"), "no country 99x");
        assert!(national_shape("05321234567", Id::TR) && national_shape("5321234567", Id::TR));
        assert!(!national_shape("1700000000", Id::TR), "a timestamp");
        assert!(national_shape("4155550132", Id::US) && national_shape("14155550132", Id::US));
    }

    #[test]
    fn national_numbers_are_known_by_how_their_country_groups_them() {
        for (digits, text) in [
            ("612345678", "612 34 56 78"),
            ("512345678", "512 345 678"),
            ("6012345678", "(601) 2345678"),
            ("05321234567", "0 532 123 45 67"),
            ("0612345678", "06 12 34 56 78"),
        ] {
            assert!(written_at_home(digits, text), "{text}");
        }
        for (digits, text) in [
            ("612345678", "6123-456-78"),
            ("612345678", "61 23 45 678"),
            ("123456789", "123 456 789"),
        ] {
            assert!(!written_at_home(digits, text), "{text}");
        }
    }
}
