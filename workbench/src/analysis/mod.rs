//! Analysis engines that run over new transactions as they are imported — incrementally: each
//! sees only the records of the current import and merges its results into what the case
//! already holds.
//!
//! Every import shard owns an [`Analyses`] and feeds it each transaction it stores (on its own
//! thread, no second pass over the case). When the shards are done their `Analyses` are merged,
//! then [`Analyses::finish`] consolidates them with the case's current state; what comes out is
//! written in the DuckDB transaction that completes the import.

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
}

impl Default for Analyses {
    fn default() -> Self {
        Analyses::new(true)
    }
}

impl Analyses {
    /// Engines for one shard; `scan_sensitive` turns sensitive-data classification on.
    pub fn new(scan_sensitive: bool) -> Analyses {
        Analyses {
            discovery: discovery::Discovery::new(scan_sensitive),
        }
    }

    /// Sees one stored transaction with its case id.
    pub fn observe(&mut self, id: i64, tx: &Transaction) {
        self.discovery.observe(id, tx);
    }

    /// Folds in another shard's state.
    pub fn absorb(&mut self, other: Analyses) {
        self.discovery.absorb(other.discovery);
    }

    /// Consolidates with the case's inventory (`existing`) into what to write.
    pub fn finish(self, existing: &[Endpoint]) -> Derived {
        let d = self.discovery.finish(existing);
        Derived {
            endpoints: d.endpoints,
            retired_endpoints: d.retired,
            findings: d.findings,
        }
    }
}
