//! The schemas that are built with utoipa's builders rather than derived: the job object, the
//! bodies that make and change jobs, and two small ones (`Flag`, `ShutdownRequest`).
//!
//! The job object is a `oneOf` of three flat objects told apart by `trigger` (a
//! discriminator), each listing the common keys and its own trigger's: no derive spells that
//! without `allOf` nesting. The bodies are `anyOf`/`oneOf`s of one schema per kind, each kind taking only its own
//! trigger's arguments (`additionalProperties: false`): what the job parser refuses is what
//! the document says it refuses, as far as a schema can say it (a script that exists, a cron
//! expression's meaning and a time zone's name are checked by the parser only).

use std::borrow::Cow;

use serde_json::json;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, Discriminator, ObjectBuilder, OneOfBuilder,
    Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A trigger's date: `YYYY-MM-DD` (years 1 to 9999), or with a time and an optional offset.
const TRIGGER_DATE: &str = "^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$";
/// A job's `next_run_time`, in its strict form.
const RUN_TIME: &str = "^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$";
/// The longest duration or grace time tickd takes, in seconds: a year.
const YEAR_SECONDS: u32 = 31_536_000;

/// The interval trigger's units, shown only when not zero.
const UNITS: [&str; 5] = ["weeks", "days", "hours", "minutes", "seconds"];
/// The cron trigger's fields with their bounds as numbers; shown as normalised text.
const CRON_FIELDS: [(&str, u32, u32); 8] = [
    ("year", 1970, 9999),
    ("month", 1, 12),
    ("day", 1, 31),
    ("week", 1, 53),
    ("day_of_week", 0, 6),
    ("hour", 0, 23),
    ("minute", 0, 59),
    ("second", 0, 59),
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

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

fn integer(min: u32, max: u32) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
}

/// An object, or in a body also `null` (which removes the option).
fn object_type(in_body: bool) -> SchemaType {
    if in_body {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::Type(Type::Object)
    }
}

/// `retry`: null (in a body) or the policy object; the job object shows every field.
fn retry(in_body: bool) -> ObjectBuilder {
    let seconds = || number().minimum(Some(0)).maximum(Some(YEAR_SECONDS));
    let codes = ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(i32::MIN))
                .maximum(Some(i32::MAX)),
        )
        .min_items(Some(1))
        .max_items(Some(256));
    let kind = object_type(in_body);
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(
            "Retries of a failed or timed-out run: up to `limit` more attempts, the first \
             `delay` seconds after the failure, each later one `backoff` times the one before, \
             at most `max_delay`; only for `on_exit_codes` when given. `max_delay` is at least \
             `delay`. Each attempt is a run record (`attempt`, `retry_of`).",
        ))
        .property("limit", integer(1, crate::job::policy::MAX_RETRIES))
        .property("delay", seconds())
        .property("backoff", number().minimum(Some(1)).maximum(Some(100)))
        .property("max_delay", seconds())
        .property("on_exit_codes", codes)
        .required("limit")
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ))
}

/// `overlap`: the policy for a fire time that comes while the job runs `max_instances` runs.
fn overlap(in_body: bool) -> ObjectBuilder {
    let builder = if in_body {
        nullable(Type::String).enum_values(Some([
            Some("skip"),
            Some("queue"),
            Some("replace"),
            Some("allow"),
            None,
        ]))
    } else {
        string().enum_values(Some(["skip", "queue", "replace", "allow"]))
    };
    builder.description(Some(
        "skip (APScheduler's rule, the default): recorded skipped; queue: recorded queued and \
         started when a run ends (`queue_limit`); replace: the oldest run in progress is \
         cancelled and the new one starts; allow: runs overlap up to max_instances (which must \
         then be 2 or more)",
    ))
}

/// `notify`: which configured webhooks hear of the job's runs, and when.
fn notify(in_body: bool) -> ObjectBuilder {
    let events = || {
        ArrayBuilder::new()
            .items(string().enum_values(Some(crate::job::NotifyEvent::ALL.map(|e| e.as_str()))))
            .min_items(Some(1))
    };
    let kind = object_type(in_body);
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(
            "Webhooks (names of `[[notify.webhooks]]`, and a `url` of the job's own) told of \
             this job's runs by this rule instead of their own: `events`, `failed`/`timed_out` only after \
             `after_consecutive_failures` in a row and, with `final_attempt_only`, only when \
             no retry follows; `long_running` once a run passes `expected_duration` seconds.",
        ))
        .property(
            "webhooks",
            ArrayBuilder::new()
                .items(string().min_length(Some(1)))
                .max_items(Some(16)),
        )
        .property(
            "url",
            string().description(Some(
                "a target of the job's own, http:// or https://; shown as its host only",
            )),
        )
        .property(
            "secret",
            if in_body {
                string().min_length(Some(16))
            } else {
                string()
            }
            .description(Some("the own target's signing key; never shown (<redacted>)")),
        )
        .property("events", events())
        .property("after_consecutive_failures", integer(1, 1000))
        .property(
            "final_attempt_only",
            ObjectBuilder::new().schema_type(Type::Boolean),
        )
        .property(
            "expected_duration",
            number()
                .exclusive_minimum(Some(0))
                .maximum(Some(YEAR_SECONDS)),
        )
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ))
}

