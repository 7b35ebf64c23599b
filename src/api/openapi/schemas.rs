//! Doc-only schema types: what the handlers send and take, written down for the OpenAPI
//! document because the handlers build their JSON by hand (`wire.rs`, `view.rs`, and each
//! route's `*_to_json`). Nothing here is ever built; `.ci/fuzz-api` checks real answers
//! against these schemas (schemathesis), so they cannot drift unseen.
//!
//! The job object is written with utoipa's builders rather than derived: it is a `oneOf` of
//! three flat objects told apart by `trigger` (a discriminator), each listing the common keys
//! and its own trigger's, which no derive spells without `allOf` nesting.
#![allow(dead_code)]

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Discriminator, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

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
}

/// Why a run happened.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RunCause {
    Schedule,
    RunNow,
    Startup,
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

/// A trigger's date: `YYYY-MM-DD` (years 1 to 9999), or with a time and an optional offset.
const TRIGGER_DATE: &str = "^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$";
/// A job's `next_run_time`, in its strict form.
const RUN_TIME: &str = "^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$";

/// The three trigger kinds.
const KINDS: [&str; 3] = ["date", "interval", "cron"];
/// The interval trigger's units, shown only when not zero.
const UNITS: [&str; 5] = ["weeks", "days", "hours", "minutes", "seconds"];
/// The cron trigger's fields, shown only when given, as normalised text.
const CRON_FIELDS: [&str; 8] = [
    "year",
    "month",
    "day",
    "week",
    "day_of_week",
    "hour",
    "minute",
    "second",
];

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn time() -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

fn nullable(kind: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([kind, Type::Null]))
}

fn number() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Number)
}

/// A job object of one trigger kind: the common keys, then the trigger's.
fn job_variant(kind: &str) -> Schema {
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "A job whose trigger is `{kind}`. `misfire_grace_time`, `max_instances` and \
             `next_run_time` are absent on a pending job (added while the scheduler is \
             stopped); `timeout` is shown only when set."
        )))
        .property("id", string().min_length(Some(1)))
        .property("name", string().min_length(Some(1)))
        .property(
            "func",
            string().enum_values(Some(["task:success", "task:run_script"])),
        )
        .property(
            "args",
            ArrayBuilder::new().description(Some("args[0] is the script; the rest its arguments")),
        )
        .property("kwargs", ObjectBuilder::new().schema_type(Type::Object))
        .property("trigger", string().enum_values(Some([kind])))
        .property(
            "misfire_grace_time",
            nullable(Type::Integer)
                .minimum(Some(1))
                .description(Some("seconds a run may start late; null: no limit")),
        )
        .property(
            "max_instances",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .property(
            "next_run_time",
            nullable(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("null: paused")),
        )
        .property(
            "timeout",
            number()
                .exclusive_minimum(Some(0))
                .maximum(Some(31_536_000)),
        );
    let object = ["id", "name", "func", "args", "kwargs", "trigger"]
        .into_iter()
        .fold(object, ObjectBuilder::required);
    let object = match kind {
        "date" => object.property("run_date", time()).required("run_date"),
        "interval" => UNITS
            .into_iter()
            .fold(object, |object, unit| object.property(unit, number()))
            .property("start_date", time())
            .property("end_date", time())
            .required("start_date"),
        _ => CRON_FIELDS
            .into_iter()
            .fold(object, |object, field| object.property(field, string()))
            .property("start_date", time())
            .property("end_date", time()),
    };
    object.build().into()
}

/// Implements [`ToSchema`] for a doc-only type whose schema a function builds.
macro_rules! built_schema {
    ($type:ident, $name:literal, $build:expr) => {
        #[doc = concat!("The `", $name, "` schema.")]
        pub(crate) struct $type;

        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                RefOr::T($build)
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

built_schema!(DateJob, "DateJob", job_variant("date"));
built_schema!(IntervalJob, "IntervalJob", job_variant("interval"));
built_schema!(CronJob, "CronJob", job_variant("cron"));
built_schema!(Job, "Job", job());
built_schema!(JobOrNull, "JobOrNull", job_or_null());
built_schema!(JobOrRun, "JobOrRun", job_or_run());
built_schema!(JobSpec, "JobSpec", job_spec(true));
built_schema!(JobChanges, "JobChanges", job_spec(false));
built_schema!(
    Flag,
    "Flag",
    string()
        .enum_values(Some(["true", "false", "1", "0", ""]))
        .description(Some("`true` or `1`; `false`, `0` or empty is false"))
        .build()
        .into()
);
built_schema!(
    ShutdownRequest,
    "ShutdownRequest",
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "Optional, any JSON or none: only exactly `{\"wait\": false}` skips waiting for running \
             scripts; anything else, invalid JSON included, means wait"
        ))
        .build()
        .into()
);

