//! The suites that run tickd: its REST API on a bound port, the scheduler on an injected clock,
//! the executor on real scripts, the `tickd` binary as a process, and stores on real servers.
//! One test binary, so that the harness in `tests/common` is compiled and tickd's dependencies
//! are linked once rather than once per suite (issue 14).
//!
//! Its tests run side by side in one process, so none may count on being alone: each takes its
//! own temporary folder, a port from 127.0.0.1:0 and its own database or Redis key space, and
//! none sets an environment variable, the current directory or a signal handler of this
//! process. A limit a test needs is put on the daemon it starts (`prlimit` in `connections`),
//! never on this process; log lines are captured on the test's own thread
//! (`common::scheduling::CapturedLog`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod api;
mod api_cases;
mod audit;
mod browser;
mod check_config;
mod cluster;
mod connections;
mod console;
mod cross_site;
mod executor;
mod far_behind;
mod fork_mode;
mod function_jobs;
mod fuzz_findings;
mod health;
mod hostile_ids;
mod import;
mod isolation;
mod lifecycle;
mod limits;
mod live_output;
mod login_limit;
mod metrics;
mod notifications;
mod openapi;
mod policies;
mod preview;
mod readme;
mod roles;
mod run_errors;
mod run_logs;
mod runs;
mod runs_across;
mod scheduler;
mod shadow;
mod sqlite_idle;
mod startup;
mod store;
mod store_outage;
mod store_outbox;
mod store_queued;
mod store_redis;
mod systemd;
mod tls;
mod tokens;
