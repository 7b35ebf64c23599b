//! Differential test against the real APScheduler 3.11.3. It needs a Python with
//! `apscheduler==3.11.3`, `python-dateutil` and `tzdata==2025.2` (IANA 2025b, the database
//! chrono-tz 0.10.4 carries; another tzdata version shows up as failures confined to the
//! zones whose rules changed), named by `TICKD_APSCHEDULER_PYTHON`; without that variable the
//! test shows as ignored. `bash .ci/run` makes such a Python in `target/ci-venv`; by hand:
//!
//! ```text
//! python3 -m venv /tmp/aps && /tmp/aps/bin/pip install apscheduler==3.11.3 python-dateutil tzdata==2025.2
//! TICKD_APSCHEDULER_PYTHON=/tmp/aps/bin/python cargo test --test trigger differential
//! ```
//!
//! The embedded generator draws random cron, interval and date specs (valid and invalid, in
//! zones with unusual DST: Lord_Howe, Chatham, Troll, Santiago, Gaza, Dublin, ...), lets
//! APScheduler compute the first five fire times with the conformance README's carry fix
//! patched into `_increment_field_value`, and tickd must give the same texts. Optional:
//! `TICKD_DIFF_SEED` (default 1) and `TICKD_DIFF_CASES` (default 400).

use crate::common;

use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use tickd::trigger::{Trigger, isoformat};

const GENERATOR: &str = r#####"
import json, random, sys, zoneinfo
zoneinfo.reset_tzpath([])  # the tzdata package, not the system's files
from datetime import datetime, timedelta, timezone
from dateutil import parser as du
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_utc_add
UTC = timezone.utc

def fixed_increment(self, dateval, fieldnum):
    # APScheduler's _increment_field_value, plus the carry fix of conformance/README.md.
    values = {}
    i = 0
    while i < len(self.fields):
        field = self.fields[i]
        if not field.REAL:
            if i == fieldnum: fieldnum -= 1; i -= 1
            else: i += 1
            continue
        if i < fieldnum: values[field.name] = field.get_value(dateval); i += 1
        elif i > fieldnum: values[field.name] = field.get_min(dateval); i += 1
        else:
            value = field.get_value(dateval)
            if value == field.get_max(dateval): fieldnum -= 1; i -= 1
            else: values[field.name] = value + 1; i += 1
    new = datetime_utc_add(dateval, datetime(**values) - dateval.replace(tzinfo=None))
    if fieldnum >= 0:
        wall = datetime(**values, tzinfo=self.timezone, fold=0)
        if dateval.astimezone(UTC) < wall.astimezone(UTC) < new.astimezone(UTC):
            return wall, fieldnum
    return new, fieldnum
CronTrigger._increment_field_value = fixed_increment

seed, count, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(seed)
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
         "America/Sao_Paulo", "Asia/Kolkata", "America/St_Johns", "Australia/Sydney", "Europe/London",
         "Africa/Casablanca", "Asia/Tehran", "America/Santiago", "Antarctica/Troll", "Pacific/Apia",
         "America/Havana", "Asia/Gaza", "Europe/Dublin", "America/Nuuk", "Asia/Kathmandu"]
WD = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MO = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
RANGES = {"year": (2024, 2060), "month": (1, 12), "day": (1, 31), "week": (1, 53),
          "day_of_week": (0, 6), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}
BAD = ["?", "L", "*/", "1-2-3", "", "*-5", "-1", "x", "5.0", "*/0", "1st funday", "6th fri",
       "monday", "jan-foo", "2nd 3", "sun-mon", "0-0/5", "lastx", "mon-fri/2", "jan/2", "61", "0-99"]

def word(w): return rnd.choice([w, w.upper(), w.capitalize()])

def item(field, invalid):
    lo, hi = RANGES[field]
    if invalid and rnd.random() < 0.3: return rnd.choice(BAD)
    r = rnd.random()
    a, b = sorted(rnd.randint(lo, hi) for _ in range(2))
    if r < 0.12: return "*"
    if r < 0.25: return f"*/{rnd.randint(1, max(1, min(hi - lo, 12)))}"
    if r < 0.40: return str(a)
    if r < 0.55: return f"{a}-{b}"
    if r < 0.65 and b > a: return f"{a}-{b}/{rnd.randint(1, b - a)}"
    if r < 0.72 and hi > a: return f"{a}/{rnd.randint(1, hi - a)}"
    if field == "month" and r < 0.85:
        x, y = sorted(rnd.sample(range(12), 2))
        return word(MO[x]) + (f"-{word(MO[y])}" if rnd.random() < 0.5 else "")
    if field == "day_of_week" and r < 0.85:
        x, y = sorted(rnd.sample(range(7), 2))
        return word(WD[x]) + (f"-{word(WD[y])}" if rnd.random() < 0.5 else "")
    if field == "day" and r < 0.90:
        return rnd.choice(["last", f"last {rnd.choice(WD)}",
                           f"{rnd.choice(['1st', '2nd', '3rd', '4th', '5th'])} {rnd.choice(WD)}"])
    return str(a)

def field_value(field, invalid):
    text = rnd.choice([",", ", ", " ,"]).join(item(field, invalid) for _ in range(rnd.choice([1, 1, 1, 2, 3])))
    return int(text) if rnd.random() < 0.2 and text.isdigit() else text

def date_string(dt):
    fmt = rnd.choice(["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"])
    s = dt.strftime(fmt)
    if "%S" in fmt and rnd.random() < 0.2:
        s += "." + str(rnd.randint(0, 999999)).zfill(6)[: rnd.randint(1, 6)]
    if fmt != "%Y-%m-%d" and rnd.random() < 0.15:
        s += rnd.choice(["Z", "+05:30", "-08:00", "+0100", "-0330", "+00:00"])
    return s

