//! Tuning of the memory allocator, kept apart from the method: nothing here changes a
//! result. Each item is kept because it was measured beyond run-to-run noise on the
//! 10 M-row benchmark (BENCHMARKS.md); tuning that was not has been removed.

/// glibc raises its mmap threshold each time a large block is freed, so after the input
/// columns are dropped their memory stays in the heap and is never returned; a fixed
/// threshold keeps blocks of 1 MiB and more in their own mappings. Call it first thing,
/// before any thread starts.
/// MEASURE: peak memory at 10 M rows.
pub fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("SUSTAIN_NO_MMAP_THRESHOLD").is_none() {
        // SAFETY: mallopt only changes allocator settings; it is called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}

/// Hands the heap's free pages back to the system (glibc) once the measurements are read:
/// reading leaves many small blocks freed between the rows' columns, and the sort that
/// follows is where a large run's memory peaks.
/// MEASURE.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("SUSTAIN_NO_TRIM").is_none() {
        // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
