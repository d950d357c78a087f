//! Analysis engines that run over new transactions as they are imported — incrementally: each
//! sees only the records of the current import and merges its results into the case.
//!
//! The import writer calls [`Analyzer::observe`] for every transaction it stores (on its own
//! thread, no second pass over the case) and [`Analyzer::finish`] before the last append; what
//! the engines derived is written in the DuckDB transaction that completes the import.

pub mod discovery;

use tapline_core::Transaction;
use tapline_store::sources::Derived;

/// An engine fed with each newly stored transaction.
pub trait Analyzer: Send {
    /// A stable name for progress and errors.
    fn name(&self) -> &'static str;
    /// Sees one stored transaction with its case id.
    fn observe(&mut self, id: i64, tx: &Transaction);
    /// Hands over what it learned, to be written with the import's last batch.
    fn finish(&mut self, out: &mut Derived);
}

/// The engines every import runs, in order.
pub fn default_analyzers() -> Vec<Box<dyn Analyzer>> {
    vec![Box::new(discovery::Discovery::default())]
}
