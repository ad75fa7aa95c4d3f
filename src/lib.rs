//! sustain: do psychotherapy clients get better, and stay better?
//!
//! The layers, each a folder, each using only those before it (`tests/layers.rs` checks):
//! `stats` (rates and intervals, survival, mixed models), `domain` (typed columns, dates,
//! the measure registry, episodes and their outcomes), `input` (CSV and Parquet read
//! by `input::ingest`, rows checked by `input::validate`, direct identifiers refused by
//! `input::privacy`), `analyses` (pure functions from episodes to results), `output`
//! (tables, charts, the report, and `output::staging`, the only writer of result files)
//! and `app` (the commands; the only module that knows the order of the stages).
//! ARCHITECTURE.md has the map.

pub mod analyses;
pub mod app;
pub mod domain;
pub mod error;
pub mod input;
pub mod output;
pub mod stats;
pub mod tuning;
