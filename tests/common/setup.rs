//! What a test run is given from outside: the variables that name servers and tools, and the
//! conformance fixtures. A test that needs a server or tool is ignored (build.rs turns each
//! variable into a cfg that lifts the test's `ignore`), so when one runs, what it needs must
//! be there: missing, the test fails and says why, never passes without testing.

use std::path::PathBuf;

use serde_json::Value;

/// The value of `var`, which the build saw set (that is why the asking test runs at all).
pub fn required(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{var} is not set, but this test binary was built with it set: set it again, or \
             run `cargo test` without it, which rebuilds the tests with the ones needing it \
             ignored"
        ),
    }
}

/// The conformance fixtures (fire times computed by the real APScheduler 3.11.3):
/// `$TICKD_SHARED_DIR/conformance/public_cases.json` when that variable is set, else the copy
/// in tests/fixtures/conformance. Says on stderr which file it replays.
pub fn public_cases() -> Value {
    let path = match std::env::var_os("TICKD_SHARED_DIR").filter(|dir| !dir.is_empty()) {
        Some(shared) => PathBuf::from(shared).join("conformance/public_cases.json"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/conformance/public_cases.json"),
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the conformance fixtures {} ({e}); TICKD_SHARED_DIR, when set, must \
             name a shared/ folder with conformance/public_cases.json",
            path.display()
        )
    });
    eprintln!("conformance fixtures: {}", path.display());
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not the fixtures' JSON: {e}", path.display()))
}