TRANSITIONS = {}
def transitions(tz, year):
    if (tz, year) not in TRANSITIONS:
        z, found = zoneinfo.ZoneInfo(tz), []
        t = datetime(year, 1, 1, tzinfo=UTC)
        prev = t.astimezone(z).utcoffset()
        for _ in range(370):
            t += timedelta(days=1)
            off = t.astimezone(z).utcoffset()
            if off != prev: found.append(t.astimezone(z).replace(tzinfo=None)); prev = off
        TRANSITIONS[(tz, year)] = found
    return TRANSITIONS[(tz, year)]

def random_wall(tz):
    year = rnd.randint(2024, 2045)
    near = transitions(tz, year) if rnd.random() < 0.5 else []
    if near:
        return rnd.choice(near) + timedelta(seconds=rnd.randint(-2 * 86400, 86400))
    return datetime(year, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
                    rnd.randint(0, 59), rnd.choice([0, 0, rnd.randint(0, 59)]))

def fire_times(trigger, start):
    out, prev, now = [], None, start
    while len(out) < 5:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None: break
        out.append(nxt.isoformat()); prev = nxt; now = nxt.astimezone(UTC) + timedelta(microseconds=1)
    return out

cases = []
for n in range(count):
    kind = rnd.choice(["cron"] * 6 + ["interval", "date"])
    tz = rnd.choice(ZONES)
    fields, invalid = {}, rnd.random() < 0.15
    if kind == "cron":
        for f in RANGES:
            if rnd.random() < 0.35: fields[f] = field_value(f, invalid)
        if rnd.random() < 0.8: fields["start_date"] = date_string(random_wall(tz))
        if rnd.random() < 0.15: fields["end_date"] = date_string(random_wall(tz) + timedelta(days=rnd.randint(0, 400)))
    elif kind == "interval":
        for u, hi in {"weeks": 3, "days": 10, "hours": 30, "minutes": 200, "seconds": 5000}.items():
            if rnd.random() < 0.35:
                v = rnd.randint(0, hi)
                fields[u] = v if rnd.random() < 0.7 else round(v + rnd.random(), rnd.randint(1, 6))
        fields["start_date"] = date_string(random_wall(tz))
        if rnd.random() < 0.2: fields["end_date"] = date_string(random_wall(tz) + timedelta(days=rnd.randint(0, 30)))
    else:
        fields["run_date"] = date_string(random_wall(tz))
    if tz != "UTC" or rnd.random() < 0.5: fields["timezone"] = tz
    case = {"id": f"diff-{seed}-{n:04d}", "trigger": kind, "fields": fields}
    try:
        args = {k: (du.parse(v) if k.endswith("_date") and isinstance(v, str) else v) for k, v in fields.items()}
        args.setdefault("timezone", "UTC")
        trigger = {"cron": CronTrigger, "interval": IntervalTrigger, "date": DateTrigger}[kind](**args)
        start = trigger.run_date if kind == "date" else (trigger.start_date or datetime(2030, 1, 1, tzinfo=UTC))
        case["expected"] = fire_times(trigger, start)
    except Exception as e:
        case["error"] = str(e)
    cases.append(case)
json.dump(cases, open(out, "w"))
"#####;

/// The fixed `now` for cron specs without a `start_date` (the generator uses the same).
fn fallback_now() -> DateTime<Utc> {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

fn check(case: &Value) -> Result<(), String> {
    let kind = case["trigger"].as_str().unwrap();
    let args = case["fields"].as_object().unwrap();
    let built = Trigger::from_args(kind, args, Tz::UTC, fallback_now());
    if let Some(want) = case.get("error").and_then(Value::as_str) {
        return match built {
            Err(e) if e.0 == want => Ok(()),
            Err(e) => Err(format!("want error {want:?}, got {:?}", e.0)),
            Ok(_) => Err(format!("want error {want:?}, accepted")),
        };
    }
    let trigger = built.map_err(|e| format!("refused: {e}"))?;
    let fields = trigger.fields();
    let start = ["start_date", "run_date"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_str))
        .map_or_else(fallback_now, |s| {
            DateTime::parse_from_rfc3339(s).unwrap().to_utc()
        });
    let mut got = Vec::new();
    let (mut previous, mut now) = (None, start);
    while got.len() < 5 {
        let Some(next) = trigger.next_fire_time(previous, now) else {
            break;
        };
        got.push(isoformat(&next));
        previous = Some(next);
        now = next.to_utc() + Duration::microseconds(1);
    }
    let want: Vec<&str> = case["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    if got == want {
        Ok(())
    } else {
        Err(format!("\n    want {want:?}\n    got  {got:?}"))
    }
}

#[test]
#[cfg_attr(
    not(tickd_apscheduler),
    ignore = "needs a Python with apscheduler==3.11.3: set TICKD_APSCHEDULER_PYTHON"
)]
fn same_fire_times_as_apscheduler() {
    let python = common::setup::required("TICKD_APSCHEDULER_PYTHON");
    let seed = std::env::var("TICKD_DIFF_SEED").unwrap_or_else(|_| "1".into());
    let count = std::env::var("TICKD_DIFF_CASES").unwrap_or_else(|_| "400".into());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("generate.py");
    let out = dir.path().join("cases.json");
    std::fs::write(&script, GENERATOR).unwrap();
    let status = Command::new(python)
        .arg(&script)
        .args([&seed, &count])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "the generator failed");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(!cases.is_empty(), "the generator wrote no cases");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check(case).err().map(|diff| {
                format!(
                    "{} {} {}: {diff}",
                    case["id"], case["trigger"], case["fields"]
                )
            })
        })
        .collect();
    eprintln!(
        "differential: {}/{} cases agree (seed {seed})",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreement(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
