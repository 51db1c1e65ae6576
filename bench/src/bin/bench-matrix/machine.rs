//! How loaded the machine is (Linux /proc), and which commit is measured.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The 1, 5 and 15 minute load averages of a /proc/loadavg text.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// (idle, total) jiffies of the `cpu` line of a /proc/stat text; idle counts
/// iowait too.
pub fn parse_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    // guest and guest_nice are already counted in user and nice.
    let total = values.iter().take(8).sum();
    Some((idle, total))
}

/// Percent of the machine's CPU time busy between two /proc/stat samples.
pub fn busy_percent(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let idle = after.0.checked_sub(before.0)?;
    let total = after.1.checked_sub(before.1)?;
    (total > 0).then(|| 100.0 * (1.0 - idle as f64 / total as f64))
}

/// The load averages now.
pub fn loadavg() -> Option<[f64; 3]> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn stat() -> Option<(u64, u64)> {
    parse_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The machine's CPU busy percentage over `period` (we sleep meanwhile).
pub fn sample_busy(period: Duration) -> Option<f64> {
    let before = stat()?;
    std::thread::sleep(period);
    busy_percent(before, stat()?)
}

/// Busy: the 1-minute load above half the cores, or more than a quarter of the
/// CPU time busy before we started.
pub fn is_busy(load1: Option<f64>, busy: Option<f64>, cores: usize) -> bool {
    load1.is_some_and(|l| l > 0.5 * cores as f64) || busy.is_some_and(|b| b > 25.0)
}

/// "0.66 2.03 2.33" or "?".
pub fn format_loadavg(load: Option<[f64; 3]>) -> String {
    load.map_or("?".into(), |l| {
        format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
    })
}

/// `git rev-parse --short HEAD` in `dir`, with "+dirty" if the tree has changes.
pub fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    if !head.status.success() {
        return None;
    }
    let mut commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    if let Some(status) = git(&["status", "--porcelain", "--untracked-files=no"]) {
        if status.status.success() && !status.stdout.is_empty() {
            commit.push_str("+dirty");
        }
    }
    Some(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc() {
        assert_eq!(
            parse_loadavg("0.66 2.03 2.33 1/83 19523\n"),
            Some([0.66, 2.03, 2.33])
        );
        assert_eq!(parse_loadavg("x"), None);
        let a = parse_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(a, (850, 1000));
        let b = parse_stat("cpu  250 0 100 1100 50 0 0 0 0 0\n").unwrap();
        assert_eq!(busy_percent(a, b), Some(40.0));
        assert_eq!(busy_percent(a, a), None);
    }

    #[test]
    fn busy_rule() {
        assert!(!is_busy(Some(0.9), Some(10.0), 2));
        assert!(is_busy(Some(1.1), Some(10.0), 2));
        assert!(is_busy(Some(0.1), Some(30.0), 2));
        assert!(!is_busy(None, None, 2));
    }
}
