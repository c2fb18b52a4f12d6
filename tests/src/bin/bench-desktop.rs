//! Desktop app figures (not a test): how long from start until the window is interactive, and
//! the memory of the app and its WebKit processes, idle and in a demo call, as the sum of PSS
//! (`/proc/PID/smaps_rollup`; RSS counts shared libraries once per process).
//!
//! `scripts/bench-desktop.sh` builds the release app and runs this under Xvfb through
//! tauri-driver, like the end-to-end tests. `SWITCHBOARD_APP` names the binary to measure.
#![allow(clippy::print_stdout)] // a bench binary prints its figures

use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_tests::desktop::{Desktop, app_binary, app_environment};

const RUNS: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = app_binary();
    println!("app: {}", app.display());
    let mut interactive = Vec::new();
    let mut reported = Vec::new();
    let mut idle = Vec::new();
    let mut in_call = Vec::new();
    for run in 0..RUNS {
        let dir = switchboard_tests::artifacts(&format!("bench-desktop-{run}"));
        // No SIP account, SIP on loopback, a private home.
        let env = app_environment(&dir, "[sip]\nbind = \"udp:127.0.0.1:0\"\n");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let started = Instant::now();
        let desktop = Desktop::start(&dir, &env).await;
        desktop.find("[data-testid=dial-input]", Duration::from_secs(30)).await;
        interactive.push(started.elapsed());
        // The dialler is drawn before the window's first command: its log line follows.
        let log = dir.join("tauri-driver.log");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(ms) = reported_interactive(&log) {
                reported.push(Duration::from_millis(ms));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        idle.push(app_pss(&app));
        desktop.click("[data-testid=demo-button]").await;
        desktop
            .wait_text("[data-testid=call-phase]", Duration::from_secs(20), |t| t == "Connected")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        in_call.push(app_pss(&app));
        desktop.click("[data-testid=hangup-button]").await;
        desktop.quit().await;
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    println!(
        "start to dialler on screen (WebDriver, driver start-up included): median {:.2} s of {RUNS}",
        median(&mut interactive).as_secs_f64()
    );
    if !reported.is_empty() {
        println!(
            "start to the window's first command (the app's own log): median {:.2} s",
            median(&mut reported).as_secs_f64()
        );
    }
    for (what, figures) in [("idle", &idle), ("in a demo call", &in_call)] {
        let mut sorted: Vec<u64> = figures.iter().map(|(total, _)| *total).collect();
        sorted.sort_unstable();
        let parts = figures.last().map(|(_, parts)| parts.join(", ")).unwrap_or_default();
        println!(
            "PSS {what}: median {:.0} MB ({parts})",
            sorted.get(sorted.len() / 2).copied().unwrap_or_default() as f64 / 1024.0
        );
    }
}

/// `window interactive after_ms=N` from the app's log: N ends the line (colour codes, where a
/// log has them, come before it).
fn reported_interactive(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("window interactive"))?;
    line.trim_end().rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The PSS (kB) of the app process and its descendants (WebKit's network and web processes),
/// and each one's name and share.
fn app_pss(app: &Path) -> (u64, Vec<String>) {
    let processes = processes();
    let roots: Vec<u32> = processes
        .iter()
        .filter(|p| std::fs::read_link(format!("/proc/{}/exe", p.pid)).is_ok_and(|exe| exe == app))
        .map(|p| p.pid)
        .collect();
    let mut family = roots.clone();
    let mut grew = true;
    while grew {
        grew = false;
        for p in &processes {
            if family.contains(&p.parent) && !family.contains(&p.pid) {
                family.push(p.pid);
                grew = true;
            }
        }
    }
    let mut total = 0;
    let mut parts = Vec::new();
    for pid in family {
        let pss = pss_kb(pid).unwrap_or(0);
        total += pss;
        let name = processes.iter().find(|p| p.pid == pid).map_or("?", |p| p.name.as_str());
        parts.push(format!("{name} {:.0} MB", pss as f64 / 1024.0));
    }
    (total, parts)
}

struct Process {
    pid: u32,
    parent: u32,
    name: String,
}

fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (name) state ppid …: the name may hold spaces, so split at the last ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let parent = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some(Process { pid, parent, name })
        })
        .collect()
}

fn pss_kb(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
