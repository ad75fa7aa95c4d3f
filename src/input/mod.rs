//! Reading the input tables: CSV and Parquet, validation of each row, the identifier screen, FHIR import.

pub mod csv_records;
pub mod fhir;
pub mod goal_rows;
pub mod ingest;
pub mod privacy;
pub mod validate;
