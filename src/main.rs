//! The `sustain` binary: parse the command line, run, map errors to exit codes
//! (2 = input refused or unreadable, 1 = could not write the results).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    sustain::heap::return_large_blocks_to_the_system();
    let cli = sustain::cli::Cli::parse();
    match sustain::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sustain: error: {e}");
            ExitCode::from(if e.is_input_error() { 2 } else { 1 })
        }
    }
}
