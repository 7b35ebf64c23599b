//! Logging: `tracing` to stdout and to a daily-rotated file (`logs/runserver.log` is a link
//! to the current day's file, as the original platform's log was one file by that name).
//!
//! Every line goes to both. How depends on who reads stdout:
//! - a terminal: a person watching, so stdout gets colours and is written at once, and the
//!   file gets the same line without them, in batches;
//! - anything else (systemd's journal, a pipe, a file): each line is formatted once, without
//!   colour codes, and appended to both a batch at a time (`batch.rs`).

mod batch;

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;

use tracing_appender::rolling::{Builder, RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use batch::BatchGuard;

/// Installs the global subscriber. Keep the guard alive for the process's life: dropping it
/// writes the last lines and stops the writer thread.
///
/// # Errors
/// A bad level/filter, a log folder that cannot be created, or no thread for the writer.
pub fn init(file: &Path, level: &str) -> anyhow::Result<BatchGuard> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("[logging] level {level:?} is not a valid filter: {e}"))?;
    let file = open_log_file(file)?;
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if io::stdout().is_terminal() {
        let (file, guard) = batch::batched(Box::new(file))?;
        let coloured = tracing_subscriber::fmt::layer().with_target(false);
        registry
            .with(coloured)
            .with(plain().with_writer(file))
            .try_init()
            .map(|()| guard)
    } else {
        let both = Tee {
            file,
            stdout: stdout_file(),
        };
        let (both, guard) = batch::batched(Box::new(both))?;
        registry
            .with(plain().with_writer(both))
            .try_init()
            .map(|()| guard)
    };
    installed.map_err(|e| anyhow::anyhow!("logging is already set up: {e}"))
}

/// The format of a line in the file (and on stdout when it is not a terminal).
fn plain<S>() -> tracing_subscriber::fmt::Layer<S> {
    tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
}

/// The daily-rotated log file, 14 days kept, with the configured name as a link to today's.
fn open_log_file(file: &Path) -> anyhow::Result<RollingFileAppender> {
    // tracing-appender's latest-file link dangles when the folder is relative: make it
    // absolute (rust_ecosystem.md §6).
    let file = std::path::absolute(file)?;
    let folder = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)
        .map_err(|e| anyhow::anyhow!("cannot create the log folder {}: {e}", folder.display()))?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("runserver.log");
    let (prefix, suffix) = name.rsplit_once('.').unwrap_or((name, "log"));
    Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix(suffix)
        .max_log_files(14)
        .latest_symlink(name)
        .build(folder)
        .map_err(|e| anyhow::anyhow!("cannot open the log file in {}: {e}", folder.display()))
}

/// Stdout as a file of its own (a duplicate of descriptor 1), written a batch at a time
/// rather than through `Stdout`'s line buffering (a system call per line). A daemon started
/// with stdout closed logs to its file only.
fn stdout_file() -> Box<dyn Write + Send> {
    match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(File::from(fd)),
        Err(_) => Box::new(io::sink()),
    }
}

/// Each line to the log file and to stdout. A destination that fails does not keep the line
/// from the other; the first failure is reported.
struct Tee<F, S> {
    file: F,
    stdout: S,
}

impl<F: Write, S: Write> Write for Tee<F, S> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let file = self.file.write_all(line);
        let stdout = self.stdout.write_all(line);
        file.and(stdout).map(|()| line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let file = self.file.flush();
        let stdout = self.stdout.flush();
        file.and(stdout)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::Tee;

    /// A destination that refuses every write.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("closed"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("closed"))
        }
    }

    #[test]
    fn a_line_reaches_both_destinations() {
        let mut tee = Tee {
            file: Vec::new(),
            stdout: Vec::new(),
        };
        tee.write_all(b"one\n").unwrap();
        tee.write_all(b"two\n").unwrap();
        tee.flush().unwrap();
        assert_eq!(tee.file, b"one\ntwo\n");
        assert_eq!(tee.stdout, b"one\ntwo\n");
    }

    #[test]
    fn a_failing_stdout_does_not_cost_the_file_its_lines() {
        let mut tee = Tee {
            file: Vec::new(),
            stdout: Broken,
        };
        assert!(tee.write_all(b"kept\n").is_err());
        assert!(tee.flush().is_err());
        assert_eq!(tee.file, b"kept\n");
    }
}
