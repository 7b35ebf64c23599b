//! The cron search: APScheduler 3.11's `CronTrigger.get_next_fire_time`, step for step, with
//! tickd's one deliberate fix (CONTRACT §3, `conformance/README.md` "The fix, precisely").
//!
//! The search walks the fields from `year` to `second`. A field whose next allowed value is
//! higher than its current one is *set* (a wall time built directly, not normalised: a gap
//! time survives with its pre-transition offset); a field with no allowed value left makes the
//! next coarser field *increment* (carry). APScheduler's carry adds the wall-clock difference
//! to the instant, which lands one DST shift late after a spring-forward and skips whole
//! occurrences; tickd lands on the target wall time instead whenever that lies strictly
//! between the current instant and APScheduler's landing.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde_json::Value;

use super::CronTrigger;
use super::field::FieldKind;
use crate::trigger::timedelta::TimeDelta;
use crate::trigger::zone::{self, Wall};

/// A bound on loop iterations that no real search approaches (the longest, an impossible
/// spec exhausting the years to 9999, takes tens of thousands); reaching it means a bug, and
/// the trigger then reports no further fire time rather than spinning.
const MAX_STEPS: u32 = 5_000_000;

impl CronTrigger {
    /// APScheduler's `get_next_fire_time(previous_fire_time, now)` with the carry fix.
    pub(crate) fn next_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<FixedOffset>> {
        let tz = self.timezone;
        let start = match previous {
            Some(previous) => {
                let previous = previous.to_utc();
                let candidate = now.min(previous + Duration::microseconds(1));
                // Python compares the two in the same zone by wall clock.
                if zone::wall_at(tz, candidate).naive == zone::wall_at(tz, previous).naive {
                    candidate + Duration::microseconds(1)
                } else {
                    candidate
                }
            }
            None => match &self.start_date {
                Some(start) => now.max(start.time.to_utc()),
                None => now,
            },
        };
        let d = self.search(zone::wall_at(tz, ceil_to_second(start)))?;
        let d = match self.jitter {
            Some(jitter) if jitter != 0.0 => add_jitter(d, jitter),
            _ => d,
        };
        match &self.end_date {
            // `min(next_date, end_date)`, with Python's comparison rules.
            Some(end) if end.is_before(tz, d) => Some(end.time),
            _ => Some(zone::fixed(tz, d)),
        }
    }

    /// The field loop from a whole-second starting wall time; `None` when the years run out
    /// or the end date is passed.
    fn search(&self, mut d: Wall) -> Option<Wall> {
        let tz = self.timezone;
        let mut fieldnum: i32 = 0;
        let mut steps = 0;
        while (0..8).contains(&fieldnum) {
            steps += 1;
            if steps > MAX_STEPS {
                return None;
            }
            let field = &self.fields[fieldnum as usize];
            let kind = field.kind;
            let current = kind.value(&d.naive);
            match field.next_value(&d.naive) {
                None => (d, fieldnum) = self.increment(d, fieldnum - 1)?,
                Some(next) if next > current => {
                    if kind.is_real() {
                        d = set_field(d, fieldnum as usize, next);
                        fieldnum += 1;
                    } else {
                        (d, fieldnum) = self.increment(d, fieldnum)?;
                    }
                }
                Some(_) => fieldnum += 1,
            }
            if let Some(end) = &self.end_date {
                if end.is_before(tz, d) {
                    return None;
                }
            }
        }
        Some(d)
    }

    /// `_increment_field_value`: add one to field `fieldnum` (a virtual field means `day`;
    /// a field at its maximum carries into the next coarser real field), reset the finer real
    /// fields to their minimum, and move there. Returns the field actually incremented, or
    /// `None` when the carry runs out past `year`.
    fn increment(&self, d: Wall, fieldnum: i32) -> Option<(Wall, i32)> {
        let mut fieldnum = fieldnum;
        let mut values = [0u32; 8];
        let mut i: i32 = 0;
        while i < 8 {
            if i < 0 || fieldnum < 0 {
                return None;
            }
            let kind = FieldKind::ALL[i as usize];
            if !kind.is_real() {
                if i == fieldnum {
                    fieldnum -= 1;
                    i -= 1;
                } else {
                    i += 1;
                }
                continue;
            }
            if i < fieldnum {
                values[i as usize] = kind.value(&d.naive);
                i += 1;
            } else if i > fieldnum {
                values[i as usize] = kind.min();
                i += 1;
            } else {
                let value = kind.value(&d.naive);
                if value == kind.max_at(&d.naive) {
                    fieldnum -= 1;
                    i -= 1;
                } else {
                    values[i as usize] = value + 1;
                    i += 1;
                }
            }
        }
        if fieldnum < 0 {
            return None;
        }
        let target = wall_from_values(&values)?;
        Some((self.land(d, target), fieldnum))
    }

    /// Where a carry from `d` to the wall time `target` lands. APScheduler: `d` plus the
    /// wall-clock difference, as elapsed time. tickd: the target itself (fold 0, as a set field
    /// is built) when it lies strictly between `d` and APScheduler's landing, so a
    /// spring-forward between them cannot push the search past an occurrence.
    fn land(&self, d: Wall, target: NaiveDateTime) -> Wall {
        let tz = self.timezone;
        let current = zone::instant(tz, d);
        let landing = current + (target - d.naive);
        let new = zone::wall_at(tz, landing);
        if new.naive == target && !new.fold {
            return new;
        }
        let wall = Wall::new(target, false);
        let wall_instant = zone::instant(tz, wall);
        if current < wall_instant && wall_instant < landing {
            wall
        } else {
            new
        }
    }
}

/// `_set_field_value`: coarser real fields kept, this one set, finer real fields at their
/// minimum, built directly in the zone with `d`'s fold (not normalised).
fn set_field(d: Wall, fieldnum: usize, value: u32) -> Wall {
    let mut values = [0u32; 8];
    for (i, kind) in FieldKind::ALL.into_iter().enumerate() {
        if !kind.is_real() {
            continue;
        }
        values[i] = match i.cmp(&fieldnum) {
            std::cmp::Ordering::Less => kind.value(&d.naive),
            std::cmp::Ordering::Equal => value,
            std::cmp::Ordering::Greater => kind.min(),
        };
    }
    match wall_from_values(&values) {
        Some(naive) => Wall::new(naive, d.fold),
        None => d,
    }
}

fn wall_from_values(values: &[u32; 8]) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(values[0] as i32, values[1], values[2])?
        .and_hms_opt(values[5], values[6], values[7])
}

/// `datetime_ceil`: round up to a whole second.
fn ceil_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.nanosecond() / 1000;
    if micros == 0 {
        t
    } else {
        t + Duration::microseconds(1_000_000 - i64::from(micros))
    }
}

/// `next_date + timedelta(seconds=random.uniform(0, jitter))`: a wall-clock addition whose
/// result has `fold = 0`.
fn add_jitter(d: Wall, jitter: f64) -> Wall {
    let seconds = jitter * rand::random::<f64>();
    let value = Value::from(seconds);
    let micros = TimeDelta::from_components(&[("seconds", &value)])
        .map(|delta| delta.micros())
        .unwrap_or(0);
    let micros = i64::try_from(micros).unwrap_or(0);
    match d.naive.checked_add_signed(Duration::microseconds(micros)) {
        Some(naive) => Wall::new(naive, false),
        None => d,
    }
}
