//! The analyses: pure functions from episodes to results, free of files, clap and polars.

pub mod caseload;
pub mod current;
pub mod followup;
pub mod goals;
pub mod sudden_gains;
pub mod summary;
pub mod trajectories;
pub mod unit_effects;
