//! Doc-only schema types: what the handlers send and take, written down for the OpenAPI
//! document because the handlers build their JSON by hand (`wire.rs`, `view.rs`, and each
//! route's `*_to_json`). Nothing here is ever built; `.ci/fuzz-api` checks real answers
//! against these schemas (schemathesis), so they cannot drift unseen.
//!
//! The job object, the job bodies and the query flags are built rather than derived: see
//! `job_schemas.rs`, whose types are re-exported here.
#![allow(dead_code)]

use utoipa::ToSchema;

pub(crate) use super::job_schemas::{
    CronJob, DateJob, Flag, IntervalJob, Job, JobChanges, JobOrNull, JobOrRun, JobSpec,
    ShutdownRequest,
};

/// Every error but the 401: `error_message`, and `run_id` when the error left a run record
/// (a run-now whose script could not start).
#[derive(ToSchema)]
pub(crate) struct ErrorEnvelope {
    /// What went wrong, in words (the reference's text wherever it has one).
    error_message: String,
    /// The `failed` run that the refused run-now left behind.
    #[schema(required = false)]
    run_id: Option<String>,
}

/// `GET P`: the scheduler as Flask-APScheduler reports it.
#[derive(ToSchema)]
pub(crate) struct SchedulerInfo {
    /// `scheduler.allowed_hosts`: where the scheduler starts at start-up (`*`: anywhere).
    allowed_hosts: Vec<String>,
    /// This machine's host name, in lower case.
    current_host: String,
    /// False only when stopped: a paused scheduler reports true.
    running: bool,
}

/// A run's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RunStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Missed,
    Skipped,
    Interrupted,
    Cancelled,
    Queued,
}

/// Why a run happened.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RunCause {
    Schedule,
    RunNow,
    Startup,
    Retry,
}

/// A run record: every run of a job, and every run that did not happen.
#[derive(ToSchema)]
pub(crate) struct RunRecord {
    /// The run id, a UUIDv7.
    id: String,
    /// The job, which may since have been deleted.
    job_id: String,
    /// The fire time this run is for, in the job's zone; null for run-now.
    #[schema(required = true, format = DateTime)]
    scheduled_run_time: Option<String>,
    /// When the script started (UTC); null when it did not (yet).
    #[schema(required = true, format = DateTime)]
    started_at: Option<String>,
    /// When the run ended (UTC); null while it runs, or when it never ran.
    #[schema(required = true, format = DateTime)]
    finished_at: Option<String>,
    status: RunStatus,
    /// Why it was missed, skipped, cancelled, timed out, interrupted or failed; else null.
    #[schema(required = true)]
    reason: Option<String>,
    /// The script's exit code, when it exited by itself.
    #[schema(required = true)]
    exit_code: Option<i32>,
    /// The last `executor.output_limit` bytes of the script's standard output.
    stdout: String,
    /// The last `executor.output_limit` bytes of its standard error.
    stderr: String,
    /// Whether more was printed to stdout than kept.
    stdout_truncated: bool,
    /// Whether more was printed to stderr than kept.
    stderr_truncated: bool,
    cause: RunCause,
    /// The host that ran it.
    node: String,
    /// A function job's return value: as JSON when it is serialisable and its JSON fits in
    /// 64 KiB, else its `repr` as a string (cut to fit). Absent for scripts, and for a call
    /// that did not return (it raised, exited, or was stopped).
    #[schema(nullable = false)]
    result: Option<serde_json::Value>,
    /// Which try this is: 1, or more for a retry (the job's `retry`).
    attempt: u32,
    /// The run this one retries; only on retries.
    #[schema(nullable = false)]
    retry_of: Option<String>,
    /// When a `queued` run may start (UTC): a retry after its delay, a queued fire time when
    /// a run of its job ends. Kept once it started; absent on runs that never waited.
    #[schema(nullable = false, format = DateTime)]
    due_at: Option<String>,
}

/// A run in `GET P/runs`: the record without its output (`stdout`, `stderr`).
#[derive(ToSchema)]
pub(crate) struct RunSummary {
    id: String,
    job_id: String,
    #[schema(required = true, format = DateTime)]
    scheduled_run_time: Option<String>,
    #[schema(required = true, format = DateTime)]
    started_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    finished_at: Option<String>,
    status: RunStatus,
    #[schema(required = true)]
    reason: Option<String>,
    #[schema(required = true)]
    exit_code: Option<i32>,
    stdout_truncated: bool,
    stderr_truncated: bool,
    cause: RunCause,
    node: String,
    attempt: u32,
    #[schema(nullable = false)]
    retry_of: Option<String>,
    #[schema(nullable = false, format = DateTime)]
    due_at: Option<String>,
}

/// `GET P/runs/{id}/output` without `follow`: the output kept or read so far.
#[derive(ToSchema)]
pub(crate) struct RunOutput {
    run_id: String,
    status: RunStatus,
    #[schema(required = true)]
    exit_code: Option<i32>,
    #[schema(required = true)]
    reason: Option<String>,
    stdout: String,
    stderr: String,
    stdout_truncated: bool,
    stderr_truncated: bool,
}

