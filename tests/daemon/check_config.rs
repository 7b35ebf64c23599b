//! `tickd check-config` (issue 17, point 6) as a user runs it: a good config exits 0 and
//! prints the effective settings with every secret redacted; a bad key exits non-zero naming
//! it. Nothing is started: no port bound, no store file made.

use std::process::Command;

use crate::common::project_dir;

fn check_config(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tickd"))
        .args(args)
        .current_dir(dir)
        .env_remove("TICKD_CONFIG")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_good_config_is_printed_redacted_and_nothing_starts() {
    let dir = project_dir();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[server]\nport = 1\n[auth]\nenabled = true\n[[auth.users]]\nusername = \"ops\"\n\
         password = \"plain-secret-1\"\n[[auth.users]]\nusername = \"viewer\"\nrole = \"viewer\"\n\
         password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$6Sd5Iyd1X8jAiOtwMTyGrDAsJpjZgcomcQhEfvnG/Tc\"\n\
         [store]\nurl = \"sqlite://kept.db\"\n",
    )
    .unwrap();
    // Both orders of the option work.
    for args in [
        ["check-config", "--config", "config.toml"],
        ["--config", "config.toml", "check-config"],
    ] {
        let (ok, out, err) = check_config(&args, dir.path());
        assert!(ok, "{err}");
        assert!(out.starts_with("The configuration is valid"), "{out}");
        assert!(out.contains("username: \"ops\""), "{out}");
        assert!(!out.contains("plain-secret-1"), "{out}");
        assert!(!out.contains("6Sd5Iyd1X8"), "{out}");
        assert!(out.contains("<redacted>"), "{out}");
    }
    // A store URL's password, given by the environment.
    let output = Command::new(env!("CARGO_BIN_EXE_tickd"))
        .args(["check-config", "--config", "config.toml"])
        .current_dir(dir.path())
        .env(
            "TICKD_STORE__URL",
            "postgres://tickd:url-secret-2@db.example/tickd",
        )
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(!out.contains("url-secret-2"), "{out}");
    assert!(
        out.contains("postgres://tickd:***@db.example/tickd"),
        "{out}"
    );
    // Nothing was opened or written.
    assert!(!dir.path().join("kept.db").exists());
    assert!(!dir.path().join("logs").exists());
}

#[test]
fn a_bad_key_exits_non_zero_naming_it() {
    let dir = project_dir();
    std::fs::write(
        dir.path().join("config.toml"),
        "[health]\nreadyz_pat = \"/r\"\n",
    )
    .unwrap();
    let (ok, out, err) = check_config(&["check-config"], dir.path());
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("readyz_pat"), "{err}");
    assert!(
        err.contains("readyz_path"),
        "the nearest key is suggested: {err}"
    );

    std::fs::write(dir.path().join("config.toml"), "[server]\nport = \"x\"\n").unwrap();
    let (ok, _, err) = check_config(&["check-config"], dir.path());
    assert!(!ok);
    assert!(err.contains("[server] port"), "{err}");

    let (ok, _, err) = check_config(&["check-config", "--config", "missing.toml"], dir.path());
    assert!(!ok);
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn the_version_is_printed() {
    let dir = project_dir();
    let (ok, out, _) = check_config(&["--version"], dir.path());
    assert!(ok);
    assert_eq!(out.trim(), format!("tickd {}", env!("CARGO_PKG_VERSION")));
}
