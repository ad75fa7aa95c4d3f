//! Tuning for speed and memory, kept apart from the method: nothing here changes a
//! result, and each item says what it was measured to gain.
//!
//! - [`Yielding`]: the goals table's rows are validated on threads of the lowest priority
//!   until the measurements are sorted, then on rayon's. Reading the measurements leaves
//!   part of a core idle (its reader and each block's merge are serial), and the sort after
//!   it nearly a whole core; sharing the cores evenly, the two tables finished reading
//!   together and the sort then ran alone (BENCHMARKS.md; its gain on the 10 M-row run is
//!   within the run-to-run spread on today's host).
//! - [`return_freed_memory`]: `malloc_trim` before the sort.

use std::sync::atomic::{AtomicBool, Ordering};

/// Where a table's row checks run: rayon's threads, or a pool at the lowest priority
/// until [`Yielding::stop`] is called.
pub struct Yielding {
    pool: Option<rayon::ThreadPool>,
    stopped: AtomicBool,
}

impl Yielding {
    /// A pool of as many threads as rayon's, each at nice 19. On Linux a thread's nice
    /// value is its own, and only raising it needs no privilege, so these threads never
    /// return to the usual priority: after [`Yielding::stop`] the work moves to rayon's
    /// threads instead. Elsewhere, or if the threads cannot start, work runs as usual.
    pub fn new() -> Yielding {
        let pool = cfg!(target_os = "linux").then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(rayon::current_num_threads())
                .thread_name(|i| format!("sustain-yielding-{i}"))
                .start_handler(|_| lower_this_thread())
                .build()
                .ok()
        });
        Yielding { pool: pool.flatten(), stopped: AtomicBool::new(false) }
    }

    /// From now on work runs on rayon's threads at the usual priority.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Runs `work` (which may use rayon's parallel iterators) on the low-priority pool
    /// while it yields; once stopped, on the caller's thread, its parallel parts on
    /// rayon's. The caller waits either way.
    pub fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) if !self.stopped.load(Ordering::Relaxed) => pool.install(work),
            _ => work(),
        }
    }
}

/// Runs `work` through `yielding` if there is one, else where the caller is.
pub fn run<R: Send>(yielding: Option<&Yielding>, work: impl FnOnce() -> R + Send) -> R {
    match yielding {
        Some(y) => y.run(work),
        None => work(),
    }
}

impl Default for Yielding {
    fn default() -> Yielding {
        Yielding::new()
    }
}

fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only changes a nice value; `who` 0 is the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// Hands the heap's free pages back to the system (glibc): reading leaves many small
/// blocks freed between the rows' columns, and the sort that follows is where a large
/// run's memory peaks. Not measured apart from the sort's smaller arrays (together, at
/// 100 M rows: 3969 → 3868 MiB at that peak).
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread (Linux: /proc/thread-self/stat, field 19).
    #[cfg(target_os = "linux")]
    fn nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn work_runs_at_the_lowest_priority_until_stopped_then_as_usual() {
        let usual = nice();
        let y = Yielding::new();
        assert_eq!(y.run(nice), 19);
        // Parallel work inside runs on the same low-priority threads.
        use rayon::prelude::*;
        let inside: Vec<i64> = y.run(|| (0..4).into_par_iter().map(|_| nice()).collect());
        assert!(inside.iter().all(|&n| n == 19), "{inside:?}");
        y.stop();
        assert_eq!(y.run(nice), usual);
        let sum: u64 = y.run(|| (0..100u64).into_par_iter().sum());
        assert_eq!(sum, 4950);
    }
}
