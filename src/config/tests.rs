use std::time::Duration;

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(
        &path,
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

/// Checks that `error` says each of `says`.
fn assert_says(error: &str, says: &[&str]) {
    for words in says {
        assert!(error.contains(words), "{words:?} not in: {error}");
    }
}

/// The refusal of `text` with the environment `env`, checked to say each of `says`.
fn refused(text: &str, env: &[(&str, &str)], says: &[&str]) -> String {
    let error = load(text, env).unwrap_err().to_string();
    assert_says(&error, says);
    error
}

#[test]
fn defaults_are_the_contracts() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.server.port, 7788);
    assert_eq!(config.server.host, "127.0.0.1");
    assert_eq!(config.api.prefix, "/scheduler");
    assert_eq!(config.job_defaults.misfire_grace_time, Some(1));
    assert_eq!(config.executor.max_workers, 10);
    assert_eq!(config.executor.kill_grace, Duration::from_secs(5));
    assert_eq!(config.logging.keep_files, 14);
    assert!(config.store_url().ends_with("/sqlite.db"));
}

#[test]
fn environment_overrides_the_file() {
    let config = load(
        "[server]\nport = 1\n",
        &[
            ("TICKD_SERVER__PORT", "8080"),
            ("TICKD_STORE__URL", "sqlite:///tmp/x.db"),
        ],
    )
    .unwrap();
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.store_url(), "sqlite:///tmp/x.db");
}

#[test]
fn unknown_keys_are_named_with_the_nearest_one() {
    refused(
        "[server]\nprot = 1\n",
        &[],
        &[
            "prot is not a setting (did you mean port?)",
            "[server] has: host, port, max_connections",
        ],
    );
    refused(
        "[srever]\nport = 1\n",
        &[],
        &["srever is not a section (did you mean server?)"],
    );
    refused(
        "",
        &[("TICKD_SERVER__BOGUS", "1")],
        &[
            "environment variable TICKD_SERVER__BOGUS",
            "bogus is not a setting",
        ],
    );
}

#[test]
fn a_missing_named_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("confg.toml");
    let source = ConfigPath::Given {
        path: path.clone(),
        by: "--config".to_owned(),
    };
    let error = RawConfig::read(&source, []).unwrap_err().to_string();
    let named = path.display().to_string();
    assert_says(&error, &[&named, "does not exist (named by --config)"]);
}

#[test]
fn a_missing_default_file_means_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let source = ConfigPath::Default(dir.path().join("config.toml"));
    let config = RawConfig::read(&source, []).unwrap().into_config().unwrap();
    assert_eq!(config.file, None);
    assert!(!config.auth.enabled);
}

