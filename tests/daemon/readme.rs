//! The README's examples, replayed as a new user pastes them (issue 12): every ```sh block that
//! calls curl, in order, in one bash session, against a fresh daemon started from the shipped
//! `config.toml` and `workspace/` in a temporary project folder (only the port changed).
//!
//! Each curl must answer 2xx, or exactly the status that the comment line before it announces
//! as `# Expected error NNN: why`. Run ids are taken from the answers by the examples
//! themselves, as a user would, so nothing here knows them in advance. The blocks of `cargo`
//! commands (the README's two commands) are not replayed; any other ```sh block is refused, so
//! that no example escapes the replay. The docs must also stand on their own: no link leaves
//! the repository.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::daemon::{free_port, kill_scripts_under, start, wait_exit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The address the README's examples use (the shipped config's).
const README_ADDRESS: &str = "127.0.0.1:7788";

/// The longest the whole replay may take (the slowest example waits 2 s for a timeout).
const REPLAY_LIMIT: Duration = Duration::from_secs(120);

/// curl as the reader runs it, made strict: quiet but for errors, and the answer's status
/// checked against what the README says (`README_EXPECT`, else any 2xx). The answer is printed
/// as curl would print it, so pipes in the examples (`| sed ...`) see the same text.
const PRELUDE: &str = r#"set -euo pipefail
curl() {
    local answer status expected=${README_EXPECT:-2xx}
    if ! answer=$(command curl -sS -w '\n%{http_code}' "$@"); then
        echo "README example failed: curl $* did not complete" >&2
        exit 1
    fi
    status=${answer##*$'\n'}
    answer=${answer%$'\n'*}
    printf '%s\n' "$answer"
    if [[ $expected == 2xx && $status != 2?? ]] || [[ $expected != 2xx && $status != "$expected" ]]; then
        echo "README example failed: curl $* answered $status; the README expects $expected" >&2
        exit 1
    fi
}
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fenced ```sh block: where it starts in the file, and its lines.
#[derive(Debug)]
struct Block {
    line: usize,
    text: String,
}

/// Every ```sh block of a markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        match (&mut open, line.trim()) {
            (None, "```sh") => {
                open = Some(Block {
                    line: index + 1,
                    text: String::new(),
                });
            }
            (Some(_), "```") => blocks.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(open.is_none(), "a ```sh block is not closed");
    blocks
}

/// The blocks to replay: those that call curl. The others must be the `cargo` commands.
fn examples(blocks: Vec<Block>) -> Vec<Block> {
    let (curl, other): (Vec<Block>, Vec<Block>) =
        blocks.into_iter().partition(|b| b.text.contains("curl"));
    for block in &other {
        let cargo_only = commands(&block.text).all(|line| line.starts_with("cargo "));
        assert!(
            cargo_only,
            "the ```sh block at README line {} is neither curl examples (replayed) nor cargo \
             commands; make it one or the other, or fence it as ```text",
            block.line
        );
    }
    curl
}

/// The lines of a block that are not blank or comments.
fn commands(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// `# Expected error 409: why` → 409.
fn expected_error(line: &str) -> Option<u16> {
    let rest = line.trim().strip_prefix('#')?.trim();
    let code = rest.strip_prefix("Expected error ")?.get(..3)?;
    code.parse().ok().filter(|code| (400..600).contains(code))
}

/// The bash script that replays `blocks` against the daemon on `port`: the prelude, then each
/// block as written, a command announced by an `# Expected error NNN` comment run with
/// `README_EXPECT=NNN`.
fn replay_script(blocks: &[Block], port: u16) -> String {
    let mut script = String::from(PRELUDE);
    for block in blocks {
        script.push_str(&format!("echo '### README line {}'\n", block.line));
        let lines: Vec<&str> = block.text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let Some(code) = expected_error(lines[i]) else {
                script.push_str(lines[i]);
                script.push('\n');
                i += 1;
                continue;
            };
            // The announced command: the next line that is not a comment, with its `\`
            // continuation lines.
            let mut end = i + 1;
            while end < lines.len() && lines[end].trim_start().starts_with('#') {
                end += 1;
            }
            while end < lines.len() && lines[end].trim_end().ends_with('\\') {
                end += 1;
            }
            let announced = &lines[i..=end.min(lines.len() - 1)];
            assert!(
                announced.iter().any(|l| l.contains("curl")),
                "README line {}: `# Expected error {code}` is not followed by a curl command",
                block.line + i + 1
            );
            script.push_str(&format!("export README_EXPECT={code}\n"));
            for line in announced {
                script.push_str(line);
                script.push('\n');
            }
            script.push_str("unset README_EXPECT\n");
            i = end + 1;
        }
    }
    assert!(
        script.contains(README_ADDRESS),
        "the examples no longer call {README_ADDRESS}, the shipped config's address"
    );
    script.replace(README_ADDRESS, &format!("127.0.0.1:{port}"))
}

/// A project folder as a clone has it: the shipped config (on `port`) and `workspace/`.
fn project(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(repo().join("config.toml")).unwrap();
    let config = shipped.replace("port = 7788", &format!("port = {port}"));
    assert_ne!(
        config, shipped,
        "the shipped config.toml sets `port = 7788`"
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    for entry in std::fs::read_dir(repo().join("workspace")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), workspace.join(entry.file_name())).unwrap();
    }
    dir
}

