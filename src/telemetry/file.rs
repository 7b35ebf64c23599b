//! The log file: one file a day (`runserver.2026-12-04.log`), rolled over within the day when
//! it reaches `logging.max_file_size` (`runserver.2026-12-04.1.log`, `.2.log`, ...), the
//! newest `logging.keep_files` kept, and the configured name (`runserver.log`) a link to the
//! current one, as the original platform's log was one file by that name.
//!
//! tracing-appender's rolling appender rotates by time only and keeps a number of files; the
//! size cap needs a rollover within the day, so this small writer does both. Dates are UTC,
//! as the lines' timestamps are.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

/// Where and how the file rolls.
#[derive(Debug, Clone)]
pub(super) struct Rolling {
    /// The folder of the files.
    pub folder: PathBuf,
    /// `runserver` of `runserver.log`.
    pub prefix: String,
    /// `log` of `runserver.log`.
    pub suffix: String,
    /// Bytes after which the file is rolled over.
    pub max_size: u64,
    /// Files kept, the current one included.
    pub keep: usize,
}

/// The open file and what decides its next rollover.
pub(super) struct RollingFile {
    rolling: Rolling,
    today: Box<dyn Fn() -> NaiveDate + Send>,
    file: File,
    date: NaiveDate,
    index: u32,
    size: u64,
}

impl RollingFile {
    /// Opens today's newest file (appending), creating the folder.
    pub(super) fn open(rolling: Rolling) -> io::Result<RollingFile> {
        RollingFile::open_with(rolling, Box::new(|| Utc::now().date_naive()))
    }

    /// [`RollingFile::open`] on an injected calendar (tests).
    pub(super) fn open_with(
        rolling: Rolling,
        today: Box<dyn Fn() -> NaiveDate + Send>,
    ) -> io::Result<RollingFile> {
        fs::create_dir_all(&rolling.folder)?;
        let date = today();
        let index = newest_index(&rolling, date);
        let (file, size) = open_append(&rolling.folder.join(name(&rolling, date, index)))?;
        let mut log = RollingFile {
            rolling,
            today,
            file,
            date,
            index,
            size,
        };
        if log.size >= log.rolling.max_size {
            log.roll(date, log.index + 1)?;
        } else {
            log.link()?;
            log.prune();
        }
        Ok(log)
    }

    /// Starts file `index` of `date`.
    fn roll(&mut self, date: NaiveDate, index: u32) -> io::Result<()> {
        let (file, size) =
            open_append(&self.rolling.folder.join(name(&self.rolling, date, index)))?;
        self.file = file;
        self.date = date;
        self.index = index;
        self.size = size;
        self.link()?;
        self.prune();
        Ok(())
    }

    /// Points `runserver.log` at the current file: a new link renamed over the old one, so
    /// a reader never finds the name missing.
    fn link(&self) -> io::Result<()> {
        let link = self
            .rolling
            .folder
            .join(format!("{}.{}", self.rolling.prefix, self.rolling.suffix));
        let temporary = self.rolling.folder.join(format!(
            ".{}.{}.link",
            self.rolling.prefix, self.rolling.suffix
        ));
        let _ = fs::remove_file(&temporary);
        std::os::unix::fs::symlink(name(&self.rolling, self.date, self.index), &temporary)?;
        fs::rename(&temporary, &link)
    }

    /// Deletes the oldest files beyond `keep`. A file that cannot be deleted is left.
    fn prune(&self) {
        let mut files = dated_files(&self.rolling);
        files.sort();
        let excess = files.len().saturating_sub(self.rolling.keep);
        for (_, _, path) in files.into_iter().take(excess) {
            let _ = fs::remove_file(path);
        }
    }
}

