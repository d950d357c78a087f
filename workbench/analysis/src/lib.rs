//! Analysis engines that run over new transactions as they are imported — incrementally: each
//! sees only the records of the current import and merges its results into what the case
//! already holds.
//!
//! Every import shard owns an [`Analyses`] and feeds it each transaction it stores (on its own
//! thread, no second pass over the case). When the shards are done their `Analyses` are merged,
//! then [`Analyses::finish`] consolidates them with the case's current state; what comes out is
//! written in the DuckDB transaction that completes the import.

pub mod actor;
pub mod attacks;
pub mod behaviour;
mod body_values;
pub mod discovery;
mod owners;
pub mod profile;
pub mod schema;
pub mod values;

use tapline_record::Transaction;
use tapline_store::endpoints::Endpoint;
use tapline_store::sources::Derived;

/// Why analysis could not complete.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A stored endpoint profile cannot be read (or written).
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    /// The behaviour detectors' frame queries failed (a bug, not bad input: the error names
    /// the query's column or operation).
    #[error("behaviour detection failed: {0}")]
    Behaviour(#[from] polars::error::PolarsError),
}

/// Which engines run. Discovery always does: the others are judged per endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detectors {
    /// Sensitive-data classes per endpoint.
    pub sensitive: bool,
    /// Payload attacks.
    pub attacks: bool,
    /// Behaviour over time windows (BOLA, brute force, scraping, …).
    pub behaviour: bool,
}

impl Detectors {
    /// Every engine on.
    pub const ALL: Detectors = Detectors {
        sensitive: true,
        attacks: true,
        behaviour: true,
    };
}

impl Default for Detectors {
    fn default() -> Self {
        Detectors::ALL
    }
}

/// Record time a host's traffic is learned from, streamed live, before changes to its
/// inventory (new endpoints, fields, data classes) are findings.
pub const LIVE_LEARNING_NS: i64 = 15 * 60 * 1_000_000_000;

/// Whether a live flush runs the behaviour detectors over the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// Judge the whole retained stream now.
    Now,
    /// Only keep this flush's events (judging is costly on a long stream).
    Later,
}

/// The engines of one import shard.
pub struct Analyses {
    /// API discovery.
    pub discovery: discovery::Discovery,
    /// Payload attacks, grouped by family, endpoint and actor.
    pub attacks: attacks::Attacks,
    /// Requests as events for the behaviour detectors.
    pub behaviour: behaviour::Behaviour,
    detectors: Detectors,
}

impl Default for Analyses {
    fn default() -> Self {
        Analyses::new(Detectors::ALL)
    }
}

impl Analyses {
    /// Engines for one shard.
    pub fn new(detectors: Detectors) -> Analyses {
        Analyses {
            discovery: discovery::Discovery::new(detectors.sensitive),
            attacks: attacks::Attacks::default(),
            behaviour: behaviour::Behaviour::default(),
            detectors,
        }
    }

    /// Sees one stored transaction with its case id. Discovery resolves its endpoint first and
    /// hands it to the engines that judge per endpoint.
    pub fn observe(&mut self, id: i64, tx: &Transaction) {
        let resolved = self.discovery.observe(id, tx);
        if self.detectors.attacks {
            self.attacks.observe(id, tx, resolved.map(|r| r.endpoint));
        }
        if self.detectors.behaviour {
            self.behaviour.observe(
                id,
                tx,
                resolved.map(|r| r.key),
                resolved.and_then(|r| r.object),
            );
        }
    }

    /// Folds in another shard's state.
    pub fn absorb(&mut self, other: Analyses) {
        self.discovery.absorb(other.discovery);
        self.attacks.absorb(other.attacks);
        self.behaviour.absorb(other.behaviour);
    }

