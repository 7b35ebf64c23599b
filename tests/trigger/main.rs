//! The suites of the triggers and the job's catch-up: pure computation over `tickd::trigger`
//! and `tickd::job`, checked against APScheduler 3.11's own tests, its real outputs (the
//! conformance fixtures, and the real library when `TICKD_APSCHEDULER_PYTHON` names one) and
//! properties. No daemon, script or server: a binary of their own, so that their CPU-heavy
//! property and differential runs do not share a process with the daemon suites' timed waits,
//! and a change here rebuilds only this crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod api;
mod apscheduler_suite;
mod cases;
mod catch_up;
mod differential;
mod props;
mod sanity;
