//! The data and their meaning: typed columns, dates, the measure registry, episodes and their outcomes.

pub mod columns;
pub mod dates;
pub mod duplicates;
pub mod episodes;
pub mod outcomes;
pub mod registry;
pub mod standards;
pub mod terminology;
pub mod text;
