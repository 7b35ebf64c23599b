//! tickd: a job-scheduler daemon that answers Flask-APScheduler's REST API and fires jobs at
//! exactly APScheduler 3.11's times.
//!
//! # Layout
//! Rooms and the one direction their imports point:
//! `api → scheduler → store / executor / notify → job → trigger` (`notify` writes to the
//! store's outbox); `app` composes them, `main` runs it;
//! `tokens_cli` (`tickd token`) works on the store's tokens beside the daemon;
//! `check_config` (`tickd check-config`) checks a config without starting anything;
//! `import` (`tickd import`) moves a running Flask-APScheduler's jobs in through the API.
//! `trigger`, `clock`, `config`, `redact`, `systemd` (the notify protocol) and `telemetry` are
//! leaves.

pub mod api;
pub mod app;
pub mod check_config;
pub mod clock;
pub mod config;
pub mod executor;
pub mod import;
pub mod job;
pub mod metrics;
pub mod notify;
pub mod redact;
pub mod scheduler;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod tokens_cli;
pub mod trigger;
