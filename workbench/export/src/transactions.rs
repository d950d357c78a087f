//! A case's transactions written out whole: ECS JSON lines (for a SIEM), HAR 1.2, Parquet.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use tapline_store::query::TxFilter;
use tapline_store::{CaseStore, StoreError};

/// Writes every transaction as one ECS document a line; returns how many.
pub fn write_ecs_jsonl(store: &CaseStore, out: &mut dyn Write) -> Result<u64> {
    let mut n = 0u64;
    store.for_each_transaction(&TxFilter::default(), |id, tx| {
        serde_json::to_writer(&mut *out, &tapline_formats::ecs::document(id, &tx))
            .map_err(|e| StoreError::Io(e.into()))?;
        out.write_all(b"\n").map_err(StoreError::Io)?;
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// Writes every transaction as one HAR 1.2 document; returns how many.
pub fn write_har(store: &CaseStore, out: &mut dyn Write) -> Result<u64> {
    let mut txs = Vec::new();
    store.for_each_transaction(&TxFilter::default(), |_, tx| {
        txs.push(tx);
        Ok(())
    })?;
    tapline_formats::har::write(&txs, out).context("cannot write the HAR document")?;
    Ok(txs.len() as u64)
}

/// Writes the inventory as an OpenAPI 3.1 document (pretty JSON).
pub fn write_openapi(store: &CaseStore, out: &mut dyn Write) -> Result<()> {
    let doc = crate::openapi::document(store)?;
    serde_json::to_writer_pretty(&mut *out, &doc).context("cannot write the OpenAPI document")?;
    writeln!(out)?;
    Ok(())
}

/// Writes every transaction to a Parquet file (DuckDB's `COPY`); returns how many.
pub fn write_parquet(store: &CaseStore, path: &Path) -> Result<u64> {
    Ok(store.export_parquet(path)?)
}
