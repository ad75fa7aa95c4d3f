//! Tuning of the memory allocator, kept apart from the method: nothing here changes a
//! result. An item stays only while it is measured beyond run-to-run noise on the 10 M-row
//! benchmark (BENCHMARKS.md); tuning that was not has been removed.

/// glibc raises its mmap threshold each time a large block is freed, so memory of the
/// dropped input columns stays in the heap; a fixed threshold keeps blocks of 1 MiB and
/// more in their own mappings, returned when freed. Measured on the 10 M-row benchmark
/// (2026-12-07, six runs each): peak memory 745 MiB with it, 766 MiB without, every run
/// without it above every run with it. Call it before any thread starts.
pub fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
