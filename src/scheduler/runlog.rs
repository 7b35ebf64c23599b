//! A run's log lines, in APScheduler's words where it has them: one per line of its output,
//! one when it ends, and the misfire line (the line at its start is the runner's). Each
//! carries the job id, and a run's lines its run id, as fields: grepping for either finds
//! all of a run.
//!
//! A script's output is the one part of the log a job's author writes. Each of its lines is
//! a log line of its own, with control characters shown escaped (`\r`, `\u{1b}`), so no
//! output can continue a log line on a new one or start a forged one; and what one run puts
//! in the log is bounded (its last [`MAX_LOGGED_LINES`] lines per stream, each cut at
//! [`MAX_LINE_BYTES`]), as the run record keeps the captured output (its last
//! `[executor] output_limit` bytes).

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

use crate::job::{FireCount, RunRecord, RunStatus};
use crate::telemetry::{MAX_MESSAGE_BYTES, logged, logged_within};

/// Lines of one stream of one run logged at most: the last ones.
pub(super) const MAX_LOGGED_LINES: usize = 100;

/// Bytes of one output line (or a reason, or an error) logged at most.
pub(super) const MAX_LINE_BYTES: usize = MAX_MESSAGE_BYTES;

/// Logs a run's captured `text` of `stream` (`stdout`, `stderr`) a line at a time.
pub(super) fn log_output(job_id: &str, run_id: &str, stream: &str, text: &str) {
    let job_id = logged(job_id);
    for line in output_lines(stream, text) {
        tracing::info!(%job_id, %run_id, "{line}");
    }
}

/// The log lines for a stream's captured text: `<stream>: <line>` each, escaped and
/// bounded, after a line saying how many earlier lines are left out, if any.
pub(super) fn output_lines(stream: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(MAX_LOGGED_LINES);
    let mut logged = Vec::with_capacity(lines.len() - skip + 1);
    if skip > 0 {
        logged.push(format!(
            "{stream}: [{skip} earlier line(s) left out of the log; the run record has them]"
        ));
    }
    for line in &lines[skip..] {
        logged.push(format!("{stream}: {}", one_line(line)));
    }
    logged
}

/// `text` fit for one log line: cut at [`MAX_LINE_BYTES`] (on a character boundary, saying
/// how much was cut), control characters other than tab and the line and paragraph
/// separators shown escaped ([`logged_within`]).
pub(super) fn one_line(text: &str) -> Cow<'_, str> {
    logged_within(text, MAX_LINE_BYTES)
}

/// The one line at a run's end: APScheduler's `Job "..." executed successfully`, or what
/// became of the run and why, with its duration; the run id, status, exit code and duration
/// as fields.
pub(super) fn log_end(label: &str, run: &RunRecord, took: TimeDelta) {
    let (job_id, run_id) = (logged(&run.job_id), run.id.as_str());
    let status = run.status.as_str();
    let exit_code = run
        .exit_code
        .map_or_else(|| "none".to_owned(), |code| code.to_string());
    let duration_ms = took.num_milliseconds();
    let seconds = duration_ms as f64 / 1000.0;
    let reason = run.reason.as_deref().map(one_line).unwrap_or_default();
    match run.status {
        RunStatus::Succeeded => tracing::info!(
            %job_id,
            %run_id,
            %status,
            %exit_code,
            duration_ms,
            "Job \"{label}\" executed successfully in {seconds:.3} s"
        ),
        RunStatus::Cancelled | RunStatus::Interrupted => tracing::warn!(
            %job_id,
            %run_id,
            %status,
            %exit_code,
            duration_ms,
            "Job \"{label}\" was {status} after {seconds:.3} s: {reason}"
        ),
        _ => tracing::error!(
            %job_id,
            %run_id,
            %status,
            %exit_code,
            duration_ms,
            "Job \"{label}\" {} after {seconds:.3} s: {reason}",
            if run.status == RunStatus::TimedOut {
                "timed out"
            } else {
                "failed"
            }
        ),
    }
}

/// The fire times of one job that a due-jobs pass found missed: coalesced into a later one,
/// later than `misfire_grace_time`, or left unvisited because the job was far behind.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Misfire {
    /// The earliest of them: the job's `next_run_time` when the pass found it due.
    pub first: DateTime<FixedOffset>,
    /// The latest of them.
    pub last: DateTime<FixedOffset>,
    /// How many: exact, or, for a far-behind cron job, a lower bound.
    pub count: FireCount,
}

