//! What the classifier said of values seen recently: API traffic repeats its values (enums,
//! constant texts, the same users and tokens), and classifying one costs far more than
//! finding it again.
//!
//! A fixed table of slots, each holding one value by its hash (a newer value takes the slot):
//! memory is bounded whatever the traffic, and a lookup is one hash and one comparison. The
//! classifier is a pure function of the value and its hint, so a remembered verdict is exactly
//! the one classifying again would give.

use crate::classify::{Hint, Hit, classify_with_hint};
use std::hash::{BuildHasher, Hash, Hasher};

/// Slots in the table (a power of two).
const SLOTS: usize = 8192;
/// Values longer than this are classified every time: long values rarely repeat, and keeping
/// them would make the table's memory large.
const LONGEST: usize = 192;

/// One remembered verdict.
struct Verdict {
    hint: Hint,
    value: Box<str>,
    hits: Box<[Hit]>,
}

/// Recent verdicts of the classifier, for one thread.
pub(crate) struct Verdicts {
    slots: Vec<Option<Verdict>>,
    hasher: foldhash::fast::FixedState,
}

impl Default for Verdicts {
    fn default() -> Self {
        Verdicts {
            slots: std::iter::repeat_with(|| None).take(SLOTS).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x7a91_3c55),
        }
    }
}

impl Verdicts {
    /// Fills `out` with what [`classify_with_hint`] says of `value` under `hint`.
    pub fn classify(&mut self, value: &str, hint: Hint, out: &mut Vec<Hit>) {
        if value.len() > LONGEST {
            classify_with_hint(value, hint, out);
            return;
        }
        let slot = self.slot(value, hint);
        match &self.slots[slot] {
            Some(v) if v.hint == hint && *v.value == *value => {
                out.clear();
                out.extend_from_slice(&v.hits);
            }
            _ => {
                classify_with_hint(value, hint, out);
                self.slots[slot] = Some(Verdict {
                    hint,
                    value: value.into(),
                    hits: out.as_slice().into(),
                });
            }
        }
    }

    fn slot(&self, value: &str, hint: Hint) -> usize {
        let mut h = self.hasher.build_hasher();
        hint.hash(&mut h);
        value.hash(&mut h);
        (h.finish() as usize) & (SLOTS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fresh(value: &str, hint: Hint) -> Vec<Hit> {
        let mut out = Vec::new();
        classify_with_hint(value, hint, &mut out);
        out
    }

    #[test]
    fn a_value_seen_again_gets_the_same_verdict_under_its_own_hint() {
        let mut v = Verdicts::default();
        let mut out = Vec::new();
        for _ in 0..3 {
            v.classify("jane@example.com", Hint::default(), &mut out);
            assert_eq!(out, fresh("jane@example.com", Hint::default()));
            assert!(!out.is_empty(), "an e-mail address is found");
            // The same text named as a password is another verdict, not the remembered one.
            v.classify("hunter22", Hint::PASSWORD, &mut out);
            assert_eq!(out, fresh("hunter22", Hint::PASSWORD));
            v.classify("hunter22", Hint::default(), &mut out);
            assert_eq!(out, fresh("hunter22", Hint::default()));
        }
    }

    proptest! {
        /// Whatever the order and repetition of values, hints and colliding slots, every
        /// answer is what classifying afresh gives.
        #[test]
        fn remembered_verdicts_are_fresh_verdicts(
            picks in proptest::collection::vec((0usize..12, 0u32..3), 1..200)
        ) {
            let values = [
                "4111111111111111", "+1-202-555-0100", "user7@example.com", "shipped",
                "Lorem ipsum dolor sit amet, jane@example.com", "078-05-1123", "abc",
                "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "",
                "1970-01-01", "hunter22",
            ];
            let hints = [Hint::default(), Hint::PASSWORD, Hint::CARD];
            let mut v = Verdicts::default();
            let mut out = Vec::new();
            for (i, h) in picks {
                v.classify(values[i], hints[h as usize], &mut out);
                prop_assert_eq!(&out, &fresh(values[i], hints[h as usize]));
            }
        }
    }
}