/// An event of `GET P/runs/{id}/output?follow=true` (Server-Sent Events).
#[derive(ToSchema)]
pub(crate) struct OutputEvent {
    event: OutputEventKind,
    /// The output's text (`stdout`, `stderr`), else one line of JSON: `truncated`
    /// `{"stream"}`, `dropped` `{"chunks", "bytes"}`, `remote` `{"node", "message"}`, `end`
    /// `{"status", "exit_code", "reason"}`, `gone` and `refused` `{"message"}`.
    #[schema(required = false)]
    data: Option<String>,
}

/// What an output event carries; every stream ends with `end`, `gone` or `refused`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum OutputEventKind {
    Stdout,
    Stderr,
    Truncated,
    Dropped,
    Remote,
    End,
    Gone,
    Refused,
}

/// How a fire time meets daylight saving time.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum DstMark {
    /// The wall time falls in a spring-forward gap.
    Moved,
    /// The wall time occurs twice (the fall-back hour).
    Repeated,
}

/// One fire time of a preview.
#[derive(ToSchema)]
pub(crate) struct FireTime {
    /// As the job shows `next_run_time`.
    #[schema(format = DateTime)]
    time: String,
    /// The same instant in UTC.
    #[schema(format = DateTime)]
    utc: String,
    #[schema(required = true)]
    dst: Option<DstMark>,
}

/// A schedule preview: a job's (or a body's) next fire times.
#[derive(ToSchema)]
pub(crate) struct Preview {
    /// `date`, `interval` or `cron`.
    trigger: String,
    /// The trigger in plain words.
    description: String,
    /// The trigger's IANA zone.
    timezone: String,
    /// Seconds of random delay, left out of the times.
    #[schema(required = true)]
    jitter: Option<f64>,
    paused: bool,
    pending: bool,
    /// The job's past-due `next_run_time`, when the scheduler is paused.
    #[schema(required = true, format = DateTime)]
    overdue_since: Option<String>,
    #[schema(max_items = 100)]
    fire_times: Vec<FireTime>,
}

/// A daemon sharing the job store.
#[derive(ToSchema)]
pub(crate) struct ClusterNode {
    id: String,
    host: String,
    pid: u32,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime)]
    last_heartbeat: String,
}

/// A role: what a user or token may do.
#[derive(ToSchema, serde::Deserialize)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Role {
    Viewer,
    Operator,
    Admin,
}

/// How a request proved who it is.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Credential {
    Password,
    Token,
}

/// The scheduler's state, the three told apart.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum SchedulerState {
    Running,
    Paused,
    Stopped,
}

/// `GET P/me`: who the request was authenticated as (all null but `role` with
/// authentication off), and the scheduler's state.
#[derive(ToSchema)]
pub(crate) struct Me {
    #[schema(required = true)]
    name: Option<String>,
    role: Role,
    #[schema(required = true)]
    credential: Option<Credential>,
    scheduler_state: SchedulerState,
}

/// `GET P/scripts`: the scripts a job may name in `args[0]`, relative to the workspace.
#[derive(ToSchema)]
pub(crate) struct Scripts {
    #[schema(max_items = 1000)]
    scripts: Vec<String>,
    /// More exist than listed.
    truncated: bool,
}

/// An API token's record (never its secret).
#[derive(ToSchema)]
pub(crate) struct Token {
    id: String,
    /// `tickd_<id>`: how the token's text begins.
    prefix: String,
    name: String,
    role: Role,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    expires_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    last_used_at: Option<String>,
}

/// A token just created: its record and, this once, `token`, the text to send.
#[derive(ToSchema)]
pub(crate) struct NewToken {
    id: String,
    prefix: String,
    name: String,
    role: Role,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    expires_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    last_used_at: Option<String>,
    /// `tickd_<id>_<secret>`, for `Authorization: Bearer`.
    token: String,
}

/// `POST P/tokens`'s body.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenRequest {
    /// Who it is for: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"
    )]
    name: String,
    role: Role,
    /// When it stops working: in the future, with its offset.
    #[schema(required = false, format = DateTime)]
    expires_at: Option<String>,
}

/// An audit record's outcome.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Ok,
    Denied,
    Error,
}

/// Where a webhook delivery stands.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum DeliveryStatus {
    Pending,
    Delivered,
    GaveUp,
}

/// One webhook delivery (`GET P/notifications`).
#[derive(ToSchema)]
pub(crate) struct Notification {
    id: String,
    /// failed, timed_out, missed, recovered or long_running.
    event: String,
    job_id: String,
    run_id: String,
    /// The webhook's name in `[[notify.webhooks]]`.
    webhook: String,
    status: DeliveryStatus,
    attempts: u32,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    delivered_at: Option<String>,
    /// Why the last attempt failed; null when none did, or it was delivered.
    #[schema(required = true)]
    last_error: Option<String>,
    /// The JSON body sent.
    body: serde_json::Value,
}

/// One audit record.
#[derive(ToSchema)]
pub(crate) struct AuditRecord {
    id: String,
    #[schema(format = DateTime)]
    at: String,
    #[schema(required = true)]
    actor: Option<String>,
    #[schema(required = true)]
    credential: Option<Credential>,
    source: String,
    method: String,
    route: String,
    #[schema(required = true)]
    target: Option<String>,
    outcome: Outcome,
    status: u16,
}
