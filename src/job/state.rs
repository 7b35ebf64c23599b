//! The persisted form of a job: versioned, portable JSON (never a pickle), kept apart from the
//! HTTP view so the wire format can change without a migration and vice versa.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Job, Policies};
use crate::trigger::{Trigger, isoformat};

/// The version written today; readers refuse versions they do not know.
const VERSION: u32 = 1;

/// Borrows the job's data when written (`to_state` runs on every add and change) and owns it
/// when read; `T` is the trigger's state, serialised in place when written and a `Value`
/// when read.
#[derive(Serialize, Deserialize)]
struct JobState<'a, T> {
    version: u32,
    id: Cow<'a, str>,
    name: Cow<'a, str>,
    func: Cow<'a, str>,
    args: Cow<'a, [Value]>,
    kwargs: Cow<'a, Map<String, Value>>,
    trigger: T,
    misfire_grace_time: Option<u64>,
    coalesce: bool,
    max_instances: u32,
    /// RFC 3339 with the offset the job JSON shows (a gap time keeps its pre-transition
    /// offset, which the UTC index column alone could not say).
    #[serde(default, serialize_with = "write_time", deserialize_with = "read_time")]
    next_run_time: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "is_default")]
    policies: Cow<'a, Policies>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
}

impl Job {
    /// The job as the store keeps it.
    pub fn to_state(&self) -> String {
        let state = JobState {
            version: VERSION,
            id: Cow::Borrowed(&self.id),
            name: Cow::Borrowed(&self.name),
            func: Cow::Borrowed(&self.func),
            args: Cow::Borrowed(&self.args),
            kwargs: Cow::Borrowed(&self.kwargs),
            trigger: self.trigger.state(),
            misfire_grace_time: self.misfire_grace_time,
            coalesce: self.coalesce,
            max_instances: self.max_instances,
            next_run_time: self.next_run_time,
            timeout: self.timeout,
            policies: Cow::Borrowed(&self.policies),
            pending: self.pending,
        };
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(&state).unwrap_or_default()
    }

    /// Reads a job back from [`Job::to_state`]'s form.
    ///
    /// # Errors
    /// A message saying what is wrong with the stored text.
    pub fn from_state(text: &str) -> Result<Job, String> {
        let state: JobState<Value> =
            serde_json::from_str(text).map_err(|e| format!("unreadable job state: {e}"))?;
        if state.version != VERSION {
            return Err(format!("unknown job state version {}", state.version));
        }
        let trigger = Trigger::from_state(&state.trigger)
            .map_err(|e| format!("unreadable trigger in job state: {e}"))?;
        Ok(Job {
            id: state.id.into_owned().into(),
            name: state.name.into_owned(),
            func: state.func.into_owned(),
            args: state.args.into_owned(),
            kwargs: state.kwargs.into_owned(),
            trigger,
            misfire_grace_time: state.misfire_grace_time,
            coalesce: state.coalesce,
            max_instances: state.max_instances,
            next_run_time: state.next_run_time,
            timeout: state.timeout,
            policies: state.policies.into_owned(),
            pending: state.pending,
            version: 0,
        })
    }
}

/// Whether a job sets none of the policies: a job without them keeps the state it had before
/// they existed.
#[allow(clippy::ptr_arg)] // serde's `skip_serializing_if` hands the field as it is typed
fn is_default(policies: &Cow<'_, Policies>) -> bool {
    **policies == Policies::default()
}

