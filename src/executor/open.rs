//! Opens the checked script once, beneath the workspace, without following a link: the file
//! that runs is the file that was checked (issue 13, item 5).
//!
//! The check ([`super::workspace::Workspace::resolve`]) follows links that stay inside the
//! workspace and answers the script's canonical path, which has none. That path is opened here
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the workspace folder, so a part
//! of it swapped for a link since the check (to a file outside, say) fails the open instead of
//! being followed; the interpreter then reads the descriptor, never the path. Where `openat2` is
//! missing (Linux before 5.6, or a seccomp filter that refuses it) the path is walked one
//! component at a time with `O_NOFOLLOW`, which refuses a link the same way.

use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fd::OwnedFd;
use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags, fcntl_setfl, fstat, openat, openat2};
use rustix::io::Errno;

use super::{ExecutorError, StartFault, is_exhaustion};

/// Set once `openat2` has been found missing, so later opens go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `canonical` (a path inside `root`, both canonical) read-only and checks that it is a
/// regular file. `given` is the path as the job wrote it, for the messages.
///
/// # Errors
/// [`ExecutorError::Invalid`]: the script is gone, a part of its path became a link, or it is
/// no longer a regular file; [`ExecutorError::CannotStart`]: the daemon is out of descriptors.
pub(super) fn script(root: &Path, canonical: &Path, given: &str) -> Result<OwnedFd, ExecutorError> {
    let refuse = |why: String| ExecutorError::Invalid(format!("Script {given} {why}"));
    let relative = canonical
        .strip_prefix(root)
        .map_err(|_| refuse("is outside the workspace".into()))?;
    let file = beneath(root, relative).map_err(|errno| match errno {
        Errno::NOENT => refuse("not found in the workspace".into()),
        Errno::LOOP | Errno::NOTDIR => refuse(
            "changed after it was checked: a symbolic link is now on its path, and links are \
             not followed once a script is checked; it was not run"
                .into(),
        ),
        Errno::XDEV => refuse("is outside the workspace".into()),
        // Not the job's fault: the daemon is out of descriptors or memory.
        other if is_exhaustion(other) => ExecutorError::cannot_start(
            StartFault::NoResources,
            format!(
                "cannot open its script {given}: {}",
                std::io::Error::from(other)
            ),
        ),
        other => refuse(format!("cannot be opened: {}", std::io::Error::from(other))),
    })?;
    let stat = fstat(&file).map_err(|e| refuse(format!("cannot be read: {e}")))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(refuse("is not a regular file".into()));
    }
    // Opened non-blocking so that a FIFO swapped in could not hang the open; a regular file
    // reads the same either way, but the interpreter gets a plain descriptor.
    fcntl_setfl(&file, OFlags::empty()).map_err(|e| refuse(format!("cannot be read: {e}")))?;
    Ok(file)
}

/// `root/relative`, opened for reading without following any link.
fn beneath(root: &Path, relative: &Path) -> Result<OwnedFd, Errno> {
    let dir = openat(
        CWD,
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match openat2(&dir, relative, flags, Mode::empty(), resolve) {
            // EPERM: container runtimes' seccomp filters refuse syscalls they do not know so.
            Err(Errno::NOSYS | Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            opened => return opened,
        }
    }
    walk(dir, relative, flags)
}

/// The same open one component at a time: folders with `O_DIRECTORY | O_NOFOLLOW`, the file
/// with `O_NOFOLLOW`, each relative to the folder opened before it. A link anywhere fails with
/// `ELOOP` (or `ENOTDIR` for a folder), and no component is `..`: the path is canonical.
fn walk(mut dir: OwnedFd, relative: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let mut parts = relative.components().peekable();
    while let Some(part) = parts.next() {
        let Component::Normal(name) = part else {
            return Err(Errno::XDEV);
        };
        if parts.peek().is_none() {
            return openat(&dir, name, flags | OFlags::NOFOLLOW, Mode::empty());
        }
        dir = openat(
            &dir,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    Err(Errno::ISDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_link_on_the_checked_path_is_refused_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("real.py"), "x").unwrap();
        std::fs::create_dir(root.join("folder.py")).unwrap();
        symlink(root.join("real.py"), root.join("link.py")).unwrap();
        assert!(script(&root, &root.join("real.py"), "real.py").is_ok());
        let refused = |name: &str| match script(&root, &root.join(name), name) {
            Err(ExecutorError::Invalid(text)) => text,
            other => panic!("{name} should be refused as the job's fault: {other:?}"),
        };
        assert!(
            refused("link.py")
                .starts_with("Script link.py changed after it was checked: a symbolic link")
        );
        assert_eq!(
            refused("folder.py"),
            "Script folder.py is not a regular file"
        );
        assert_eq!(
            refused("gone.py"),
            "Script gone.py not found in the workspace"
        );
    }

    #[test]
    fn the_walk_opens_files_and_refuses_links_anywhere_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.py"), "x").unwrap();
        symlink(root.join("sub/a.py"), root.join("link.py")).unwrap();
        symlink(root.join("sub"), root.join("via")).unwrap();
        let open = |relative: &str| {
            let dir = openat(CWD, &root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
            walk(dir, Path::new(relative), OFlags::RDONLY | OFlags::CLOEXEC)
        };
        assert!(open("sub/a.py").is_ok());
        assert_eq!(open("link.py").err(), Some(Errno::LOOP));
        assert!(matches!(
            open("via/a.py").err(),
            Some(Errno::LOOP | Errno::NOTDIR)
        ));
        assert_eq!(open("sub/none.py").err(), Some(Errno::NOENT));
    }
}