/// Every key refuses a bad value with the file, the key, the value and what is allowed: each
/// row is a setting as a file would hold it, and words its refusal must contain.
#[test]
fn every_setting_refuses_a_bad_value_in_words() {
    let cases = [
        ("[server] host = \"not a host!\"", "an IP address"),
        ("[server] port = \"high\"", "a whole number from 0 to 65535"),
        ("[server] port = 70000", "a whole number from 0 to 65535"),
        ("[server] max_connections = 0", "from 1 to 1000000"),
        ("[server] header_timeout = 0", "greater than 0"),
        ("[server] body_timeout = \"1m\"", "greater than 0"),
        ("[api] enabled = \"yes\"", "true or false"),
        ("[api] prefix = \"scheduler\"", "starts with /"),
        ("[auth] enabled = 1", "true or false"),
        ("[auth] max_failures = -1", "(0 = no limit)"),
        ("[auth] failure_window = 0", "greater than 0"),
        ("[scheduler] timezone = \"Mars/Olympus\"", "IANA time zone"),
        ("[scheduler] allowed_hosts = \"*\"", "a list of texts"),
        ("[store] url = \"ftp://x\"", "expected sqlite://PATH"),
        ("[job_defaults] misfire_grace_time = -1", "(0 = no limit)"),
        ("[job_defaults] coalesce = \"true\"", "true or false"),
        ("[job_defaults] max_instances = 0", "from 1 to"),
        ("[executor] max_workers = 0", "from 1 to 1024"),
        ("[executor] workspace = \"\"", "a path"),
        ("[executor] python = 3", "text in quotes"),
        (
            "[executor] interpreters = { \".sh\" = \"/bin/sh\" }",
            "without the dot",
        ),
        ("[executor] output_limit = \"lots\"", "a size"),
        ("[executor] kill_grace = -1", "seconds from 0"),
        ("[executor] nice = -3", "from 0 to 39"),
        ("[executor] shutdown_grace = \"30s\"", "seconds from 0"),
        ("[executor] timeout = 0", "greater than 0"),
        (
            "[executor] pass_env = \"PATH\"",
            "a list of environment variable names",
        ),
        ("[executor] pass_env = [\"LC_*X\"]", "* only at the end"),
        ("[executor] pass_env = [\"*\"]", "the service's secrets"),
        (
            "[executor] pass_env = [\"TICKD_STORE__URL\"]",
            "tickd's own variables (TICKD_*) never reach scripts",
        ),
        (
            "[executor] python_mode = \"spawn\"",
            "expected `exec` or `fork`",
        ),
        ("[executor] preload = \"json\"", "a list of texts"),
        ("[history] max_age_days = -2", "days from 0"),
        ("[history] max_runs_per_job = 0", "from 1 to"),
        ("[audit] max_age_days = -1", "days from 0"),
        ("[metrics] path = \"metrics\"", "a URL path of its own"),
        ("[metrics] path = \"/metrics/\"", "no trailing /"),
        ("[metrics] path = \"/scheduler/jobs\"", "one of the API's"),
        ("[metrics] path = \"/scheduler\"", "one of the API's"),
        ("[metrics] path = \"/healthz\"", "a health probe's"),
        ("[metrics] path = \"/assets/metrics\"", "the web console's"),
        ("[logging] file = \"\"", "a path"),
        (
            "[logging] level = \"verbose\"",
            "a log level (off, error, warn",
        ),
        ("[logging] level = \"info,tickd=loud\"", "a log level"),
        ("[logging] keep_files = 0", "from 1 to"),
        (
            "[logging] max_file_size = \"1KB\"",
            "a size from 64KB to 1024GB",
        ),
        ("[logging] file_under_systemd = \"no\"", "true or false"),
    ];
    for (setting, allowed) in cases {
        // "[section] key = value": the file holds it on two lines; the refusal names it up to
        // the value.
        let (named, _) = setting.split_once(" = ").unwrap();
        let text = format!("{}\n", setting.replacen("] ", "]\n", 1));
        let error = refused(
            &text,
            &[],
            &["config.toml", &format!("{named} = "), allowed],
        );
        assert!(
            !error.contains("expected u") && !error.contains("expected i"),
            "{error}"
        );
    }
}

#[test]
fn a_value_from_the_environment_names_the_variable() {
    refused(
        "",
        &[("TICKD_LOGGING__LEVEL", "verbose")],
        &["environment variable TICKD_LOGGING__LEVEL: [logging] level = \"verbose\""],
    );
}

#[test]
fn users_need_one_secret_and_a_usable_name() {
    for (text, says) in [
        ("[auth]\nenabled = true\n", "at least one [[auth.users]]"),
        (
            "[[auth.users]]\nusername = \"a\"\n",
            "exactly one of password or password_hash",
        ),
        (
            "[[auth.users]]\nusername = \"a:b\"\npassword = \"x\"\n",
            "cannot contain ':'",
        ),
        (
            "[[auth.users]]\nusername = \"a\"\npassword_hash = \"plain\"\n",
            "argon2 hash",
        ),
        (
            "[[auth.users]]\nusername = \"a\"\npassword = 5\n",
            "[[auth.users]] #1 password = ***",
        ),
    ] {
        refused(text, &[], &[says]);
    }
}

#[test]
fn secrets_never_appear_in_refusals() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "[store]\nurl = \"ftp://nobody:S3cretPw@h/x\"\n",
            &["ftp://nobody:***@h/x"],
        ),
        (
            "[[auth.users]]\nusername = \"a\"\npassword = \"S3cretPw\nx\n",
            &[],
        ),
        ("[store]\nurl = \"mysql://u:S3cretPw@h/x\" x\n", &["line 2"]),
    ];
    for (text, says) in cases {
        let error = refused(text, &[], says);
        assert!(!error.contains("S3cretPw"), "{error}");
    }
}

#[test]
fn a_syntax_error_says_where() {
    refused(
        "[executor\nmax_workers = 1\n",
        &[],
        &["not valid TOML at line 1"],
    );
}

