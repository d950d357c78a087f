//! `tapline-export`: what leaves a case as files — the inventory as OpenAPI 3.1 ([`openapi`]),
//! a team's OpenAPI document compared with it ([`spec_diff`]), and the case's transactions as
//! ECS JSON lines, HAR or Parquet ([`transactions`]).

pub mod openapi;
pub mod spec_diff;
pub mod transactions;
