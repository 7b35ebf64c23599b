//! Replays the conformance fixtures (tests/fixtures/conformance, or `$TICKD_SHARED_DIR`'s):
//! 300 trigger cases whose fire times the real APScheduler 3.11.3 computed through
//! Flask-APScheduler 1.13.1 (see that folder's README).
//! tickd must produce `expected_fixed` (APScheduler's answers with tickd's one DST fix), as
//! instants and as `isoformat()` text, and refuse the invalid cases with the reference's text.
//!
//! All failures are collected and reported together, so one run shows everything.

use crate::common;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use tickd::trigger::{Trigger, isoformat};

/// The `now` the fixtures were computed with when a case gives neither `start_date` nor
/// `run_date` (one cron case, `year='2035,2041', month='oct-dec'`): any instant before
/// 2035-10-01 reproduces it, and the generator ran well before its 2035–2038 start years.
fn fallback_now() -> DateTime<Utc> {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

/// Whether a date string is in CONTRACT §2.8's ISO family (an independent check of the one in
/// the trigger module): `YYYY-MM-DD`, or with `[ T]HH:MM[:SS[.f{1,6}]]` and then optionally
/// `Z`, `±HH:MM` or `±HHMM`.
fn is_iso_family(text: &str) -> bool {
    let mut patterns = vec!["dddd-dd-dd".to_owned()];
    for sep in [" ", "T"] {
        for secs in [
            "",
            ":dd",
            ":dd.d",
            ":dd.dd",
            ":dd.ddd",
            ":dd.dddd",
            ":dd.ddddd",
            ":dd.dddddd",
        ] {
            for tz in ["", "Z", "+dd:dd", "-dd:dd", "+dddd", "-dddd"] {
                patterns.push(format!("dddd-dd-dd{sep}dd:dd{secs}{tz}"));
            }
        }
    }
    patterns.iter().any(|p| {
        p.len() == text.len()
            && p.bytes().zip(text.bytes()).all(|(pc, tc)| {
                if pc == b'd' {
                    tc.is_ascii_digit()
                } else {
                    pc == tc
                }
            })
    })
}

/// The first (up to) five fire times, as the fixtures chain them: the first from
/// `now = start`, each next one from `previous` with `now = previous + 1 µs`.
fn fire_times(trigger: &Trigger, start: DateTime<Utc>) -> Vec<DateTime<FixedOffset>> {
    let mut out = Vec::new();
    let mut previous = None;
    let mut now = start;
    while out.len() < 5 {
        let Some(next) = trigger.next_fire_time(previous, now) else {
            break;
        };
        out.push(next);
        previous = Some(next);
        now = next.to_utc() + Duration::microseconds(1);
    }
    out
}

/// Checks one case; `Err` holds a readable diff.
fn check(case: &Value) -> Result<(), String> {
    let kind = case["trigger"].as_str().unwrap();
    let args: Map<String, Value> = case["fields"].as_object().unwrap().clone();
    let tags: Vec<&str> = case["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let built = Trigger::from_args(kind, &args, Tz::UTC, fallback_now());

    let date_strings: Vec<&str> = ["start_date", "end_date", "run_date"]
        .iter()
        .filter_map(|k| args.get(*k).and_then(Value::as_str))
        .collect();
    if tags.contains(&"dateutil-only-format") && !date_strings.iter().all(|s| is_iso_family(s)) {
        // CONTRACT §2.8: refused, naming the accepted forms and quoting the string.
        let bad = date_strings.iter().find(|s| !is_iso_family(s)).unwrap();
        return match built {
            Err(e)
                if e.0
                    .starts_with(&format!("Invalid date string '{bad}': expected YYYY-MM-DD"))
                    && e.0.contains("±HH:MM or ±HHMM") =>
            {
                Ok(())
            }
            Err(e) => Err(format!("refused with the wrong message: {e}")),
            Ok(t) => Err(format!(
                "accepted a dateutil-only string {bad:?}: {:?}",
                t.fields()
            )),
        };
    }

    if case["expected_error"].as_bool().unwrap() {
        let want = case["error"].as_str().unwrap();
        return match built {
            Err(e) if e.0 == want => Ok(()),
            Err(e) => Err(format!("error text\n    want: {want}\n    got:  {e}")),
            Ok(t) => Err(format!(
                "accepted; want error {want:?}; fields {:?}",
                t.fields()
            )),
        };
    }

    let trigger = built.map_err(|e| format!("refused: {e}"))?;
    let fields = trigger.fields();
    let start = fields
        .get("start_date")
        .or_else(|| fields.get("run_date"))
        .and_then(Value::as_str)
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc())
        .unwrap_or_else(fallback_now);
    let got: Vec<DateTime<FixedOffset>> = fire_times(&trigger, start);
    let want: Vec<&str> = case["expected_fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let got_text: Vec<String> = got.iter().map(isoformat).collect();
    let instants_match = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| *g == DateTime::parse_from_rfc3339(w).unwrap());
    if instants_match && got_text == want {
        Ok(())
    } else {
        Err(format!(
            "fire times (instants {})\n    want: {want:?}\n    got:  {got_text:?}",
            if instants_match {
                "match, text differs"
            } else {
                "differ"
            }
        ))
    }
}

#[test]
fn public_conformance_cases() {
    let data = common::setup::public_cases();
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        if let Err(diff) = check(case) {
            failures.push(format!(
                "{} {} {}\n    {diff}",
                case["id"].as_str().unwrap(),
                case["trigger"],
                case["fields"]
            ));
        }
    }
    let passed = cases.len() - failures.len();
    eprintln!("conformance: {passed}/{} cases pass", cases.len());
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
