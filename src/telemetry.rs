//! Logging: `tracing` to stdout and to a daily-rotated file (`logs/runserver.log` is a link
//! to the current day's file, as the original platform's log was one file by that name).

use std::path::Path;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines queued for the log file's writer thread at most.
const LOG_QUEUE_LINES: usize = 4096;

/// Installs the global subscriber. Keep the guard alive for the process's life: dropping it
/// flushes and stops the file writer.
///
/// # Errors
/// A bad level/filter, or a log folder that cannot be created.
pub fn init(file: &Path, level: &str) -> anyhow::Result<WorkerGuard> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("[logging] level {level:?} is not a valid filter: {e}"))?;
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
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix(suffix)
        .max_log_files(14)
        .latest_symlink(name)
        .build(folder)
        .map_err(|e| anyhow::anyhow!("cannot open the log file in {}: {e}", folder.display()))?;
    // The writer thread's queue is allocated (and touched) whole up front: the default
    // 128,000 lines are 4 MB of an idle daemon's memory. A few thousand absorb any burst the
    // thread cannot write at once, and a full queue makes the logger wait, not lose lines.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(false)
        .finish(appender);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(false)
                .with_writer(writer),
        )
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging is already set up: {e}"))?;
    Ok(guard)
}
