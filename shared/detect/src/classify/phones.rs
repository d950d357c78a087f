//! Phone numbers against libphonenumber's metadata (crate `phonenumber`). Parsing with the
//! library costs microseconds and goes through a regex cache behind one global mutex, so every
//! candidate first meets a pre-filter built once from the same metadata: the region's possible
//! lengths and its general number pattern, compiled here without a lock. Only candidates that
//! pass are parsed and validated by the library; verdicts are remembered per thread. The
//! shapes are per thread too: one compiled regex used from two decoder threads meets itself in
//! its cache pool (a profile of an import showed the contention).

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use std::cell::OnceCell;

/// What a region's numbers can be, from the metadata.
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

/// Shapes by region id (`"US"`), each compiled when first asked for, and region ids by calling
/// code; the maps built once.
struct Shapes {
    by_region: foldhash::HashMap<String, OnceCell<Option<Shape>>>,
    by_code: foldhash::HashMap<u16, Vec<String>>,
}

impl Shapes {
    fn get(&self, region: &str) -> Option<&Shape> {
        let cell = self.by_region.get(region)?;
        cell.get_or_init(|| DATABASE.by_id(region).and_then(Shape::of))
            .as_ref()
    }
}

impl Shapes {
    fn build() -> Shapes {
        let mut by_region = foldhash::HashMap::default();
        let mut by_code: foldhash::HashMap<u16, Vec<String>> = foldhash::HashMap::default();
        for m in DATABASE.iter() {
            by_region.insert(m.id().to_owned(), OnceCell::new());
            by_code
                .entry(m.country_code())
                .or_default()
                .push(m.id().to_owned());
        }
        Shapes { by_region, by_code }
    }
}

thread_local! {
    static SHAPES: Shapes = Shapes::build();
}

/// `digits` (country code first) could be a number of the country its code names.
pub(super) fn international_shape(digits: &str) -> bool {
    SHAPES.with(|s| international_in(s, digits))
}

fn international_in(s: &Shapes, digits: &str) -> bool {
    (1..=3).any(|n| {
        let (Some(code), Some(nsn)) = (digits.get(..n), digits.get(n..)) else {
            return false;
        };
        let Ok(code) = code.parse::<u16>() else {
            return false;
        };
        s.by_code.get(&code).is_some_and(|regions| {
            regions
                .iter()
                .any(|r| s.get(r).is_some_and(|shape| shape.fits(nsn)))
        })
    })
}

/// `digits` dialled nationally could be a number of `region`.
pub(super) fn national_shape(digits: &str, region: Id) -> bool {
    SHAPES.with(|s| {
        s.get(region.as_ref())
            .is_some_and(|shape| shape.fits_national(digits))
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
}
