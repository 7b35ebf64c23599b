//! Turns the variables that name the test servers and tools into cfgs, so that a test needing
//! one it was not given shows as `ignored, <reason>` in cargo's own summary, and runs without
//! any flag when the variable is set (issue 12: a skipped test must not read as passed).
//! Changing one of these variables reruns this script, and cargo rebuilds the crate with the
//! new cfgs.

/// Each variable, and the cfg it sets when it is set and not empty.
const NEEDS: [(&str, &str); 6] = [
    ("TICKD_TEST_MYSQL_URL", "tickd_test_mysql"),
    ("TICKD_TEST_POSTGRES_URL", "tickd_test_postgres"),
    ("TICKD_TEST_REDIS_URL", "tickd_test_redis"),
    ("TICKD_APSCHEDULER_PYTHON", "tickd_apscheduler"),
    ("TICKD_TEST_CHROMEDRIVER", "tickd_test_chromium"),
    ("TICKD_TEST_ORIGINAL_PYTHON", "tickd_test_original"),
];

fn main() {
    // Without this, cargo reruns the script whenever any file of the package changes.
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in NEEDS {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os(var).is_some_and(|value| !value.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
