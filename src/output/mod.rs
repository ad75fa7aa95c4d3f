//! Results rendered: CSV tables, figures and charts, the report and client pages, and the staging that writes them all at once.

pub mod charts;
pub mod figures;
pub mod report;
pub mod staging;
pub mod tables;
