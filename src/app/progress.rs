//! Progress on stderr, and with `SUSTAIN_TIMINGS` set a profile of the run's stages
//! (wall time, CPU time and peak memory; the figures in BENCHMARKS.md).

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Progress on stderr: a spinner with the current stage (hidden when stderr is not a
/// terminal or with --quiet). With `SUSTAIN_TIMINGS` set in the environment, the time
/// each stage took is printed at the end (the profile in BENCHMARKS.md), and beneath a
/// stage the parts of it that ran side by side; each with the process's peak memory so far
/// (on Linux), which tells in which stage the peak is reached.
pub struct Progress {
    bar: Option<ProgressBar>,
    timings: Option<Mutex<Timings>>,
}

#[derive(Default)]
struct Timings {
    /// Stage names, when each began, the peak memory by then and the CPU time used by
    /// then (the first entry is the start of the run).
    stages: Vec<(String, Instant, Option<u64>, Option<f64>)>,
    /// Parts of a stage that ran in parallel: (stage index, name, how long, peak by its end).
    parts: Vec<(usize, String, Duration, Option<u64>)>,
}

/// The process's peak resident memory so far in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024)
}

/// The CPU time (user and system, all threads) the process has used so far, in seconds
/// (Unix; `None` elsewhere): beside a stage's wall time it shows how busy the cores were.
fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(secs(usage.ru_utime) + secs(usage.ru_stime))
    }
    #[cfg(not(unix))]
    None
}

fn cpu_note(from: Option<f64>, to: Option<f64>) -> String {
    from.zip(to).map_or(String::new(), |(a, b)| format!("  (cpu {:.2} s)", b - a))
}

fn peak_note(peak: Option<u64>) -> String {
    peak.map_or(String::new(), |p| format!("  (peak so far {p} MiB)"))
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let timings = std::env::var_os("SUSTAIN_TIMINGS").map(|_| {
            Mutex::new(Timings {
                stages: vec![("start".into(), Instant::now(), None, cpu_seconds())],
                parts: Vec::new(),
            })
        });
        if quiet {
            return Progress { bar: None, timings };
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"));
        pb.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(pb), timings }
    }

    pub fn stage(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(t) = &self.timings {
            t.lock().expect("timings lock").stages.push((msg.clone(), Instant::now(), peak_rss_mib(), cpu_seconds()));
        }
        if let Some(pb) = &self.bar {
            pb.set_message(msg);
        }
    }

    /// Prints a warning above the spinner (indicatif redraws it below).
    pub fn warn(&self, msg: &str) {
        match &self.bar {
            Some(pb) => pb.suspend(|| eprintln!("sustain: warning: {msg}")),
            None => eprintln!("sustain: warning: {msg}"),
        }
    }

    /// Runs one part of the current stage, timing it on its own when timings are asked for.
    pub fn part<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        let Some(t) = &self.timings else { return f() };
        let start = Instant::now();
        let out = f();
        let mut t = t.lock().expect("timings lock");
        let stage = t.stages.len() - 1;
        t.parts.push((stage, name.to_string(), start.elapsed(), peak_rss_mib()));
        out
    }

    /// Clears the spinner and prints a closing line (and the stage timings if asked).
    pub fn done(&self, msg: &str) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
            eprintln!("{msg}");
        }
        if let Some(t) = &self.timings {
            let t = t.lock().expect("timings lock");
            let end = Instant::now();
            let end_cpu = cpu_seconds();
            for (i, (name, at, _, cpu)) in t.stages.iter().enumerate().skip(1) {
                let (next, peak, next_cpu) =
                    t.stages.get(i + 1).map_or((end, peak_rss_mib(), end_cpu), |x| (x.1, x.2, x.3));
                let notes = format!("{}{}", cpu_note(*cpu, next_cpu), peak_note(peak));
                eprintln!("timing: {:>8.3} s  {name}{notes}", (next - *at).as_secs_f64());
                for (_, part, took, peak) in t.parts.iter().filter(|p| p.0 == i) {
                    eprintln!("timing: {:>8.3} s    - {part}{}", took.as_secs_f64(), peak_note(*peak));
                }
            }
            let total_cpu = cpu_note(t.stages[0].3, end_cpu);
            eprintln!("timing: {:>8.3} s  total{total_cpu}", (end - t.stages[0].1).as_secs_f64());
        }
    }
}
