//! The `sustain` binary: parse the command line, run, map errors to exit codes
//! (2 = input refused or unreadable, 1 = could not write the results).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
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

/// glibc raises its mmap threshold each time a large block is freed, so after the input
/// columns are dropped their memory stays in the heap and is never returned; a fixed
/// threshold keeps blocks of 1 MiB and more in their own mappings. Measured at 10 M rows:
/// peak memory 2.45 → 2.0 GB, and a little faster (BENCHMARKS.md).
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
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
