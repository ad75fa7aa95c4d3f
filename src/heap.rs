//! How the allocator (glibc's malloc) keeps and returns memory. Process-wide settings:
//! only `main` and the table reader change them.

/// Blocks at least this large get mappings of their own, returned to the system when
/// freed.
const LARGE_BLOCK: i32 = 1 << 20;
/// glibc's default: free memory above this at the top of a heap is returned at once.
const DEFAULT_TRIM: i32 = 128 << 10;

/// glibc raises its mmap threshold each time a large block is freed, so after the input
/// columns are dropped their memory stays in the heap and is never returned; a fixed
/// threshold keeps blocks of 1 MiB and more in their own mappings. Measured at 10 M rows:
/// peak memory 2.45 → 2.0 GB, and a little faster (BENCHMARKS.md). Call before any
/// thread starts.
pub fn return_large_blocks_to_the_system() {
    set(LARGE_BLOCK, DEFAULT_TRIM);
}

/// Hands the heap's free pages back to the system: reading leaves many small blocks
/// freed between the rows' columns, and the sort that follows is where a large run's
/// memory peaks. Not measured apart from the sort's smaller arrays (together, at 100 M
/// rows: 3969 → 3868 MiB at that peak).
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// While it lives, freed blocks of up to 32 MiB stay in the heap for the next ones.
/// polars gives each Parquet block's columns fresh arrays of about 16 MB; in their own
/// mappings every one of their pages faulted anew, block after block (at 10 M rows half
/// of a Parquet run's 1.1 M page faults). When dropped, large blocks get their own
/// mappings again and the free pages are handed back ([`return_freed_memory`]).
pub struct ReuseFreedBlocks(());

impl ReuseFreedBlocks {
    pub fn begin() -> ReuseFreedBlocks {
        set(32 << 20, 64 << 20);
        ReuseFreedBlocks(())
    }
}

impl Drop for ReuseFreedBlocks {
    fn drop(&mut self) {
        set(LARGE_BLOCK, DEFAULT_TRIM);
        return_freed_memory();
    }
}

fn set(mmap_threshold: i32, trim_threshold: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings (it takes the allocator's locks).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim_threshold);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (mmap_threshold, trim_threshold);
}