#[test]
fn sizes_and_seconds_take_their_units() {
    let config = load(
        "[executor]\noutput_limit = \"1MB\"\nkill_grace = 0.5\ntimeout = 30\n[logging]\nmax_file_size = 1048576\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.executor.output_limit, 1 << 20);
    assert_eq!(config.executor.kill_grace, Duration::from_millis(500));
    assert_eq!(config.executor.timeout, Some(Duration::from_secs(30)));
    assert_eq!(config.logging.max_file_size, 1 << 20);
}

#[test]
fn jobs_tables_are_kept() {
    let config = load(
        "[[jobs]]\nid = \"job13\"\nfunc = \"task:success\"\nargs = [\"workspace/test.py\"]\ntrigger = \"interval\"\nseconds = 10\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.jobs.len(), 1);
    assert_eq!(config.jobs[0]["id"].as_str(), Some("job13"));
}

/// A `[[jobs]]` table is the JSON a `POST P/jobs` body is: TOML's dates become their text, and
/// a number JSON cannot hold is refused rather than turned into `null` ("no limit").
#[test]
fn jobs_tables_read_as_json_bodies() {
    let config = load(
        "[[jobs]]\nid = \"d\"\nfunc = \"task:success\"\nrun_date = 2030-01-02T03:04:05\n\
         next_run_time = 2030-01-02T03:04:05+08:00\ntimeout = 2.5\nkwargs = { a = [1, true] }\n",
        &[],
    )
    .unwrap();
    let job = &config.jobs[0];
    assert_eq!(job["run_date"], "2030-01-02T03:04:05");
    assert_eq!(job["next_run_time"], "2030-01-02T03:04:05+08:00");
    assert_eq!(job["timeout"], 2.5);
    assert_eq!(job["kwargs"], serde_json::json!({"a": [1, true]}));
    for (key, value) in [
        ("timeout", "nan"),
        ("misfire_grace_time", "inf"),
        ("args", "[nan]"),
    ] {
        let error = refused(
            &format!("[[jobs]]\nid = \"n\"\nfunc = \"task:success\"\n{key} = {value}\n"),
            &[],
            &[],
        );
        assert!(
            error.contains(&format!(
                "config.toml: [[jobs]] #1 {key} = {value}: expected a finite number"
            )),
            "{error}"
        );
    }
}

/// `[job_defaults]` and `[executor] timeout` take what a job's own options take
/// (`job::options`), from the file and from the environment alike.
#[test]
fn job_defaults_follow_the_rules_of_a_jobs_options() {
    let config = load(
        "[job_defaults]\nmax_instances = 4294967295\nmisfire_grace_time = 31536000\n\
         [executor]\ntimeout = 31536000\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.job_defaults.max_instances, u32::MAX);
    assert_eq!(config.job_defaults.misfire_grace_time, Some(31_536_000));
    assert_eq!(
        config.executor.timeout,
        Some(Duration::from_secs(31_536_000))
    );
    let config = load("[job_defaults]\nmisfire_grace_time = 0\n", &[]).unwrap();
    assert_eq!(config.job_defaults.misfire_grace_time, None);
    for (key, value, allowed) in [
        (
            "max_instances",
            "4294967296",
            "a whole number from 1 to 4294967295",
        ),
        ("max_instances", "-1", "a whole number from 1 to 4294967295"),
        (
            "misfire_grace_time",
            "31536001",
            "a whole number from 0 to 31536000",
        ),
    ] {
        let error = refused(&format!("[job_defaults]\n{key} = {value}\n"), &[], &[]);
        assert!(
            error.contains(&format!("[job_defaults] {key} = {value}: expected")),
            "{error}"
        );
        assert!(error.contains(allowed), "{error}");
    }
    let error = refused("[executor]\ntimeout = 31536000.5\n", &[], &[]);
    assert!(error.contains("at most a year (31536000)"), "{error}");
    let error = load("", &[("TICKD_JOB_DEFAULTS__MAX_INSTANCES", "0")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "environment variable TICKD_JOB_DEFAULTS__MAX_INSTANCES: [job_defaults] max_instances = 0: \
             expected a number of runs: a whole number from 1 to 4294967295"
        ),
        "{error}"
    );
}

#[test]
fn the_logging_section_is_read_alone_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[logging]\nlevel = \"debug\"\n[server]\nport = \"x\"\n",
    )
    .unwrap();
    let raw = RawConfig::read(&ConfigPath::Default(path), []).unwrap();
    assert_eq!(raw.logging().unwrap().level, "debug");
    assert!(raw.into_config().is_err());
}

#[test]
fn a_variable_with_one_underscore_is_refused_with_the_right_name() {
    refused(
        "",
        &[("TICKD_SERVER_PORT", "8080")],
        &[
            "environment variable TICKD_SERVER_PORT",
            "TICKD_SERVER__PORT",
        ],
    );
    refused(
        "",
        &[("TICKD_JOB_DEFAULTS_COALESCE", "false")],
        &["TICKD_JOB_DEFAULTS__COALESCE"],
    );
    assert!(load("", &[("TICKD_CONFIG", "x"), ("TICKD_JOB_ID", "y")]).is_ok());
}

#[test]
fn single_brackets_where_double_ones_belong_are_explained() {
    refused(
        "[auth.users]\nusername = \"a\"\npassword = \"b\"\n",
        &[],
        &["expected [[auth.users]] tables (double brackets)"],
    );
    refused(
        "[jobs]\nid = \"a\"\n",
        &[],
        &["expected [[jobs]] tables (double brackets)"],
    );
}

/// `role` in `[[auth.users]]`: one of three words, `admin` when absent.
#[test]
fn a_users_role_is_viewer_operator_or_admin() {
    let users = "[auth]\nenabled = true\n[[auth.users]]\nusername = \"w\"\npassword = \"p\"\n";
    let config = load(&format!("{users}role = \"viewer\"\n"), &[]).unwrap();
    assert_eq!(config.auth.users[0].role, crate::api::Role::Viewer);
    let config = load(users, &[]).unwrap();
    assert_eq!(config.auth.users[0].role, crate::api::Role::Admin);
    refused(
        &format!("{users}role = \"root\"\n"),
        &[],
        &[
            "role = \"root\"",
            "expected a role: viewer, operator or admin",
        ],
    );
}

/// `[job_defaults]` takes a job's policies by the same rules, checked against each other and
/// against `[notify]`; `[[notify.webhooks]]` are checked whole, their secrets never shown.
#[test]
fn job_policy_defaults_and_webhooks_are_checked() {
    let webhook = "[[notify.webhooks]]\nname = \"ops\"\nurl = \"https://hooks.example.com/T/B/XXXX\"\n\
                   secret = \"0123456789abcdef-secret\"\n";
    let config = load(
        &format!(
            "[job_defaults]\nretry = {{ limit = 3, delay = 5 }}\noverlap = \"queue\"\n\
             queue_limit = 2\nnotify = {{ webhooks = [\"ops\"], events = [\"failed\"] }}\n{webhook}"
        ),
        &[],
    )
    .unwrap();
    let policies = &config.job_defaults.policies;
    assert_eq!(
        policies.retry.as_ref().map(|r| (r.limit, r.delay)),
        Some((3, 5.0))
    );
    assert_eq!(policies.queue_limit, Some(2));
    assert_eq!(config.notify.webhooks[0].name, "ops");
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("0123456789abcdef") && !shown.contains("XXXX"),
        "{shown}"
    );

    refused(
        "[job_defaults]\noverlap = \"allow\"\n",
        &[],
        &[
            "[job_defaults] overlap = \"allow\"",
            "set max_instances to 2 or more",
        ],
    );
    refused(
        "[job_defaults]\nretry = { delay = 5 }\n",
        &[],
        &["retry.limit must be a whole number"],
    );
    refused(
        "[job_defaults]\nnotify = { webhooks = [\"pager\"] }\n",
        &[],
        &[
            "[job_defaults] notify",
            "no [[notify.webhooks]] is called \"pager\"",
        ],
    );
    refused(
        &webhook.replace("https://hooks.example.com/T/B/XXXX", "ftp://x"),
        &[],
        &[
            "[notify] webhooks.0.url",
            "expected an http:// or https:// URL",
        ],
    );
    let short = refused(
        &webhook.replace("0123456789abcdef-secret", "short"),
        &[],
        &["[notify] webhooks.0.secret", "at least 16 characters"],
    );
    assert!(
        !short.contains("short"),
        "the secret is never quoted: {short}"
    );
    refused(
        &format!(
            "{webhook}{}",
            webhook.replace("hooks.example", "other.example")
        ),
        &[],
        &["[notify] webhooks.1.name", "another webhook has this name"],
    );
}
