//! Any bytes as a CSV file of measurements and of goal ratings.
#![no_main]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::read_both(data, "csv"));