    /// Consolidates with the case's inventory (`existing`) into what to write.
    pub fn finish(self, existing: &[Endpoint]) -> Result<Derived, AnalysisError> {
        // Judged over these records alone: behaviour's findings are this import's own.
        let mut d = self.finish_joining(existing, &mut behaviour::Behaviour::default())?;
        d.findings.append(&mut d.judged);
        Ok(d)
    }

    /// Consolidates like [`Analyses::finish`], for live analysis: this flush's behaviour events
    /// join `stream` (the events retained across flushes), and when `judge` says so the
    /// behaviour detectors judge the whole stream — their findings go to [`Derived::judged`],
    /// which replace rather than add to the case's counts.
    pub fn finish_live(
        self,
        existing: &[Endpoint],
        stream: &mut behaviour::Behaviour,
        judge: Judge,
    ) -> Result<Derived, AnalysisError> {
        let baseline = discovery::Baseline::Learning(LIVE_LEARNING_NS);
        self.finish_into_stream(existing, baseline, stream, judge)
    }

    /// Consolidates like [`Analyses::finish`], an import joining the case's behaviour
    /// `stream` (the events it retains, from sensors and earlier imports): the import's events
    /// join it and the whole stream is judged, so a burst split across two imports (or an
    /// import and a sensor's stream) is judged whole.
    pub fn finish_joining(
        self,
        existing: &[Endpoint],
        stream: &mut behaviour::Behaviour,
    ) -> Result<Derived, AnalysisError> {
        let baseline = discovery::Baseline::CaseSoFar;
        self.finish_into_stream(existing, baseline, stream, Judge::Now)
    }

    fn finish_into_stream(
        self,
        existing: &[Endpoint],
        baseline: discovery::Baseline,
        stream: &mut behaviour::Behaviour,
        judge: Judge,
    ) -> Result<Derived, AnalysisError> {
        let d = self.discovery.finish_with(existing, baseline)?;
        let inventory = discovery::Inventory::new(existing, &d);
        let mut fresh = self.behaviour;
        fresh.remap(|key| inventory.resolve(key));
        stream.remap(|key| inventory.resolve(key));
        stream.absorb(fresh);
        let judged = match judge {
            Judge::Now => stream.finish(&behaviour::Thresholds::default())?,
            Judge::Later => Vec::new(),
        };
        let mut findings = d.findings;
        findings.extend(self.attacks.finish());
        Ok(Derived {
            endpoints: d.endpoints,
            retired_endpoints: d.retired,
            findings,
            judged,
            updates: d.updates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> Transaction {
        Transaction {
            request_ts_nanos: 1_700_000_000_000_000_000,
            client: "10.0.0.1:40000".parse().ok(),
            method: "GET".into(),
            host: Some("api.test".into()),
            uri: path.into(),
            status: Some(200),
            ..Transaction::default()
        }
    }

    #[test]
    fn each_detector_switches_off_alone() {
        let attack = request("/users/7?q=1'%20OR%20'1'='1");
        let mut no_attacks = Analyses::new(Detectors {
            attacks: false,
            ..Detectors::ALL
        });
        no_attacks.observe(1, &attack);
        assert_eq!(no_attacks.behaviour.events(), 1, "behaviour must still run");
        assert!(no_attacks.attacks.finish().is_empty());

        let mut no_behaviour = Analyses::new(Detectors {
            behaviour: false,
            ..Detectors::ALL
        });
        no_behaviour.observe(1, &attack);
        assert_eq!(no_behaviour.behaviour.events(), 0);
        assert!(
            !no_behaviour.attacks.finish().is_empty(),
            "the SQLi is found"
        );
    }

    #[test]
    fn engines_get_the_endpoint_discovery_resolved() {
        let mut a = Analyses::default();
        a.observe(1, &request("/users/7?q=1'%20OR%20'1'='1"));
        let findings = a.attacks.finish();
        assert_eq!(findings.len(), 1);
        let endpoint = findings[0].endpoint.as_ref().expect("an endpoint");
        assert_eq!(endpoint.template, "/users/{userId}");
    }
}
