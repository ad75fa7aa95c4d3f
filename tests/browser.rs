//! Opens the demo report in a real headless browser (Debian's chromium): it must load
//! without console errors, every chart must be present with a non-empty drawing, and a
//! screenshot is taken. CI installs chromium and sets SUSTAIN_REQUIRE_BROWSER=1, so
//! there this test cannot be skipped; elsewhere it is skipped with a message when no
//! browser is installed.

use assert_cmd::cargo::cargo_bin_cmd;
use std::path::{Path, PathBuf};
use std::process::Command;

fn browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SUSTAIN_CHROMIUM") {
        return Some(p.into());
    }
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
    })
}

fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn the_demo_report_renders_in_a_browser_with_every_chart() {
    let Some(chromium) = browser() else {
        assert!(std::env::var_os("SUSTAIN_REQUIRE_BROWSER").is_none(), "chromium is required here but not installed");
        eprintln!("skipped: no chromium on PATH (set SUSTAIN_CHROMIUM to its path)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    cargo_bin_cmd!("sustain")
        .args(["demo", "--quiet", "--clients", "300", "--seed", "1", "--out"])
        .arg(&data)
        .assert()
        .success();
    let out = dir.path().join("out");
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2027-01-01"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let report = out.join("report.html");
    let url = format!("file://{}", report.display());

    // The DOM after loading, and the browser's console on stderr.
    let dom = headless(&chromium, &dir.path().join("profile1"))
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom", &url])
        .output()
        .expect("chromium runs");
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let html = String::from_utf8_lossy(&dom.stdout);
    let console = String::from_utf8_lossy(&dom.stderr);
    let errors: Vec<&str> = console.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect();
    assert!(errors.is_empty(), "console messages: {errors:?}");
    for id in [
        "outcomes-by-measure",
        "jacobson",
        "outcomes-by-month",
        "dose-response",
        "expected-response",
        "relapse",
        "funnel-therapist",
        "funnel-site",
        "trend",
        "goal-progress",
    ] {
        let start = html.find(&format!("id=\"fig-{id}\"")).unwrap_or_else(|| panic!("figure {id} is missing"));
        let end = start + html[start..].find("</figure>").expect("figure closes");
        let figure = &html[start..end];
        let drawn = ["<polyline", "<rect", "<circle", "<path", "<polygon", "<line"]
            .iter()
            .map(|t| figure.matches(t).count())
            .sum::<usize>();
        assert!(figure.contains("<svg") && drawn > 10, "figure {id} has an empty drawing ({drawn} elements)");
        assert!(figure.contains("<figcaption>"), "figure {id} has no caption");
    }
    assert!(!html.contains("<script"), "the report needs no scripts");

    let shot = dir.path().join("report.png");
    let status = headless(&chromium, &dir.path().join("profile2"))
        .args(["--window-size=1100,1800"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(status.status.success());
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot of {size} bytes");
}
