//! Logging: `tracing` to stdout and to a log file rotated daily and by size (`file.rs`;
//! `logs/runserver.log` is a link to the current file, as the original platform's log was
//! one file by that name).
//!
//! Where lines go depends on who reads stdout:
//! - a terminal: a person watching, so stdout gets colours and is written at once, and the
//!   file gets the same line without them, in batches;
//! - systemd's journal (`JOURNAL_STREAM` names stdout): the journal alone, without the time
//!   (the journal stamps each line), unless `logging.file_under_systemd` asks for the file
//!   too — the same lines kept twice would only double the disk they take;
//! - anything else (a pipe, a file): each line is formatted once, without colour codes, and
//!   appended to both a batch at a time (`batch.rs`).
//!
//! No value from outside can forge or flood a line (`text.rs`): log lines show ids, names
//! and output through [`logged`], and the batch writer escapes whatever else slipped through.

mod batch;
mod file;
mod text;

pub use text::{MAX_LINE_BYTES, MAX_MESSAGE_BYTES, MAX_VALUE_BYTES, logged, logged_within};

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use batch::BatchGuard;
use file::{Rolling, RollingFile};

/// What the log needs from `[logging]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The log file's name: a link to the current file, beside the dated ones.
    pub file: PathBuf,
    /// A level or a tracing filter (checked by the config).
    pub level: String,
    /// Files kept, the current one included.
    pub keep_files: usize,
    /// Bytes after which the current file is rolled over.
    pub max_file_size: u64,
    /// Under the journal, write the file as well.
    pub file_under_systemd: bool,
}

/// Keeps the log writers going; dropping it writes the last lines and stops their threads.
#[must_use = "dropping the guard stops the log writers"]
pub struct LogGuard {
    _writers: Vec<BatchGuard>,
}

/// Installs the global subscriber. Keep the guard alive for the process's life.
///
/// # Errors
/// A bad level/filter, a log file that cannot be opened, or no thread for the writer.
pub fn init(settings: &Settings) -> anyhow::Result<LogGuard> {
    let level = &settings.level;
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("[logging] level {level:?} is not a valid filter: {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if stdout_is_the_journal() {
        let (stdout, stdout_guard) = batch::batched(stdout_file())?;
        let journal = plain().without_time().with_writer(stdout);
        if settings.file_under_systemd {
            let (file, file_guard) = batch::batched(Box::new(open_log_file(settings)?))?;
            registry
                .with(journal)
                .with(plain().with_writer(file))
                .try_init()
                .map(|()| vec![stdout_guard, file_guard])
        } else {
            registry
                .with(journal)
                .try_init()
                .map(|()| vec![stdout_guard])
        }
    } else if io::stdout().is_terminal() {
        let (file, guard) = batch::batched(Box::new(open_log_file(settings)?))?;
        let coloured = tracing_subscriber::fmt::layer().with_target(false);
        registry
            .with(coloured)
            .with(plain().with_writer(file))
            .try_init()
            .map(|()| vec![guard])
    } else {
        let both = Tee {
            file: open_log_file(settings)?,
            stdout: stdout_file(),
        };
        let (both, guard) = batch::batched(Box::new(both))?;
        registry
            .with(plain().with_writer(both))
            .try_init()
            .map(|()| vec![guard])
    };
    installed
        .map(|writers| LogGuard { _writers: writers })
        .map_err(|e| anyhow::anyhow!("logging is already set up: {e}"))
}

/// The format of a line in the file (and on stdout when it is not a terminal).
fn plain<S>() -> tracing_subscriber::fmt::Layer<S> {
    tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
}

/// Whether stdout is connected to systemd's journal: `JOURNAL_STREAM` holds the device and
/// inode of the stream systemd connected, and stdout is still that stream (a redirection
/// in a child of a service would make it something else).
fn stdout_is_the_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    nix::sys::stat::fstat(io::stdout().as_fd())
        .is_ok_and(|stat| stat.st_dev == dev && stat.st_ino == ino)
}

/// The rolling log file, its folder created; `runserver.log` links to the current file.
fn open_log_file(settings: &Settings) -> anyhow::Result<RollingFile> {
    let file = std::path::absolute(&settings.file)?;
    let folder = file.parent().unwrap_or(Path::new(".")).to_owned();
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("runserver.log");
    let (prefix, suffix) = name.rsplit_once('.').unwrap_or((name, "log"));
    let rolling = Rolling {
        folder: folder.clone(),
        prefix: prefix.to_owned(),
        suffix: suffix.to_owned(),
        max_size: settings.max_file_size,
        keep: settings.keep_files,
    };
    RollingFile::open(rolling).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the log file {} ([logging] file): {e}",
            file.display()
        )
    })
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
