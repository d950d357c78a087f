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
pub mod discovery;
pub mod profile;
pub mod schema;
pub mod values;

use tapline_core::Transaction;
use tapline_store::endpoints::Endpoint;
use tapline_store::sources::Derived;

/// The engines of one import shard.
pub struct Analyses {
    /// API discovery.
    pub discovery: discovery::Discovery,
    /// Payload attacks, grouped by family, endpoint and actor.
    pub attacks: attacks::Attacks,
    /// Requests as events for the behaviour detectors.
    pub behaviour: behaviour::Behaviour,
    detect_attacks: bool,
}

impl Default for Analyses {
    fn default() -> Self {
        Analyses::new(true, true)
    }
}

impl Analyses {
    /// Engines for one shard; `scan_sensitive` turns sensitive-data classification on,
    /// `detect_attacks` the payload detectors.
    pub fn new(scan_sensitive: bool, detect_attacks: bool) -> Analyses {
        Analyses {
            discovery: discovery::Discovery::new(scan_sensitive),
            attacks: attacks::Attacks::default(),
            behaviour: behaviour::Behaviour::default(),
            detect_attacks,
        }
    }

    /// Sees one stored transaction with its case id.
    pub fn observe(&mut self, id: i64, tx: &Transaction) {
        self.discovery.observe(id, tx);
        if self.detect_attacks {
            self.attacks.observe(id, tx, self.discovery.last_endpoint());
            let object = self.discovery.last_object().and_then(|r| tx.path().get(r));
            self.behaviour
                .observe(id, tx, self.discovery.last_key(), object);
        }
    }

    /// Folds in another shard's state.
    pub fn absorb(&mut self, other: Analyses) {
        self.discovery.absorb(other.discovery);
        self.attacks.absorb(other.attacks);
        self.behaviour.absorb(other.behaviour);
    }

    /// Consolidates with the case's inventory (`existing`) into what to write. Fails only if
    /// the behaviour detectors' frame queries do (a bug, not bad input).
    pub fn finish(self, existing: &[Endpoint]) -> Result<Derived, polars::error::PolarsError> {
        let behaviour = self.behaviour.finish(&behaviour::Thresholds::default())?;
        let d = self.discovery.finish(existing);
        let mut findings = d.findings;
        findings.extend(self.attacks.finish());
        findings.extend(behaviour);
        Ok(Derived {
            endpoints: d.endpoints,
            retired_endpoints: d.retired,
            findings,
        })
    }
}
