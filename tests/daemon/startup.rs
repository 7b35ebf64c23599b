//! How the `tickd` binary starts, and how it refuses to: a named config file that is missing,
//! a bad setting, an unreachable store, a taken port. Every refusal is on stderr and, once the
//! log is open, in the log file, with the file, the key and the value named and any password
//! masked; nothing is scheduled before the port is bound.

use crate::common;

use std::net::TcpListener;
use std::process::Stdio;

use common::daemon::{
    answering, call, free_port, refusal, refused_start, start, stop, tickd, write_config,
};
use common::project_dir;

#[test]
fn a_named_config_file_that_is_missing_is_refused_naming_it() {
    let dir = project_dir();
    let missing = dir.path().join("cfg/confg.toml");
    let by_flag = std::process::Command::new(env!("CARGO_BIN_EXE_tickd"))
        .current_dir(dir.path())
        .env_remove("TICKD_CONFIG")
        .args(["--config", "cfg/confg.toml"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!by_flag.status.success());
    let stderr = String::from_utf8_lossy(&by_flag.stderr);
    assert!(
        stderr.contains("the config file cfg/confg.toml does not exist (named by --config)"),
        "{stderr}"
    );
    let by_env = std::process::Command::new(env!("CARGO_BIN_EXE_tickd"))
        .current_dir(dir.path())
        .env("TICKD_CONFIG", &missing)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!by_env.status.success());
    let stderr = String::from_utf8_lossy(&by_env.stderr);
    assert!(
        stderr.contains(&format!(
            "{} does not exist (named by TICKD_CONFIG)",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("workspace"), "{stderr}");
}

/// Only the default ./config.toml may be absent: the daemon starts on the defaults and says so.
#[tokio::test]
async fn without_a_config_file_the_defaults_are_used_and_logged() {
    let dir = project_dir();
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tickd"))
        .current_dir(dir.path())
        .env_remove("TICKD_CONFIG")
        .env("TICKD_SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Credentials are sent, and ignored: auth is off by default.
    let answered = answering(port).await;
    stop(&mut child);
    assert_eq!(
        answered,
        Some(reqwest::StatusCode::OK),
        "defaults: auth off"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/runserver.log")).unwrap();
    assert!(
        log.contains("No config file at ./config.toml: every setting has its default"),
        "{log}"
    );
}

#[test]
fn a_bad_setting_is_refused_with_file_key_value_and_what_is_allowed() {
    let (stderr, log) = refusal("[executor]\nmax_workers = \"ten\"\n", &[]);
    let expected = "config.toml: [executor] max_workers = \"ten\": expected a number of scripts: \
                    a whole number from 1 to 1024";
    assert!(stderr.contains(expected), "{stderr}");
    assert!(log.contains(expected), "the refusal is logged too: {log}");

    let stderr = refused_start("[logging]\nlevel = \"verbose\"\n", &[]);
    assert!(
        stderr.contains("[logging] level = \"verbose\": expected a log level"),
        "{stderr}"
    );

    let stderr = refused_start("[executor]\nmax_wrokers = 3\n", &[]);
    assert!(
        stderr.contains("max_wrokers is not a setting (did you mean max_workers?)"),
        "{stderr}"
    );

    let stderr = refused_start("", &[("TICKD_EXECUTOR__NICE", "-3")]);
    assert!(
        stderr.contains("environment variable TICKD_EXECUTOR__NICE: [executor] nice = -3"),
        "{stderr}"
    );
    assert!(stderr.contains("from 0 to 39"), "{stderr}");
}

#[test]
fn a_bad_config_job_is_refused_naming_the_file_and_entry() {
    let stderr = refused_start(
        "[[jobs]]\nid = \"nightly\"\nfunc = \"task:success\"\nargs = [\"test.py\"]\ntrigger = \"cron\"\nhour = 25\n",
        &[],
    );
    assert!(
        stderr.contains("config.toml: [[jobs]] #1 (nightly): "),
        "{stderr}"
    );
    assert!(
        stderr.contains("(25) is higher than the maximum value (23)"),
        "{stderr}"
    );
    // A job's option follows the API's rule and says so in the API's words.
    let stderr = refused_start(
        "[[jobs]]\nid = \"nightly\"\nfunc = \"task:success\"\nargs = [\"test.py\"]\nmax_instances = 0\n",
        &[],
    );
    assert!(
        stderr.contains(
            "config.toml: [[jobs]] #1 (nightly): max_instances must be a positive integer"
        ),
        "{stderr}"
    );
}

#[test]
fn guest_on_a_network_address_is_refused() {
    let stderr = refused_start("", &[("TICKD_SERVER__HOST", "0.0.0.0")]);
    assert!(stderr.contains("password \"guest\""), "{stderr}");
}

/// A store URL's password appears in no error and no log line, and the error says why the
/// server could not be reached rather than that a pool timed out.
#[test]
fn a_store_password_is_never_printed_and_the_real_cause_is() {
    let closed = free_port();
    for url in [
        format!("mysql://nobody:S3cretPw@127.0.0.1:{closed}/x"),
        format!("postgres://nobody:S3cretPw@127.0.0.1:{closed}/x"),
        format!("redis://:S3cretPw@127.0.0.1:{closed}/0"),
    ] {
        let (stderr, log) = refusal(&format!("[store]\nurl = \"{url}\"\n"), &[]);
        for (what, text) in [("stderr", &stderr), ("log", &log)] {
            assert!(!text.contains("S3cretPw"), "{what}: {text}");
            assert!(text.contains(":***@127.0.0.1"), "{what}: {text}");
            assert!(text.contains("Connection refused"), "{what}: {text}");
            assert!(!text.contains("pool timed out"), "{what}: {text}");
        }
    }
    let (stderr, _) = refusal("", &[("TICKD_STORE__URL", "ftp://u:S3cretPw@h/x")]);
    assert!(!stderr.contains("S3cretPw"), "{stderr}");
    assert!(
        stderr.contains("TICKD_STORE__URL: [store] url = \"ftp://u:***@h/x\""),
        "{stderr}"
    );
}

/// The port is bound before anything is scheduled: a taken port stops start-up, the log says
/// so, and the scheduler never started.
#[test]
fn a_taken_port_is_logged_and_nothing_is_scheduled() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = project_dir();
    write_config(dir.path(), port, "");
    let output = tickd(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = std::fs::read_to_string(dir.path().join("logs/runserver.log")).unwrap();
    let expected = format!("cannot listen on 127.0.0.1:{port}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(log.contains(&expected), "{log}");
    assert!(log.contains("Address already in use"), "{log}");
    assert!(!log.contains("Scheduler started"), "{log}");
}

/// The daemon that did start still answers with the shipped credentials (a sanity check that
/// the refusals above are about their one setting).
#[tokio::test]
async fn a_good_config_starts() {
    let dir = project_dir();
    let port = free_port();
    write_config(
        dir.path(),
        port,
        "[logging]\nkeep_files = 3\nmax_file_size = \"1MB\"\n",
    );
    let mut child = start(dir.path(), port).await;
    let (status, _) = call(port, reqwest::Method::GET, "", None).await;
    assert_eq!(status, 200);
    stop(&mut child);
}

#[test]
fn a_missing_interpreter_or_workspace_is_refused_at_start_up() {
    let stderr = refused_start("[executor]\npython = \"python9\"\n", &[]);
    assert!(
        stderr.contains(
            "config.toml: [executor] python = \"python9\": no executable of that name on PATH"
        ),
        "{stderr}"
    );
    let stderr = refused_start("[executor]\nworkspace = \"scripts\"\n", &[]);
    assert!(stderr.contains("[executor] workspace = "), "{stderr}");
    assert!(
        stderr.contains("scripts\": the folder cannot be opened"),
        "{stderr}"
    );
}
