//! The scripts a job may name: the files under the workspace that [`Workspace::resolve`]
//! accepts and that have an interpreter, for the console's New-job form (`GET P/scripts`).
//!
//! The walk is bounded twice: it answers at most `limit` names, and it looks at no more than
//! [`MAX_ENTRIES`] directory entries, so a workspace holding a huge tree (a virtualenv, a data
//! folder) costs a bounded amount of I/O. Folders reached through a symbolic link are not
//! entered (no loops); a linked file is listed when its target stays inside, as the executor
//! would run it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::workspace::{Workspace, interpreter};

/// Directory entries read at most by one listing, names answered or not.
pub const MAX_ENTRIES: usize = 20_000;

/// Script names, relative to the workspace with `/` between folders, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptList {
    /// The names found, at most the limit asked for.
    pub names: Vec<String>,
    /// Whether the walk stopped early (the limit, or [`MAX_ENTRIES`]): more may exist.
    pub truncated: bool,
}

/// Walks `workspace`, depth first, for runnable scripts.
pub(crate) fn list(
    workspace: &Workspace,
    python: &str,
    interpreters: &BTreeMap<String, String>,
    limit: usize,
) -> ScriptList {
    let mut walk = Walk {
        workspace,
        python,
        interpreters,
        limit,
        seen: 0,
        found: ScriptList::default(),
    };
    walk.folder(workspace.root(), "");
    walk.found.names.sort();
    walk.found
}

struct Walk<'a> {
    workspace: &'a Workspace,
    python: &'a str,
    interpreters: &'a BTreeMap<String, String>,
    limit: usize,
    seen: usize,
    found: ScriptList,
}

impl Walk<'_> {
    /// Lists `dir`, whose name relative to the workspace is `rel` (empty at the root).
    fn folder(&mut self, dir: &Path, rel: &str) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            if self.found.truncated {
                return;
            }
            self.seen += 1;
            if self.seen > MAX_ENTRIES {
                self.found.truncated = true;
                return;
            }
            // Names that are not UTF-8 cannot be written in a job's JSON.
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            let rel_name = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.folder(&entry.path(), &rel_name);
            } else if (kind.is_file() || kind.is_symlink()) && self.runnable(&rel_name) {
                if self.found.names.len() == self.limit {
                    self.found.truncated = true;
                    return;
                }
                self.found.names.push(rel_name);
            }
        }
    }

    /// Whether a job naming `rel` would pass the executor's checks of its script.
    fn runnable(&self, rel: &str) -> bool {
        interpreter(rel, self.python, self.interpreters).is_ok()
            && self.workspace.resolve(rel).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_runnable_scripts_inside_only_sorted_and_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = tmp.path().join("workspace");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir_all(root.join("__pycache__")).unwrap();
        for name in [
            "b.py",
            "a.sh",
            "notes.txt",
            "sub/c.py",
            "sub/deeper/d.py",
            "__pycache__/x.py",
            ".hidden.py",
        ] {
            fs::write(root.join(name), "print(1)\n").unwrap();
        }
        fs::write(outside.path().join("evil.py"), "").unwrap();
        std::os::unix::fs::symlink(outside.path().join("evil.py"), root.join("link.py")).unwrap();
        std::os::unix::fs::symlink(root.join("b.py"), root.join("inside.py")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
        let workspace = Workspace::open(&root).unwrap();
        let mut interpreters = BTreeMap::new();
        interpreters.insert("sh".to_owned(), "/bin/sh".to_owned());

        let all = list(&workspace, "python3", &interpreters, 100);
        assert_eq!(
            all.names,
            ["a.sh", "b.py", "inside.py", "sub/c.py", "sub/deeper/d.py"]
        );
        assert!(!all.truncated);

        let two = list(&workspace, "python3", &BTreeMap::new(), 2);
        assert_eq!(two.names, ["b.py", "inside.py"]);
        assert!(two.truncated);
    }
}