/// `queue_limit`: runs waiting at most with `overlap: queue` (only with it).
fn queue_limit(in_body: bool) -> ObjectBuilder {
    let max = crate::job::policy::MAX_QUEUE_LIMIT;
    let builder = if in_body {
        nullable(Type::Integer).minimum(Some(1)).maximum(Some(max))
    } else {
        integer(1, max)
    };
    builder.description(Some("Only with overlap \"queue\"; 1 when not set"))
}

fn schema_ref(name: &str) -> Ref {
    Ref::from_schema_name(name)
}

/// Implements [`ToSchema`] for a doc-only type whose schema a function builds.
macro_rules! built_schema {
    ($type:ident, $build:expr) => {
        #[doc = concat!("The `", stringify!($type), "` schema (see the module doc).")]
        pub(crate) struct $type;

        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                RefOr::T($build)
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($type))
            }
        }
    };
}

built_schema!(DateJob, job_variant("date"));
built_schema!(IntervalJob, job_variant("interval"));
built_schema!(CronJob, job_variant("cron"));
built_schema!(Job, job());
built_schema!(JobOrNull, one_of(&["Job"], true));
built_schema!(JobOrRun, one_of(&["Job", "RunRecord"], false));
built_schema!(NewDateJob, body("date", Body::Add));
built_schema!(NewIntervalJob, body("interval", Body::Add));
built_schema!(NewCronJob, body("cron", Body::Add));
// anyOf, not oneOf: the three are exclusive, but a date job's `trigger` may be left out, and
// linters take an optional property for no distinction at all.
built_schema!(
    JobSpec,
    ["NewDateJob", "NewIntervalJob", "NewCronJob"]
        .into_iter()
        .fold(AnyOfBuilder::new(), |any_of, name| any_of
            .item(schema_ref(name)))
        .build()
        .into()
);
built_schema!(JobOptions, body("", Body::Change));
built_schema!(DateChange, body("date", Body::Change));
built_schema!(IntervalChange, body("interval", Body::Change));
built_schema!(CronChange, body("cron", Body::Change));
built_schema!(
    JobChanges,
    one_of(
        &["JobOptions", "DateChange", "IntervalChange", "CronChange"],
        false
    )
);
built_schema!(
    Flag,
    string()
        .enum_values(Some(["true", "false", "1", "0", ""]))
        .description(Some("`true` or `1`; `false`, `0` or empty is false"))
        .build()
        .into()
);
built_schema!(
    ShutdownRequest,
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "Optional, any JSON or none: only exactly `{\"wait\": false}` skips waiting for \
             running scripts; anything else, invalid JSON included, means wait"
        ))
        .build()
        .into()
);

/// A job object of one trigger kind: the common keys, then the trigger's.
fn job_variant(kind: &str) -> Schema {
    let object = object()
        .description(Some(format!(
            "A job whose trigger is `{kind}`. `misfire_grace_time`, `max_instances` and \
             `next_run_time` are absent on a pending job (added while the scheduler is \
             stopped); `timeout`, `retry`, `overlap`, `queue_limit` and `notify` are shown \
             only when set."
        )))
        .property("id", string().min_length(Some(1)))
        .property("name", string().min_length(Some(1)))
        .property("func", func())
        .property(
            "args",
            ArrayBuilder::new().description(Some(
                "A task's args[0] is the script, the rest its arguments; a function's \
                 positional arguments",
            )),
        )
        .property("kwargs", object())
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
                .maximum(Some(YEAR_SECONDS)),
        )
        .property("retry", retry(false))
        .property("overlap", overlap(false))
        .property("queue_limit", queue_limit(false))
        .property("notify", notify(false));
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
            .fold(object, |object, (field, _, _)| {
                object.property(field, string())
            })
            .property("start_date", time())
            .property("end_date", time()),
    };
    object.build().into()
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

/// One of the named schemas, or null too (`POST P/jobs/{id}/resume`: null when the job had no
/// future fire time and was deleted).
fn one_of(names: &[&str], or_null: bool) -> Schema {
    let one_of = names.iter().fold(OneOfBuilder::new(), |one_of, name| {
        one_of.item(schema_ref(name))
    });
    let one_of = if or_null {
        one_of.item(ObjectBuilder::new().schema_type(Type::Null))
    } else {
        one_of
    };
    one_of.build().into()
}