fn schema_ref(name: &str) -> Ref {
    Ref::from_schema_name(name)
}

/// The job object: one of the three, by `trigger`.
fn job() -> Schema {
    let variants = [
        ("date", "DateJob"),
        ("interval", "IntervalJob"),
        ("cron", "CronJob"),
    ];
    let mapping = variants
        .iter()
        .map(|(kind, name)| (*kind, format!("#/components/schemas/{name}")));
    let one_of = OneOfBuilder::new().description(Some(
        "A job as Flask-APScheduler shows it: keys sorted, the trigger's fields beside the \
         job's own",
    ));
    variants
        .iter()
        .fold(one_of, |one_of, (_, name)| one_of.item(schema_ref(name)))
        .discriminator(Some(Discriminator::with_mapping("trigger", mapping)))
        .build()
        .into()
}

/// `POST P/jobs/{id}/resume`: the job, or null when it had no future fire time (deleted).
fn job_or_null() -> Schema {
    OneOfBuilder::new()
        .item(schema_ref("Job"))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// `POST P/jobs/{id}/run`: the job, or with `?wait=true` the run record.
fn job_or_run() -> Schema {
    OneOfBuilder::new()
        .item(schema_ref("Job"))
        .item(schema_ref("RunRecord"))
        .build()
        .into()
}

/// A `POST P/jobs` body (`required`: `id` and `func` are), or a `PATCH` body: the job's
/// options, then every trigger argument; no other key is taken.
fn job_spec(add: bool) -> Schema {
    let any_time = || {
        string().pattern(Some(TRIGGER_DATE)).description(Some(
            "YYYY-MM-DD or YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]] with an optional Z, ±HH:MM or \
             ±HHMM; naive times are read in the trigger's timezone",
        ))
    };
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property("name", string().min_length(Some(1)))
        .property(
            "func",
            string().enum_values(Some(["task:success", "task:run_script"])),
        )
        .property("args", ArrayBuilder::new())
        .property("kwargs", ObjectBuilder::new().schema_type(Type::Object))
        .property(
            "trigger",
            string()
                .enum_values(Some(KINDS))
                .description(Some("default date (at now); `{\"type\": ...}` is read too")),
        )
        .property(
            "misfire_grace_time",
            nullable(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(31_536_000)),
        )
        .property("coalesce", ObjectBuilder::new().schema_type(Type::Boolean))
        .property(
            "max_instances",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .property(
            "next_run_time",
            nullable(Type::String)
                .pattern(Some(RUN_TIME))
                .description(Some("null: the job is paused")),
        )
        .property(
            "timeout",
            nullable(Type::Number)
                .exclusive_minimum(Some(0))
                .maximum(Some(31_536_000)),
        )
        .property("run_date", any_time())
        .property("start_date", any_time())
        .property("end_date", any_time())
        .property("timezone", string().description(Some("an IANA zone name")))
        .property(
            "jitter",
            number().minimum(Some(0)).maximum(Some(31_536_000)),
        );
    object = UNITS
        .into_iter()
        .fold(object, |object, unit| object.property(unit, number()));
    object = CRON_FIELDS.into_iter().fold(object, |object, field| {
        object.property(
            field,
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Integer])),
        )
    });
    if add {
        object = object
            .property("id", string().min_length(Some(1)).max_length(Some(191)))
            .property(
                "replace_existing",
                ObjectBuilder::new().schema_type(Type::Boolean),
            )
            .property("jobstore", string().enum_values(Some(["default"])))
            .property("executor", string().enum_values(Some(["default"])))
            .required("id")
            .required("func");
    }
    object.build().into()
}