/// APScheduler's `Run time of job "..." was missed by <lateness>`, with the real lateness:
/// that of the earliest fire time missed, and, when several were, how many and which.
pub(super) fn missed_line(label: &str, now: DateTime<Utc>, misfire: &Misfire) -> String {
    let late = python_timedelta(now - misfire.first.to_utc());
    let mut line = format!("Run time of job \"{label}\" was missed by {late}");
    if misfire.count != FireCount::Exact(1) {
        let _ = write!(
            line,
            " ({} fire times from {} to {})",
            misfire.count, misfire.first, misfire.last
        );
    }
    line
}

/// A duration as Python prints a `timedelta`: `0:00:02.500000`, `3 days, 4:05:06`.
pub(crate) fn python_timedelta(delta: TimeDelta) -> String {
    let micros = delta.num_microseconds().unwrap_or(i64::MAX);
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    let clock = if frac > 0 {
        format!("{clock}.{frac:06}")
    } else {
        clock
    };
    match days {
        0 => format!("{sign}{clock}"),
        1 => format!("{sign}1 day, {clock}"),
        n => format!("{sign}{n} days, {clock}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeDelta, TimeZone, Utc};

    use super::*;

    #[test]
    fn timedelta_reads_like_python() {
        assert_eq!(
            python_timedelta(TimeDelta::milliseconds(2500)),
            "0:00:02.500000"
        );
        assert_eq!(
            python_timedelta(TimeDelta::seconds(3 * 86_400 + 3723)),
            "3 days, 1:02:03"
        );
        assert_eq!(
            python_timedelta(TimeDelta::seconds(86_400)),
            "1 day, 0:00:00"
        );
    }

    #[test]
    fn each_output_line_is_a_log_line_and_none_can_forge_another() {
        let text = "one\r\ntwo\rFAKE  INFO forged\n\u{1b}[31mred\u{1b}[0m\ttab\n\n";
        assert_eq!(
            output_lines("stdout", text),
            vec![
                "stdout: one",
                "stdout: two\\rFAKE  INFO forged",
                "stdout: \\u{1b}[31mred\\u{1b}[0m\ttab",
                "stdout: ",
            ]
        );
        assert_eq!(one_line("a\u{2028}b\u{85}c"), "a\\u{2028}b\\u{85}c");
        assert!(output_lines("stderr", "").is_empty());
    }

    #[test]
    fn what_a_run_puts_in_the_log_is_bounded() {
        let text: String = (0..250).map(|n| format!("line {n}\n")).collect();
        let lines = output_lines("stdout", &text);
        assert_eq!(lines.len(), MAX_LOGGED_LINES + 1);
        assert_eq!(
            lines[0],
            "stdout: [150 earlier line(s) left out of the log; the run record has them]"
        );
        assert_eq!(
            lines[1], "stdout: line 150",
            "the last lines, as the record's tail"
        );
        assert_eq!(lines[MAX_LOGGED_LINES], "stdout: line 249");

        let long = format!("{}é{}", "x".repeat(MAX_LINE_BYTES - 1), "y".repeat(5000));
        let cut = one_line(&long);
        assert!(cut.starts_with(&"x".repeat(MAX_LINE_BYTES - 1)));
        assert!(
            cut.ends_with("… [5002 more bytes]"),
            "cut before the é: {cut}"
        );
    }

    #[test]
    fn the_misfire_line_gives_the_lateness_of_the_earliest_fire_time() {
        let at = |s| Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(s);
        let now = at(190) + TimeDelta::milliseconds(150);
        let misfire = |first, last, count| Misfire {
            first: at(first).fixed_offset(),
            last: at(last).fixed_offset(),
            count: FireCount::Exact(count),
        };
        assert_eq!(
            missed_line("every10 (trigger: interval)", now, &misfire(10, 180, 18)),
            "Run time of job \"every10 (trigger: interval)\" was missed by 0:03:00.150000 \
             (18 fire times from 2031-05-01 12:00:10 +00:00 to 2031-05-01 12:03:00 +00:00)"
        );
        assert_eq!(
            missed_line("j", now, &misfire(180, 180, 1)),
            "Run time of job \"j\" was missed by 0:00:10.150000",
            "a single fire time reads as APScheduler's line"
        );
    }
}