/// A time as RFC 3339 text (Python's `isoformat`): the offset in it is the one the job JSON
/// shows. Written by [`isoformat`] rather than chrono's rendering, which interprets a format
/// on every call and rounds an offset with seconds (a zone's local mean time before ~1900,
/// `+08:05:43`) to whole minutes, moving the instant; [`read_time`] reads those seconds back.
fn write_time<S: Serializer>(
    time: &Option<DateTime<FixedOffset>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        None => serializer.serialize_none(),
        Some(time)
            if time.nanosecond() % 1000 == 0
                && time.nanosecond() < 1_000_000_000
                && (0..=9999).contains(&time.year()) =>
        {
            serializer.serialize_str(&isoformat(time))
        }
        // Sub-microsecond or leap-second times and years Python cannot hold: chrono's text,
        // with the offset's seconds when it has some.
        Some(time) if time.offset().local_minus_utc() % 60 != 0 => {
            serializer.collect_str(&time.format("%Y-%m-%dT%H:%M:%S%.f%::z"))
        }
        Some(time) => time.serialize(serializer),
    }
}

/// Reads [`write_time`]'s text: RFC 3339, or with an offset in seconds. A time outside
/// Python's years 1 to 9999 (which no request can set) is refused: it would reach the
/// triggers' arithmetic near the end of chrono's range.
fn read_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let Some(text) = Option::<Cow<'de, str>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    text.parse::<DateTime<FixedOffset>>()
        .ok()
        .or_else(|| with_offset_seconds(&text))
        .filter(|time| (1..=9999).contains(&time.year()))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unreadable next_run_time {text:?}")))
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]±HH:MM:SS`, which chrono's RFC 3339 parser refuses.
fn with_offset_seconds(text: &str) -> Option<DateTime<FixedOffset>> {
    let (local, offset) = text.split_at_checked(text.len().checked_sub(9)?)?;
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut parts = offset.get(1..)?.split(':').map(str::parse::<i32>);
    let (h, m, s) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    if m > 59 || s > 59 {
        return None;
    }
    let offset = FixedOffset::east_opt(sign * (h * 3600 + m * 60 + s))?;
    NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()?
        .and_local_timezone(offset)
        .single()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset, NaiveDate, Timelike};
    use serde_json::{Value, json};

    use crate::job::{Job, JobDefaults, JobSpec};

    fn job(trigger: Value) -> Job {
        let mut body = json!({"id": "j", "func": "task:success", "args": ["test.py"]});
        if let (Some(body), Some(trigger)) = (body.as_object_mut(), trigger.as_object()) {
            body.extend(trigger.clone());
        }
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap_or_default();
        JobSpec::parse(
            &body,
            &JobDefaults::default(),
            chrono_tz::Asia::Shanghai,
            now.to_utc(),
        )
        .map(|spec| spec.job)
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_state_reads_back_as_the_same_job_for_every_trigger_and_time() {
        let lmt = NaiveDate::from_ymd_opt(1890, 1, 1)
            .and_then(|d| d.and_hms_micro_opt(12, 0, 0, 250))
            .and_then(|t| {
                FixedOffset::east_opt(29_143).and_then(|o| t.and_local_timezone(o).single())
            });
        let times = [
            None,
            DateTime::parse_from_rfc3339("2030-01-02T03:04:05+08:00").ok(),
            DateTime::parse_from_rfc3339("2030-01-02T03:04:05.000250-09:30").ok(),
            lmt,
            // Below a microsecond, with offset seconds: the path through chrono's text.
            lmt.and_then(|t| t.with_nanosecond(250_001)),
        ];
        let triggers = [
            json!({"trigger": "date", "run_date": "2030-05-06 07:08:09.5"}),
            json!({"trigger": "interval", "minutes": 90, "start_date": "2030-01-01T00:00:00+01:00",
                   "end_date": "2031-01-01", "jitter": 3}),
            json!({"trigger": "cron", "day": "last fri", "hour": "9-17", "timezone": "Europe/Berlin"}),
        ];
        for trigger in triggers {
            for time in times {
                let mut job = job(trigger.clone());
                job.next_run_time = time;
                job.timeout = Some(2.5);
                let state = job.to_state();
                let back = Job::from_state(&state).unwrap_or_else(|e| panic!("{e}: {state}"));
                assert_eq!(back, job, "{state}");
                assert_eq!(
                    back.next_run_time.map(|t| t.offset().local_minus_utc()),
                    time.map(|t| t.offset().local_minus_utc())
                );
            }
        }
    }

    /// The trigger states written before they were serialised in place, key for key.
    #[test]
    fn trigger_states_are_written_as_before() {
        let cases = [
            (
                json!({"trigger": "date", "run_date": "2030-05-06 07:08:09.5"}),
                json!({"version": 1, "trigger": "date", "timezone": "Asia/Shanghai",
                       "run_date": {"iso": "2030-05-06T07:08:09.500000+08:00",
                                    "timestamp_us": 1_904_252_889_500_000_i64,
                                    "utc_offset": 28800, "in_zone": true}}),
            ),
            (
                json!({"trigger": "interval", "minutes": 90,
                       "start_date": "2030-01-01T00:00:00+01:00", "end_date": "2031-01-01",
                       "jitter": 3}),
                json!({"version": 1, "trigger": "interval", "timezone": "Asia/Shanghai",
                       "interval": {"days": 0, "seconds": 5400, "microseconds": 0},
                       "start_date": {"iso": "2030-01-01T00:00:00+01:00",
                                      "timestamp_us": 1_893_452_400_000_000_i64,
                                      "utc_offset": 3600, "in_zone": false},
                       "end_date": {"iso": "2031-01-01T00:00:00+08:00",
                                    "timestamp_us": 1_924_963_200_000_000_i64,
                                    "utc_offset": 28800, "in_zone": true},
                       "jitter": 3.0}),
            ),
            (
                json!({"trigger": "cron", "day": "last fri", "hour": "9-17",
                       "timezone": "Europe/Berlin"}),
                json!({"version": 1, "trigger": "cron", "timezone": "Europe/Berlin",
                       "fields": {"day": "last fri", "hour": "9-17"},
                       "start_date": null, "end_date": null, "jitter": null}),
            ),
        ];
        for (body, expected) in cases {
            let state: Value = serde_json::from_str(&job(body).to_state()).unwrap_or_default();
            assert_eq!(state["trigger"], expected);
        }
    }

    /// `next_run_time` as chrono wrote it before: `Z`, three digits, a rounded LMT offset.
    #[test]
    fn states_written_by_chrono_still_read() {
        let state = |next: &str| {
            let mut state: Value =
                serde_json::from_str(&job(json!({"trigger": "interval", "hours": 1})).to_state())
                    .unwrap_or_default();
            state["next_run_time"] = json!(next);
            Job::from_state(&state.to_string()).map(|job| job.next_run_time)
        };
        for text in [
            "2030-01-02T03:04:05Z",
            "2030-01-02T03:04:05.250+08:00",
            "1890-01-01T12:00:00.000250+08:06",
        ] {
            let expected = DateTime::parse_from_rfc3339(text).ok();
            assert_eq!(state(text), Ok(expected), "{text}");
        }
        let mut missing: Value = serde_json::from_str(
            &job(json!({"trigger": "date", "run_date": "2030-01-01"})).to_state(),
        )
        .unwrap_or_default();
        if let Some(map) = missing.as_object_mut() {
            map.remove("next_run_time");
        }
        assert_eq!(
            Job::from_state(&missing.to_string()).map(|job| job.next_run_time),
            Ok(None)
        );
        // Only a hand-edited store holds these: at the ends of chrono's range, they are
        // refused rather than fed to the triggers.
        for text in [
            "+262143-12-31T23:59:59.999999+00:00:00",
            "-0001-01-01T00:00:00+00:00:00",
            "+10000-01-01T00:00:00+00:00:00",
        ] {
            assert!(state(text).is_err(), "{text}");
        }
        for text in [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999-12:00",
        ] {
            assert!(state(text).is_ok_and(|time| time.is_some()), "{text}");
        }
    }
}
