//! Monitor mode that measures: recorded traffic (imports and live sensors alike, all in the
//! case) replayed through the decision index — per rule, how many requests it would have
//! blocked (all, and since it was made) and its false-positive candidates: allowlisted actors
//! it would hit, and actors with no finding against them. The same replay previews a draft
//! rule before it is saved.

use crate::decide::{Index, Request, Verdict};
use crate::effective::{Effective, effective};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tapline_analysis::actor::{actor_of, describe};
use tapline_store::blocks::{Action, Allow, Rule};
use tapline_store::query::TxFilter;
use tapline_store::{CaseStore, StoreError};

/// How many of a rule's requests are kept by id (for showing them).
pub const EXAMPLES: usize = 500;

/// What one rule would have done to the recorded traffic.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Effect {
    /// The rule.
    pub rule_id: i64,
    /// Requests it would have refused.
    pub would_block: u64,
    /// Of those, recorded since the rule was made.
    pub since_created: u64,
    /// Distinct actors hit.
    pub actors: u64,
    /// Actors it would hit that look legitimate: allowlisted, or no finding names them
    /// (`who: requests`), most requests first, at most ten.
    pub false_positive_candidates: Vec<(String, u64)>,
    /// The requests (transaction ids), the first [`EXAMPLES`].
    pub examples: Vec<i64>,
}

/// Replays the case's traffic through `rules` (each as if enforced; the allowlist applied
/// apart, so what it spares is reported, not hidden), at `now_ns`.
pub fn replay(
    case: &CaseStore,
    rules: &[Rule],
    allow: &[Allow],
    now_ns: i64,
) -> Result<Vec<Effect>, StoreError> {
    // No rule, nothing to charge: spare the scan of every recorded request.
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    // Every rule as a blocking one, so each request is charged to the rule that matches it.
    let as_block: Vec<Rule> = rules
        .iter()
        .map(|r| Rule {
            action: Action::Block,
            ..r.clone()
        })
        .collect();
    let e: Effective = effective(&as_block, &[], now_ns);
    let index = Index::build(&e, &[]);
    let allowed = Index::build(&Effective::default(), allow);
    let flagged: BTreeSet<String> = case
        .findings()?
        .into_iter()
        .flat_map(|f| [f.actor_ip, f.actor_user, f.actor_key, f.actor_session])
        .flatten()
        .collect();
    let created: HashMap<i64, i64> = rules.iter().map(|r| (r.id, r.created_ns)).collect();
    let mut effects: BTreeMap<i64, Effect> = BTreeMap::new();
    let mut actors: HashMap<i64, BTreeMap<String, (u64, bool)>> = HashMap::new();
    case.for_each_transaction(&TxFilter::default(), |id, tx| {
        let req = Request {
            client: tx.client.map(|c| c.ip()),
            method: tx.method.as_ref(),
            path: &tx.uri,
            headers: tx.request_headers.iter().collect(),
        };
        let Verdict::Block(rule) = index.decide(&req) else {
            return Ok(());
        };
        let e = effects.entry(rule).or_insert_with(|| Effect {
            rule_id: rule,
            ..Effect::default()
        });
        e.would_block += 1;
        if created
            .get(&rule)
            .is_some_and(|c| tx.request_ts_nanos >= *c)
        {
            e.since_created += 1;
        }
        if e.examples.len() < EXAMPLES {
            e.examples.push(id);
        }
        let actor = actor_of(&tx);
        let legit = allowed.decide(&req) == Verdict::Allowlisted
            || ![&actor.ip, &actor.user, &actor.key, &actor.session]
                .into_iter()
                .flatten()
                .any(|v| flagged.contains(v));
        let entry = actors
            .entry(rule)
            .or_default()
            .entry(describe(&actor))
            .or_default();
        entry.0 += 1;
        entry.1 |= legit;
        Ok(())
    })?;
    for (rule, who) in actors {
        if let Some(e) = effects.get_mut(&rule) {
            e.actors = who.len() as u64;
            let mut fp: Vec<(String, u64)> = who
                .into_iter()
                .filter(|(_, (_, legit))| *legit)
                .map(|(w, (n, _))| (w, n))
                .collect();
            fp.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            fp.truncate(10);
            e.false_positive_candidates = fp;
        }
    }
    Ok(effects.into_values().collect())
}
