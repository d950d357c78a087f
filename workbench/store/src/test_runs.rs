//! Security-test runs kept in the case: each run's verdicts with their evidence, so runs can be
//! compared (what newly fails, what got fixed). The runner is `tapline-sectest`'s; this module
//! only stores what it reports.

use crate::{CaseStore, StoreError};
use duckdb::params;
use std::collections::BTreeMap;

/// A run as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TestRun {
    /// Row id (runs are numbered in order).
    pub id: i64,
    /// Milliseconds since the epoch.
    pub started_ms: i64,
    /// The target URL.
    pub target: String,
    /// Wall time.
    pub duration_ms: f64,
    /// Requests sent.
    pub requests: u64,
}

/// One test's verdict in a run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TestVerdict {
    /// The test's id (stable across runs).
    pub test_id: String,
    /// Its name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// `info` … `critical`.
    pub severity: String,
    /// `pass`, `fail`, `inconclusive`, `error`.
    pub verdict: String,
    /// Why, in one line.
    pub reason: Option<String>,
    /// Steps, attempts, requests and responses (JSON).
    pub evidence: Option<String>,
}

/// How a run differs from the one before it against the same target.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RunComparison {
    /// The earlier run compared with, if any.
    pub previous: Option<i64>,
    /// Tests failing now that did not fail before (new, or passing then).
    pub newly_failing: Vec<String>,
    /// Tests that failed before and pass now.
    pub fixed: Vec<String>,
    /// Tests failing in both.
    pub still_failing: Vec<String>,
}

impl CaseStore {
    /// Stores a run and its verdicts together; returns the run's id.
    pub fn record_test_run(
        &mut self,
        started_ms: i64,
        target: &str,
        duration_ms: f64,
        requests: u64,
        verdicts: &[TestVerdict],
    ) -> Result<i64, StoreError> {
        self.atomically(|tx| {
            let id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM sectest_runs", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO sectest_runs (id, started_ms, target, duration_ms, requests) VALUES (?, ?, ?, ?, ?)",
                params![id, started_ms, target, duration_ms, requests],
            )?;
            let mut ins = tx.prepare(
                "INSERT INTO sectest_results (run_id, test_id, name, file, severity, verdict, reason, evidence) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )?;
            for v in verdicts {
                ins.execute(params![id, v.test_id, v.name, v.file, v.severity, v.verdict, v.reason, v.evidence])?;
            }
            Ok(id)
        })
    }

    /// Every run, newest first.
    pub fn test_runs(&self) -> Result<Vec<TestRun>, StoreError> {
        self.select(
            "SELECT id, started_ms, target, duration_ms, requests FROM sectest_runs ORDER BY id DESC",
            &[],
            |r| {
                Ok(TestRun {
                    id: r.get(0)?,
                    started_ms: r.get(1)?,
                    target: r.get(2)?,
                    duration_ms: r.get(3)?,
                    requests: r.get(4)?,
                })
            },
        )
    }

    /// A run's verdicts, failures first, with their evidence when `evidence` is set.
    pub fn test_verdicts(&self, run: i64, evidence: bool) -> Result<Vec<TestVerdict>, StoreError> {
        let sql = format!(
            "SELECT test_id, name, file, severity, verdict, reason, {} FROM sectest_results WHERE run_id = ? \
             ORDER BY CASE verdict WHEN 'fail' THEN 0 WHEN 'error' THEN 1 WHEN 'inconclusive' THEN 2 ELSE 3 END, test_id",
            if evidence {
                "CAST(evidence AS VARCHAR)"
            } else {
                "NULL"
            }
        );
        self.select(&sql, &[&run], |r| {
            Ok(TestVerdict {
                test_id: r.get(0)?,
                name: r.get(1)?,
                file: r.get(2)?,
                severity: r.get(3)?,
                verdict: r.get(4)?,
                reason: r.get(5)?,
                evidence: r.get(6)?,
            })
        })
    }

    /// `run` against the run before it on the same target.
    pub fn compare_test_run(&self, run: i64) -> Result<RunComparison, StoreError> {
        let previous: Vec<i64> = self.select(
            "SELECT id FROM sectest_runs WHERE id < ? AND target = (SELECT target FROM sectest_runs WHERE id = ?) \
             ORDER BY id DESC LIMIT 1",
            &[&run, &run],
            |r| r.get(0),
        )?;
        let now = self.failing(run)?;
        let Some(&prev) = previous.first() else {
            return Ok(RunComparison {
                newly_failing: now.into_keys().collect(),
                ..RunComparison::default()
            });
        };
        let before = self.failing(prev)?;
        let verdicts_now: BTreeMap<String, String> = self
            .test_verdicts(run, false)?
            .into_iter()
            .map(|v| (v.test_id, v.verdict))
            .collect();
        Ok(RunComparison {
            previous: Some(prev),
            newly_failing: now
                .keys()
                .filter(|t| !before.contains_key(*t))
                .cloned()
                .collect(),
            fixed: before
                .keys()
                .filter(|t| verdicts_now.get(*t).is_some_and(|v| v == "pass"))
                .cloned()
                .collect(),
            still_failing: now
                .keys()
                .filter(|t| before.contains_key(*t))
                .cloned()
                .collect(),
        })
    }

    fn failing(&self, run: i64) -> Result<BTreeMap<String, ()>, StoreError> {
        let ids: Vec<String> = self.select(
            "SELECT test_id FROM sectest_results WHERE run_id = ? AND verdict = 'fail'",
            &[&run],
            |r| r.get(0),
        )?;
        Ok(ids.into_iter().map(|i| (i, ())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(id: &str, v: &str) -> TestVerdict {
        TestVerdict {
            test_id: id.into(),
            name: id.into(),
            file: format!("{id}.yaml"),
            severity: "high".into(),
            verdict: v.into(),
            reason: None,
            evidence: Some(r#"{"steps": []}"#.into()),
        }
    }

    #[test]
    fn runs_compare_with_the_previous_run_on_the_same_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut case = CaseStore::open(&dir.path().join("c.duckdb")).unwrap();
        let a = case
            .record_test_run(
                1,
                "http://t",
                5.0,
                3,
                &[
                    verdict("bola", "fail"),
                    verdict("xss", "fail"),
                    verdict("auth", "pass"),
                ],
            )
            .unwrap();
        // Another target in between does not count.
        case.record_test_run(2, "http://other", 1.0, 1, &[verdict("bola", "pass")])
            .unwrap();
        let b = case
            .record_test_run(
                3,
                "http://t",
                5.0,
                3,
                &[
                    verdict("bola", "pass"),
                    verdict("xss", "fail"),
                    verdict("auth", "fail"),
                ],
            )
            .unwrap();
        let c = case.compare_test_run(b).unwrap();
        assert_eq!(c.previous, Some(a));
        assert_eq!(c.newly_failing, vec!["auth"]);
        assert_eq!(c.fixed, vec!["bola"]);
        assert_eq!(c.still_failing, vec!["xss"]);
        let first = case.compare_test_run(a).unwrap();
        assert_eq!((first.previous, first.newly_failing.len()), (None, 2));
        assert_eq!(case.test_runs().unwrap().len(), 3);
        let v = case.test_verdicts(b, true).unwrap();
        assert_eq!(v[0].verdict, "fail");
        assert!(
            v[0].evidence
                .as_deref()
                .is_some_and(|e| e.contains("steps"))
        );
    }
}
