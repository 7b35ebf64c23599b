//! The single-daemon lock: an exclusive `flock` on `<db>.lock`, held while the store is open,
//! and the file removed when the store closes, so a clean exit leaves nothing behind.
//!
//! Removing a lock file races with the next daemon opening it. The holder unlinks the file
//! while it still holds the lock and only then lets go; a daemon that opened the old file
//! before the unlink may then lock it, but that file is no longer at the path, and a third
//! daemon could create and lock a new one. So after taking the lock a daemon checks that the
//! path still names the file it locked (same device and inode) and starts over if not: at
//! most one daemon holds a lock on the file the path names.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use nix::fcntl::{Flock, FlockArg};

use crate::store::StoreError;

/// Times a lock on a file that was replaced meanwhile is given up and taken again; each
/// retry means another daemon closed the store in between, so a handful is plenty.
const ATTEMPTS: usize = 10;

/// A held single-daemon lock; released (and its file removed) by [`DbLock::release`] or on
/// drop.
#[derive(Debug)]
pub(super) struct DbLock {
    path: PathBuf,
    flock: Option<Flock<File>>,
}

impl DbLock {
    /// Takes the exclusive lock for the database file `db`.
    ///
    /// # Errors
    /// Another daemon holds it, or the lock file cannot be opened.
    pub fn take(db: &str) -> Result<DbLock, StoreError> {
        let path = PathBuf::from(format!("{db}.lock"));
        DbLock::take_with(&path, db, || open(&path))
    }

    /// [`DbLock::take`] with the opening of the file given: tests replace the file between
    /// the open and the lock, as a closing daemon would.
    fn take_with(
        path: &Path,
        db: &str,
        mut open: impl FnMut() -> Result<File, StoreError>,
    ) -> Result<DbLock, StoreError> {
        for _ in 0..ATTEMPTS {
            let flock = Flock::lock(open()?, FlockArg::LockExclusiveNonblock)
                .map_err(|_| busy(db, path))?;
            if names(path, &flock).map_err(|e| cannot_open(path, &e))? {
                return Ok(DbLock {
                    path: path.to_owned(),
                    flock: Some(flock),
                });
            }
            // The daemon that held it removed the file after we opened it: ours is an
            // orphan nobody else will lock. Let go and lock the file the path names now.
        }
        Err(StoreError::Backend(anyhow!(
            "the lock file {} keeps being replaced; is another tickd starting and stopping \
             on {db}?",
            path.display()
        )))
    }

    /// Removes the lock file, then lets go of the lock (in that order: see the module's
    /// doc). Idempotent.
    pub fn release(&mut self) {
        if let Some(flock) = self.flock.take() {
            if let Err(error) = std::fs::remove_file(&self.path)
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(
                    "Could not remove the lock file {}: {error}",
                    self.path.display()
                );
            }
            drop(flock);
        }
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        self.release();
    }
}

fn open(path: &Path) -> Result<File, StoreError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| cannot_open(path, &e))
}

/// Whether `path` names `file` now (false when nothing is at the path).
fn names(path: &Path, file: &File) -> io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

fn cannot_open(path: &Path, error: &io::Error) -> StoreError {
    StoreError::Backend(anyhow!(
        "cannot open the lock file {}: {error}",
        path.display()
    ))
}

fn busy(db: &str, path: &Path) -> StoreError {
    StoreError::Backend(anyhow!(
        "another tickd is already using {db} (it holds {}); a SQLite store serves one daemon \
         — stop the other one, or share a MySQL or PostgreSQL store between daemons",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn db_in(dir: &tempfile::TempDir) -> (String, PathBuf) {
        let db = dir.path().join("t.db").to_string_lossy().into_owned();
        let lock = PathBuf::from(format!("{db}.lock"));
        (db, lock)
    }

    #[test]
    fn a_second_lock_is_refused_and_release_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = db_in(&dir);
        let mut first = DbLock::take(&db).unwrap();
        assert!(path.exists());
        let refused = DbLock::take(&db).unwrap_err().to_string();
        assert!(
            refused.contains("another tickd is already using"),
            "{refused}"
        );
        first.release();
        assert!(!path.exists(), "a released lock leaves no file");
        let second = DbLock::take(&db).unwrap();
        assert!(path.exists());
        drop(second);
        assert!(!path.exists(), "dropping the lock releases it too");
    }

    /// A daemon opens the lock file just before its holder closes the store (unlink, then
    /// unlock) and another creates a new one: the first must not keep a lock on the orphaned
    /// file, or two daemons could each hold one.
    #[test]
    fn a_lock_on_a_file_replaced_meanwhile_is_taken_again_on_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = db_in(&dir);
        let mut opens = 0;
        let lock = DbLock::take_with(&path, &db, || {
            opens += 1;
            let file = open(&path)?;
            if opens == 1 {
                std::fs::remove_file(&path).unwrap();
                std::fs::write(&path, b"").unwrap();
            }
            Ok(file)
        })
        .unwrap();
        assert_eq!(
            opens, 2,
            "the orphaned file was given up and the lock taken again"
        );
        let held = lock.flock.as_ref().unwrap();
        assert!(
            names(&path, held).unwrap(),
            "the lock is on the file at the path"
        );
        let refused = DbLock::take(&db).unwrap_err().to_string();
        assert!(
            refused.contains("another tickd"),
            "and it keeps others out: {refused}"
        );
    }

    #[test]
    fn a_file_is_named_only_by_its_own_path() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = db_in(&dir);
        let file = open(&path).unwrap();
        assert!(names(&path, &file).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(!names(&path, &file).unwrap(), "nothing at the path");
        std::fs::write(&path, b"").unwrap();
        assert!(!names(&path, &file).unwrap(), "another file at the path");
    }
}
