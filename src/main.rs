//! The `sustain` binary: parse the command line, run, map errors to exit codes
//! (2 = input refused or unreadable, 1 = could not write the results).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    sustain::tuning::fixed_mmap_threshold();
    report_inputs_cut_short();
    let cli = sustain::app::cli::Cli::parse();
    match sustain::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sustain: error: {e}");
            ExitCode::from(if e.is_input_error() { 2 } else { 1 })
        }
    }
}

/// CSV input is read through a memory map (no copy of the file into buffers). A file
/// shortened by another program while it is mapped raises SIGBUS at the first page read
/// past its new end; no reader of a mapped file can prevent that. This turns the signal
/// into a message and exit code 2, instead of a crash. Results are only moved into place
/// at the end of a run, so none of this run's are where a reader would find them.
fn report_inputs_cut_short() {
    #[cfg(unix)]
    {
        extern "C" fn on_bus_error(_: libc::c_int) {
            const MESSAGE: &[u8] = b"sustain: error: an input file was shortened or rewritten while it was read \
                (or the disk failed). Run again once the export is complete; copy it into place rather than \
                writing it where sustain reads it. The results were not written\n";
            // SAFETY: write and _exit are async-signal-safe; nothing else is done here.
            unsafe {
                libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
                libc::_exit(2);
            }
        }
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            libc::signal(libc::SIGBUS, on_bus_error as *const () as libc::sighandler_t);
        }
    }
}
