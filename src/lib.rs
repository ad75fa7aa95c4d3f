//! sustain: do psychotherapy clients get better, and stay better?
//!
//! The pipeline: `ingest` reads the anonymized measurements and goals tables (CSV
//! read by `csv_records` with csv-core, Parquet by polars) and refuses files that carry direct
//! identifiers; `validate` turns each row
//! into typed values or a rejection with a reason; `episodes` sorts the rows once and
//! reduces each episode × measure series to baseline, final and its outcome
//! (`outcomes`, rules from the `registry`); `summary` counts rates with their
//! denominators; `tables` and `report` render; `output` writes everything at once.
//! `app` is the only module that knows the order of these stages.

pub mod app;
pub mod caseload;
pub mod charts;
pub mod cli;
pub mod csv_records;
pub mod current;
pub mod dates;
pub mod demo;
pub mod episodes;
pub mod error;
pub mod fhir;
pub mod figures;
pub mod followup;
pub mod goal_rows;
pub mod goals;
pub mod growth;
pub mod ingest;
pub mod model;
pub mod outcomes;
pub mod output;
pub mod priority;
pub mod privacy;
pub mod registry;
pub mod report;
pub mod sudden_gains;
pub mod summary;
pub mod survival;
pub mod tables;
pub mod terminology;
pub mod trajectories;
pub mod unit_effects;
pub mod validate;
