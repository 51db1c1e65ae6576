//! Logging: to stderr, or to a file that rotates by size (`--log-file`).
//!
//! The file is written by a background thread (tracing-appender's non-blocking
//! writer), so a burst of log lines, say a peer flooding malformed messages, never
//! stalls the broker's loop; lines that do not fit in its buffer are dropped, not
//! queued without bound.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where and how to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// 0: info, 1: debug, 2+: trace. `RUST_LOG` overrides.
    pub verbose: u8,
    /// Log to this file instead of stderr.
    pub file: Option<PathBuf>,
    /// Rotate the file when it would grow past this many bytes.
    pub max_size: u64,
    /// Rotated files kept (`broker.log.1` … `broker.log.N`).
    pub keep: usize,
}

/// Installs the global subscriber. Keep the guard alive until exit: dropping it
/// flushes the file.
pub fn init(settings: &LogSettings) -> io::Result<Option<WorkerGuard>> {
    let level = match settings.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let from_env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let filter = from_env
        .as_deref()
        .filter(|directives| !directives.trim().is_empty())
        .and_then(filter_for)
        .unwrap_or_else(|| Box::new(level.parse::<Targets>().unwrap_or_default()));
    let (writer, ansi, guard) = match &settings.file {
        // Colours only for a terminal: not in pipes, journald or CI logs.
        None => (
            BoxMakeWriter::new(io::stderr),
            io::IsTerminal::is_terminal(&io::stderr()),
            None,
        ),
        Some(path) => {
            let file = RotatingFile::open(path, settings.max_size, settings.keep)?;
            let (writer, guard) = tracing_appender::non_blocking(file);
            (BoxMakeWriter::new(writer), false, Some(guard))
        }
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .init();
    Ok(guard)
}

/// The filter for `directives` (`RUST_LOG` syntax). Targets and levels only, the
/// usual case, take the static filter: `EnvFilter` takes a lock each time any span
/// is entered, and every connection task enters its span at each poll (2-3 % of
/// the broker's user CPU at saturation). Span and field directives (`[span]`,
/// `{field}`) need `EnvFilter`; so does anything the static filter cannot read.
/// `None` when neither can (the level from `-v` then applies, as before).
fn filter_for(directives: &str) -> Option<Box<dyn Layer<Registry> + Send + Sync>> {
    match static_targets(directives) {
        Some(targets) => Some(Box::new(targets)),
        None => EnvFilter::try_new(directives)
            .ok()
            .map(|filter| Box::new(filter) as Box<dyn Layer<Registry> + Send + Sync>),
    }
}

/// `directives` as a static filter, if they name only targets and levels.
fn static_targets(directives: &str) -> Option<Targets> {
    if directives.contains(['[', '{']) {
        return None;
    }
    directives.parse().ok()
}

/// A log file that is renamed to `PATH.1` (older ones shifted up to `PATH.keep`,
/// the oldest deleted) when a write would take it past `max_size` bytes.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: usize,
}

impl RotatingFile {
    /// Opens `path` for appending, creating it and its directory if needed.
    pub fn open(path: &Path, max_size: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            file,
            size,
            max_size: max_size.max(1),
            keep,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            self.file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&self.path)?;
        } else {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            fs::rename(&self.path, self.rotated(1))?;
            self.file = append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A line never straddles two files; a line longer than the limit gets a
        // file of its own.
        if self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn plain_directives_take_the_static_filter_with_the_same_meaning() {
        use tracing::Level;

        let targets = static_targets("zmtp=debug,info").expect("targets and levels only");
        assert!(targets.would_enable("zmtp::engine", &Level::DEBUG));
        assert!(!targets.would_enable("mdp::broker", &Level::DEBUG));
        assert!(targets.would_enable("mdp::broker", &Level::INFO));
        // Span and field directives need EnvFilter, which still reads them.
        assert!(static_targets("zmtp[zmtp]=debug").is_none());
        assert!(static_targets("zmtp[{peer}]=trace").is_none());
        assert!(filter_for("zmtp[zmtp]=debug").is_some());
        // Neither reads this: the -v level applies.
        assert!(filter_for("zmtp=loud").is_none());
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = std::env::temp_dir().join(format!("mdp-log-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("logs/broker.log");
        let mut log = RotatingFile::open(&path, 20, 2).unwrap();
        for line in [
            "line 1 .........\n",
            "line 2 .........\n",
            "line 3 .........\n",
        ] {
            log.write_all(line.as_bytes()).unwrap();
        }
        log.write_all(b"line 4 .........\n").unwrap();
        log.flush().unwrap();
        assert_eq!(read(&path), "line 4 .........\n");
        assert_eq!(read(&log.rotated(1)), "line 3 .........\n");
        assert_eq!(read(&log.rotated(2)), "line 2 .........\n");
        assert!(!log.rotated(3).exists(), "only `keep` old files");

        // Reopening appends and counts what is already there.
        drop(log);
        let mut log = RotatingFile::open(&path, 20, 2).unwrap();
        log.write_all(b"line 5 .........\n").unwrap();
        assert_eq!(read(&path), "line 5 .........\n");
        assert_eq!(read(&log.rotated(1)), "line 4 .........\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