/// Which body a schema describes.
#[derive(Clone, Copy, PartialEq)]
enum Body {
    /// `POST P/jobs` (and `POST P/preview`): `id` and `func` required.
    Add,
    /// `PATCH P/jobs/{id}`: no `id`; a trigger only with its arguments, and no `jitter`.
    Change,
}

/// A body for a trigger `kind` (none: a change of options only): the job's options, then
/// that trigger's arguments, and nothing else.
fn body(kind: &str, which: Body) -> Schema {
    let any_time = || {
        string().pattern(Some(TRIGGER_DATE)).description(Some(
            "YYYY-MM-DD or YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]] with an optional Z, ±HH:MM or \
             ±HHMM; naive times are read in the trigger's timezone",
        ))
    };
    let mut object = object()
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property("name", string().min_length(Some(1)))
        .property("func", func())
        .property(
            "args",
            ArrayBuilder::new().description(Some(
                "For task:success and task:run_script, args[0] is the script, in the \
                 workspace (GET P/scripts lists them), and the rest its arguments; for a \
                 function, its positional arguments",
            )),
        )
        .property("kwargs", object())
        .property(
            "misfire_grace_time",
            nullable(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(YEAR_SECONDS)),
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
                .maximum(Some(YEAR_SECONDS)),
        )
        .property("retry", retry(true))
        .property("overlap", overlap(true))
        .property("queue_limit", queue_limit(true))
        .property("notify", notify(true));
    if which == Body::Add {
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
    if kind.is_empty() {
        return object
            .description(Some(
                "A change of the job's options only; the schedule stays",
            ))
            .build()
            .into();
    }
    let trigger = string().enum_values(Some([kind]));
    object = object.property("trigger", trigger).property(
        "timezone",
        string()
            .pattern(Some("^[A-Za-z0-9_+\\-]+(/[A-Za-z0-9_+\\-]+)*$"))
            .description(Some("an IANA zone name, such as Europe/Berlin")),
    );
    // A date job is the default: its `trigger` may be left out of an add.
    if kind != "date" || which == Body::Change {
        object = object.required("trigger");
    }
    let jitter = || number().minimum(Some(0)).maximum(Some(YEAR_SECONDS));
    object = match kind {
        "date" => object.property("run_date", any_time()),
        "interval" => UNITS
            .into_iter()
            .fold(object, |object, unit| object.property(unit, number()))
            .property("start_date", any_time())
            .property("end_date", any_time()),
        _ => CRON_FIELDS
            .into_iter()
            .fold(object, |object, (field, min, max)| {
                let value = OneOfBuilder::new()
                    .item(
                        string()
                            .min_length(Some(1))
                            .description(Some("an expression: */n, a-b, names, ...")),
                    )
                    .item(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(min))
                            .maximum(Some(max)),
                    );
                object.property(field, value)
            })
            .property("start_date", any_time())
            .property("end_date", any_time()),
    };
    if kind != "date" && which == Body::Add {
        object = object.property("jitter", jitter());
    }
    object.examples([example(kind, which)]).build().into()
}

/// A body of each kind that tickd takes as shipped (`workspace/test.py` exists): for the
/// reader, for Postman's generated requests, and for a fuzzer's first cases.
fn example(kind: &str, which: Body) -> serde_json::Value {
    let mut body = match kind {
        "date" => json!({"trigger": "date", "run_date": "2030-01-02 03:04:05"}),
        "interval" => json!({"trigger": "interval", "minutes": 10}),
        _ => json!({"trigger": "cron", "day_of_week": "mon-fri", "hour": 9, "minute": 30,
                     "timezone": "Asia/Shanghai"}),
    };
    if which == Body::Add
        && let Some(fields) = body.as_object_mut()
    {
        fields.insert("id".to_owned(), json!(format!("example-{kind}")));
        fields.insert("func".to_owned(), json!("task:success"));
        fields.insert("args".to_owned(), json!(["test.py"]));
    }
    body
}

/// `func`: a built-in task, or a function in a workspace module.
fn func() -> ObjectBuilder {
    string()
        .pattern(Some(
            r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        ))
        .examples(["task:run_script", "app.tasks.database:send_report"])
        .description(Some(
            "task:success or task:run_script run the script args[0]; any other \
             `module:callable` calls that function, whose module must be a file in the \
             workspace (`a.b` is a/b.py or a/b/__init__.py), with args and kwargs; its \
             return value is the run's `result`",
        ))
}
