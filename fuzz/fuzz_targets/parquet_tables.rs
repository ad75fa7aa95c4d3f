//! Any bytes as a Parquet file of measurements and of goal ratings. Start from the seed
//! corpus (valid files) so that mutations reach past the footer checks.
#![no_main]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::read_both(data, "parquet"));
