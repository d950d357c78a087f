//! JUnit XML through `quick-junit` (nextest's): one suite per run, one case per test.

use super::attempt_text;
use crate::run::{RunReport, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The run as JUnit XML: fail → `<failure>`, error → `<error>`, inconclusive and not run →
/// `<skipped>`, each with the failed attempts' requests and responses.
pub fn junit(report: &RunReport) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("tapline security tests against {}", report.target));
    suite.set_time(Duration::from_secs_f64(report.duration_ms / 1000.0));
    suite.add_property(("target", report.target.as_str()));
    for t in &report.tests {
        let status = match t.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail | Verdict::Error => {
                let kind = if t.verdict == Verdict::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(t.reason.clone().unwrap_or_default());
                s.set_type(format!("{} severity", t.severity));
                let evidence: Vec<String> = t
                    .failed_attempts()
                    .map(|(st, a)| attempt_text(st, a))
                    .collect();
                s.set_description(evidence.join("\n----\n"));
                s
            }
            Verdict::Inconclusive | Verdict::NotRun => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(
                    t.reason
                        .clone()
                        .unwrap_or_else(|| t.verdict.as_str().to_owned()),
                );
                s
            }
        };
        let mut case = TestCase::new(t.name.as_str(), status);
        case.set_classname(t.id.as_str());
        case.set_time(Duration::from_secs_f64(t.duration_ms / 1000.0));
        case.add_property(("file", t.file.as_str()));
        case.add_property(("severity", t.severity.as_str()));
        case.add_property(("tags", t.tags.join(",").as_str()));
        suite.add_test_case(case);
    }
    let mut r = Report::new("tapline");
    r.set_time(Duration::from_secs_f64(report.duration_ms / 1000.0));
    r.add_test_suite(suite);
    r.to_string()
}
