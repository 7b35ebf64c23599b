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

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Timelike, Utc};
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
        self.next_fire_time_with(previous, now, true)
    }

    /// The search; without `skip_empty_years` it crawls through known-empty years as
    /// APScheduler does, which the tests check the shortcut against.
    pub(super) fn next_fire_time_with(
        &self,
        previous: Option<DateTime<FixedOffset>>,
        now: DateTime<Utc>,
        skip_empty_years: bool,
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
        let d = self.search(zone::wall_at(tz, ceil_to_second(start)), skip_empty_years)?;
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

    /// The latest fire time after `from` and at or before `until`, or `from` when there is
    /// none (`from` is a fire time the job already has, at or before `until`).
    ///
    /// A search answers the first fire time at or after a moment, and that answer never
    /// decreases as the moment moves later; so the latest fire time at or before `until` is
    /// the answer for the last moment whose answer is still at or before `until`, found by
    /// bisecting the moments between `from` and `until` to the microsecond: about 50
    /// searches for any span up to year 9999, however many fire times it holds. Jitter is
    /// left out (it is random).
    pub(crate) fn latest_fire_time(
        &self,
        from: DateTime<FixedOffset>,
        until: DateTime<Utc>,
    ) -> DateTime<FixedOffset> {
        let due = |micros: i64| {
            DateTime::from_timestamp_micros(micros)
                .and_then(|moment| self.first_at_or_after(moment))
                .filter(|found| zone::instant(self.timezone, *found) <= until)
        };
        let mut lo = from.timestamp_micros().saturating_add(1);
        let Some(mut found) = due(lo) else {
            return from;
        };
        // `due(lo)` holds; past `until` nothing is due.
        let mut hi = until.timestamp_micros().saturating_add(1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match due(mid) {
                Some(at) => {
                    lo = mid;
                    found = at;
                }
                None => hi = mid,
            }
        }
        zone::fixed(self.timezone, found)
    }

    /// The first fire time at or after `moment` (and the start date), without jitter.
    fn first_at_or_after(&self, moment: DateTime<Utc>) -> Option<Wall> {
        let start = match &self.start_date {
            Some(start) => moment.max(start.time.to_utc()),
            None => moment,
        };
        self.search(zone::wall_at(self.timezone, ceil_to_second(start)), true)
    }

    /// The field loop from a whole-second starting wall time; `None` when the years run out
    /// or the end date is passed.
    ///
    /// One shortcut, invisible in the results: a year scanned from its first second without a
    /// match teaches that its calendar pattern (see [`year_pattern`]) has no match, and later
    /// years with a known-empty pattern are stepped over arithmetically. The outcome is the
    /// one APScheduler's year-by-year crawl reaches, but an impossible spec such as
    /// `month=2, day=30` answers `None` in microseconds instead of crawling to 9999.
    fn search(&self, mut d: Wall, skip_empty_years: bool) -> Option<Wall> {
        let tz = self.timezone;
        let mut fieldnum: i32 = 0;
        let mut steps = 0;
        // The year being scanned from its first second, if any.
        let mut scanning: Option<i32> = None;
        while (0..8).contains(&fieldnum) {
            steps += 1;
            if steps > MAX_STEPS {
                return None;
            }
            let field = &self.fields[fieldnum as usize];
            let kind = field.kind;
            let current = kind.value(&d.naive);
            match field.next_value(&d.naive) {
                None => {
                    (d, fieldnum) = self.increment(d, fieldnum - 1)?;
                    self.note_carry(fieldnum, &mut scanning);
                }
                Some(next) if next > current => {
                    if kind.is_real() {
                        d = set_field(d, fieldnum as usize, next);
                        fieldnum += 1;
                    } else {
                        (d, fieldnum) = self.increment(d, fieldnum)?;
                        self.note_carry(fieldnum, &mut scanning);
                    }
                }
                Some(_) if fieldnum == 0 && is_new_year(&d.naive) => {
                    let year = d.naive.year();
                    if skip_empty_years && self.empty_years.contains(year_pattern(year)) {
                        d = Wall::new(new_year(self.next_candidate_year(year)?)?, false);
                    } else {
                        scanning = Some(year);
                        fieldnum += 1;
                    }
                }
                Some(_) => {
                    if fieldnum == 0 {
                        scanning = None;
                    }
                    fieldnum += 1;
                }
            }
            if let Some(end) = &self.end_date
                && end.is_before(tz, d)
            {
                return None;
            }
        }
        Some(d)
    }

    /// After a carry: one into `year` ends the scan of the current year without a match.
    fn note_carry(&self, fieldnum: i32, scanning: &mut Option<i32>) {
        if fieldnum == 0
            && let Some(year) = scanning.take()
        {
            self.empty_years.insert(year_pattern(year));
        }
    }

    /// The next year after `year` that the `year` field allows and whose pattern is not known
    /// to be empty; `None` past 9999.
    fn next_candidate_year(&self, year: i32) -> Option<i32> {
        if self.empty_years.is_full() {
            return None;
        }
        let mut candidate = year + 1;
        loop {
            let allowed = self.fields[0].next_value(&new_year(candidate)?)? as i32;
            if allowed == candidate && !self.empty_years.contains(year_pattern(candidate)) {
                return Some(candidate);
            }
            candidate = allowed.max(candidate + 1);
        }
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

/// Which calendar a year has: the weekday of its 1 January and whether it and the year
/// before are leap years. That fixes every month length, weekday and ISO week number in the
/// year (early January's ISO weeks depend on the previous year's length), so two years with
/// the same pattern match the same wall times for any cron spec with a `*`-like `year`.
fn year_pattern(year: i32) -> u32 {
    let leap = |y: i32| NaiveDate::from_ymd_opt(y, 2, 29).is_some();
    let weekday =
        NaiveDate::from_ymd_opt(year, 1, 1).map_or(0, |d| d.weekday().num_days_from_monday());
    weekday * 4 + u32::from(leap(year)) * 2 + u32::from(leap(year - 1))
}

fn new_year(year: i32) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(year, 1, 1)?.and_hms_opt(0, 0, 0)
}

fn is_new_year(t: &NaiveDateTime) -> bool {
    t.ordinal() == 1 && t.num_seconds_from_midnight() == 0
}

/// The year patterns known to hold no match of a trigger, learned by its searches. A cache of
/// a pure function of the fields: it does not take part in equality or the persisted state.
#[derive(Default)]
pub(crate) struct EmptyYears(AtomicU32);

impl EmptyYears {
    /// The patterns that occur: 7 weekdays × (leap, previous leap) without (leap, leap).
    const ALL: u32 = {
        let mut bits = 0u32;
        let mut weekday = 0;
        while weekday < 7 {
            bits |= 0b011 << (weekday * 4);
            bits |= 0b100 << (weekday * 4);
            weekday += 1;
        }
        bits
    };

    fn contains(&self, pattern: u32) -> bool {
        self.0.load(Ordering::Relaxed) & (1 << pattern) != 0
    }

    fn insert(&self, pattern: u32) {
        self.0.fetch_or(1 << pattern, Ordering::Relaxed);
    }

    fn is_full(&self) -> bool {
        self.0.load(Ordering::Relaxed) & Self::ALL == Self::ALL
    }
}

impl Clone for EmptyYears {
    fn clone(&self) -> Self {
        EmptyYears(AtomicU32::new(self.0.load(Ordering::Relaxed)))
    }
}

impl PartialEq for EmptyYears {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for EmptyYears {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmptyYears({:#x})", self.0.load(Ordering::Relaxed))
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
