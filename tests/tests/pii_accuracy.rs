//! Sensitive-data accuracy on the third-party corpus (`../shared/corpus/pii`): every class the
//! corpus covers must reach precision 0.95 and recall 0.90, and no Luhn-invalid number may be
//! reported as a card. The table is printed for `tests/CONFORMANCE.md`.

use tapline_tests::pii;

#[test]
fn every_class_meets_the_bar() -> anyhow::Result<()> {
    let Some(dir) = pii::corpus_dir() else {
        eprintln!("skipped: no ../shared/corpus/pii beside the repository");
        return Ok(());
    };
    let report = pii::evaluate(&dir)?;
    println!("{}", pii::table(&report));
    let mut failures = Vec::new();
    for (class, s) in report.per_class() {
        if s.tp + s.fn_ == 0 && s.fp == 0 {
            continue;
        }
        if s.precision() < 0.95 || s.recall() < 0.90 {
            failures.push(format!(
                "{class}: precision {:.3} recall {:.3} (TP {} FP {} FN {})",
                s.precision(),
                s.recall(),
                s.tp,
                s.fp,
                s.fn_
            ));
        }
    }
    let cards = report
        .scores
        .get(&(
            tapline_detect::classify::DataClass::CreditCard,
            "test_cards",
        ))
        .copied()
        .unwrap_or_default();
    if cards.fp > 0 {
        failures.push(format!(
            "{} Luhn-invalid numbers reported as cards",
            cards.fp
        ));
    }
    assert!(cards.tp > 50, "the test-card list was not read");
    assert!(
        failures.is_empty(),
        "below the bar:\n{}\n{}",
        failures.join("\n"),
        report.errors.join("\n")
    );
    Ok(())
}