impl Write for RollingFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let date = (self.today)();
        if date != self.date {
            self.roll(date, newest_index(&self.rolling, date))?;
        } else if self.size > 0 && self.size + bytes.len() as u64 > self.rolling.max_size {
            self.roll(date, self.index + 1)?;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `runserver.2026-12-04.log` for index 0, `runserver.2026-12-04.3.log` for index 3.
fn name(rolling: &Rolling, date: NaiveDate, index: u32) -> String {
    match index {
        0 => format!("{}.{date}.{}", rolling.prefix, rolling.suffix),
        n => format!("{}.{date}.{n}.{}", rolling.prefix, rolling.suffix),
    }
}

/// The log files in the folder, as (date, index, path).
fn dated_files(rolling: &Rolling) -> Vec<(NaiveDate, u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(&rolling.folder) else {
        return Vec::new();
    };
    let head = format!("{}.", rolling.prefix);
    let tail = format!(".{}", rolling.suffix);
    entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let middle = file_name
                .to_str()?
                .strip_prefix(&head)?
                .strip_suffix(&tail)?
                .to_owned();
            let (date, index) = match middle.split_once('.') {
                Some((date, index)) => (date, index.parse().ok()?),
                None => (middle.as_str(), 0),
            };
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            Some((date, index, entry.path()))
        })
        .collect()
}

/// The highest index of `date`'s files, 0 when there is none.
fn newest_index(rolling: &Rolling, date: NaiveDate) -> u32 {
    dated_files(rolling)
        .into_iter()
        .filter(|(d, _, _)| *d == date)
        .map(|(_, index, _)| index)
        .max()
        .unwrap_or(0)
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::NaiveDate;

    use super::{Rolling, RollingFile};

    fn rolling(folder: &std::path::Path, max_size: u64, keep: usize) -> Rolling {
        Rolling {
            folder: folder.to_owned(),
            prefix: "runserver".to_owned(),
            suffix: "log".to_owned(),
            max_size,
            keep,
        }
    }

    fn names(folder: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_full_file_rolls_over_within_the_day_and_old_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let mut log =
            RollingFile::open_with(rolling(dir.path(), 100, 3), Box::new(move || day)).unwrap();
        for i in 0..10 {
            writeln!(log, "line {i:02} {}", "x".repeat(30)).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            [
                "runserver.2026-12-04.2.log",
                "runserver.2026-12-04.3.log",
                "runserver.2026-12-04.4.log",
                "runserver.log"
            ]
        );
        let current = std::fs::read_to_string(dir.path().join("runserver.log")).unwrap();
        assert!(
            current.ends_with(&format!("line 09 {}\n", "x".repeat(30))),
            "{current}"
        );
        for name in names(dir.path()) {
            let size = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(size <= 100, "{size}");
        }
    }

    #[test]
    fn a_new_day_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let day = Arc::new(AtomicU32::new(4));
        let calendar = Arc::clone(&day);
        let mut log = RollingFile::open_with(
            rolling(dir.path(), 1 << 20, 14),
            Box::new(move || {
                NaiveDate::from_ymd_opt(2026, 12, calendar.load(Ordering::SeqCst)).unwrap()
            }),
        )
        .unwrap();
        writeln!(log, "on the 4th").unwrap();
        day.store(5, Ordering::SeqCst);
        writeln!(log, "on the 5th").unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "runserver.2026-12-04.log",
                "runserver.2026-12-05.log",
                "runserver.log"
            ]
        );
        let current = std::fs::read_to_string(dir.path().join("runserver.log")).unwrap();
        assert_eq!(current, "on the 5th\n");
    }

    #[test]
    fn a_restart_appends_to_the_days_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        for word in ["first", "second"] {
            let mut log =
                RollingFile::open_with(rolling(dir.path(), 1 << 20, 14), Box::new(move || day))
                    .unwrap();
            writeln!(log, "{word}").unwrap();
        }
        let current = std::fs::read_to_string(dir.path().join("runserver.log")).unwrap();
        assert_eq!(current, "first\nsecond\n");
    }
}