/// Runs `blocks` with bash in `dir`, against the daemon on `port`.
async fn replay(dir: &Path, port: u16, blocks: &[Block]) -> Output {
    let path = dir.join("readme.sh");
    std::fs::write(&path, replay_script(blocks, port)).unwrap();
    let run = tokio::process::Command::new("bash")
        .arg(&path)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(REPLAY_LIMIT, run)
        .await
        .expect("the README's examples did not finish in time")
        .unwrap()
}

/// A fresh daemon from the shipped config, in a new project folder.
struct Daemon {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl Daemon {
    async fn start() -> Daemon {
        let port = free_port();
        let dir = project(port);
        let child = start(dir.path(), port).await;
        Daemon { dir, port, child }
    }

    /// Stops the daemon as systemd would, and checks that it stopped cleanly.
    fn stop(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        assert!(wait_exit(&mut self.child).success());
    }
}

/// A test that failed half-way leaves no daemon or script behind.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        kill_scripts_under(self.dir.path());
    }
}

fn transcript(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn the_readme_examples_work_in_order_on_a_fresh_daemon() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = examples(sh_blocks(&readme));
    assert!(blocks.len() >= 3, "the README has its curl examples");
    let daemon = Daemon::start().await;
    let output = replay(daemon.dir.path(), daemon.port, &blocks).await;
    let shown = transcript(&output);
    assert!(output.status.success(), "{shown}");
    daemon.stop();
    // What the examples' comments promise the reader sees.
    for promised in [
        r#""status":"succeeded""#,
        r#""status":"cancelled""#,
        r#""status":"timed_out""#,
        r#""cause":"run_now""#,
        r#""copies":2,"team":"ops"}"#,
        "Access Denied",
    ] {
        assert!(shown.contains(promised), "no {promised} in\n{shown}");
    }
}

/// The replay is only worth something if it fails on a broken example: an unannounced error,
/// an error other than the one announced, and a failing shell command each stop it.
#[tokio::test]
async fn the_replay_fails_on_an_example_that_does_not_answer_as_written() {
    let daemon = Daemon::start().await;
    let cases = [
        (
            "```sh\ncurl -u guest:guest http://127.0.0.1:7788/scheduler/jobs/job13\n```\n",
            false,
        ),
        (
            "```sh\n# Expected error 409: taken\ncurl -u guest:guest \\\n  http://127.0.0.1:7788/scheduler/jobs/nope\n```\n",
            false,
        ),
        (
            "```sh\ncurl -u guest:guest http://127.0.0.1:7788/scheduler\nfalse\n```\n",
            false,
        ),
        (
            "```sh\nRUN=$(curl -s -u guest:guest http://127.0.0.1:7788/scheduler/runs/nope | sed -n 1p)\n```\n",
            false,
        ),
        (
            "```sh\n# Expected error 404: no such job\ncurl -u guest:guest \\\n  http://127.0.0.1:7788/scheduler/jobs/nope\ncurl -u guest:guest http://127.0.0.1:7788/scheduler\n```\n",
            true,
        ),
    ];
    let mut outcomes = Vec::new();
    for (markdown, works) in cases {
        let output = replay(daemon.dir.path(), daemon.port, &sh_blocks(markdown)).await;
        outcomes.push((markdown, works, output));
    }
    daemon.stop();
    for (markdown, works, output) in outcomes {
        assert_eq!(
            output.status.success(),
            works,
            "{markdown}\n{}",
            transcript(&output)
        );
    }
}

#[test]
fn only_cargo_blocks_are_left_out_of_the_replay() {
    let markdown =
        "```sh\ncargo run --release   # the daemon\n```\n\n```sh\njournalctl -u tickd\n```\n";
    let refused = std::panic::catch_unwind(|| examples(sh_blocks(markdown)));
    assert!(
        refused.is_err(),
        "a shell block that is not replayed is refused"
    );
    assert!(examples(sh_blocks("```sh\ncargo test\n```\n")).is_empty());
}

/// Markdown links (`[text](target)`) of a file: the targets.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = markdown;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].to_owned());
        }
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The README and `docs/` document the repository from inside it: no pointer to material a
/// user does not have (`../shared`), and every relative link and anchor leads somewhere.
#[test]
fn the_docs_stay_inside_the_repository() {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(repo()).unwrap().display().to_string();
        assert!(!text.contains("../shared"), "{name} points at ../shared");
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            assert!(
                linked.exists(),
                "{name} links to {target}, which does not exist"
            );
            if !fragment.is_empty() {
                let heads = anchors(&std::fs::read_to_string(&linked).unwrap());
                assert!(
                    heads.iter().any(|a| a == fragment),
                    "{name} links to {target}: no such heading"
                );
            }
        }
    }
}
