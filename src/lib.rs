//! tickd: a job-scheduler daemon that answers Flask-APScheduler's REST API and fires jobs at
//! exactly APScheduler 3.11's times.
//!
//! # Layout
//! Rooms and the one direction their imports point:
//! `api → scheduler → store / executor → job → trigger`; `app` composes them, `main` runs it;
//! `tokens_cli` (`tickd token`) works on the store's tokens beside the daemon.
//! `trigger`, `clock`, `config`, `redact` and `telemetry` are leaves.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod executor;
pub mod job;
pub mod metrics;
pub mod redact;
pub mod scheduler;
pub mod store;
pub mod telemetry;
pub mod tokens_cli;
pub mod trigger;
