//! Reports of a run for the tools around CI: JUnit XML (test tabs of CI systems) and SARIF
//! 2.1.0 (code-scanning dashboards), each carrying the request and response evidence of
//! every failed assertion.

mod junit;
mod sarif;

pub use junit::junit;
pub use sarif::sarif;

use crate::exchange::Exchange;
use crate::run::{AttemptResult, StepResult};

/// An exchange as text: the request line, headers and body, then the response's.
pub fn exchange_text(e: &Exchange) -> String {
    let mut out = format!("{} {}\n", e.request.method, e.request.url);
    for (n, v) in &e.request.headers {
        out.push_str(&format!("{n}: {v}\n"));
    }
    if let Some(b) = &e.request.body {
        out.push('\n');
        out.push_str(b);
        out.push('\n');
    }
    match &e.response {
        Some(r) => {
            out.push_str(&format!("\n→ {} ({:.0} ms)\n", r.status, e.duration_ms));
            for (n, v) in &r.headers {
                out.push_str(&format!("{n}: {v}\n"));
            }
            out.push('\n');
            out.push_str(&r.body);
            if r.truncated {
                out.push_str(&format!("\n… ({} bytes in all)", r.body_len));
            }
            out.push('\n');
        }
        None => out.push_str("\n→ no response\n"),
    }
    out
}

/// A failed attempt in words, with its evidence.
pub fn attempt_text(step: &StepResult, a: &AttemptResult) -> String {
    let mut out = format!("step `{}`", step.name);
    if let Some(p) = &a.payload {
        out.push_str(&format!(" with payload `{p}`"));
    }
    out.push('\n');
    for f in &a.failures {
        out.push_str(&format!("  {f}\n"));
    }
    if let Some(e) = &a.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    if let Some(x) = &a.exchange {
        out.push('\n');
        out.push_str(&exchange_text(x));
    }
    out
}
