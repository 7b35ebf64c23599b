//! Python's model of an aware `datetime` in a `zoneinfo` zone: a wall-clock time plus `fold`.
//!
//! APScheduler 3.11 computes cron fire times on wall clocks and builds some of them directly
//! (`datetime(..., tzinfo=zone, fold=...)`) without normalising, so a wall time inside a
//! spring-forward gap survives and is shown with the offset `zoneinfo` gives it. To reproduce
//! that, the search works on [`Wall`] values and asks this module for the offset `zoneinfo`
//! would use (PEP 495):
//!
//! - an ordinary time has one offset;
//! - a repeated (fall-back) time: `fold = 0` is the first pass, `fold = 1` the second;
//! - a skipped (spring-forward) time: `fold = 0` takes the offset *before* the transition,
//!   `fold = 1` the one after.
//!
//! chrono-tz lists transitions up to 2099 and then keeps the last offset, whereas `zoneinfo`
//! goes on with the zone's current rule (the POSIX string of the TZif file). Every such rule
//! is a calendar rule ("last Sunday of March"), so a later year is looked up as the year of
//! 2070–2097 with the same calendar (weekday of 1 January, leap or not): see [`proxy`].

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset,
    TimeZone, Utc,
};
use chrono_tz::{GapInfo, Tz};

/// A wall-clock time in the trigger's zone with Python's `fold` bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wall {
    pub naive: NaiveDateTime,
    pub fold: bool,
}

impl Wall {
    pub(crate) fn new(naive: NaiveDateTime, fold: bool) -> Self {
        Wall { naive, fold }
    }
}

/// The offset, in seconds, `zoneinfo` gives `naive` with this `fold` (the rules above).
pub(crate) fn utcoffset(tz: Tz, naive: NaiveDateTime, fold: bool) -> i32 {
    let naive = proxy(naive);
    match tz.offset_from_local_datetime(&naive) {
        LocalResult::Single(offset) => offset.fix().local_minus_utc(),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.fix().local_minus_utc(), b.fix().local_minus_utc());
            // The first pass is the larger offset (an earlier instant).
            if fold { a.min(b) } else { a.max(b) }
        }
        LocalResult::None => gap_offset(tz, naive, fold),
    }
}

/// The offset on one side of the gap that swallows `naive`.
fn gap_offset(tz: Tz, naive: NaiveDateTime, fold: bool) -> i32 {
    let info = GapInfo::new(&naive, &tz);
    let side = info.and_then(|gap| {
        if fold {
            gap.end.map(|end| end.offset().fix().local_minus_utc())
        } else {
            gap.begin.map(|(_, offset)| offset.fix().local_minus_utc())
        }
    });
    side.unwrap_or_else(|| {
        // Only at the edge of the known transitions; probe the wall clock around the gap.
        let step = if fold {
            Duration::minutes(30)
        } else {
            Duration::minutes(-30)
        };
        let mut probe = naive;
        for _ in 0..100 {
            probe += step;
            match tz.offset_from_local_datetime(&probe) {
                LocalResult::Single(o) => return o.fix().local_minus_utc(),
                LocalResult::Ambiguous(a, b) => {
                    let (a, b) = (a.fix().local_minus_utc(), b.fix().local_minus_utc());
                    return if fold { a.max(b) } else { a.min(b) };
                }
                LocalResult::None => {}
            }
        }
        0
    })
}

/// The instant a wall time stands for (Python's `dt.astimezone(UTC)`).
pub(crate) fn instant(tz: Tz, wall: Wall) -> DateTime<Utc> {
    let offset = utcoffset(tz, wall.naive, wall.fold);
    (wall.naive - Duration::seconds(i64::from(offset))).and_utc()
}

/// The wall time of an instant (Python's `astimezone(zone)`, which sets `fold` on the second
/// pass of a repeated hour).
pub(crate) fn wall_at(tz: Tz, instant: DateTime<Utc>) -> Wall {
    let offset = offset_at(tz, instant);
    let naive = instant.naive_utc() + Duration::seconds(i64::from(offset.local_minus_utc()));
    let fold = match tz.offset_from_local_datetime(&proxy(naive)) {
        LocalResult::Ambiguous(a, b) => {
            let own = offset.local_minus_utc();
            let smaller = a.fix().local_minus_utc().min(b.fix().local_minus_utc());
            own == smaller
        }
        _ => false,
    };
    Wall { naive, fold }
}

/// The wall time with the offset `zoneinfo` shows for it (a gap time keeps its pre-transition
/// offset with `fold = 0`).
pub(crate) fn fixed(tz: Tz, wall: Wall) -> DateTime<FixedOffset> {
    let offset = utcoffset(tz, wall.naive, wall.fold);
    to_fixed(wall.naive, offset)
}

/// `naive` read at `offset` seconds east of UTC.
pub(crate) fn to_fixed(naive: NaiveDateTime, offset: i32) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(offset).unwrap_or_else(|| Utc.fix());
    let utc = naive - Duration::seconds(i64::from(offset.local_minus_utc()));
    DateTime::from_naive_utc_and_offset(utc, offset)
}

/// APScheduler's `localize` for `zoneinfo`: `normalize(naive.replace(tzinfo=zone))`, i.e. read
/// the wall time with `fold = 0` and convert the instant back. A non-existent time moves
/// forward by the gap (`02:30` → `03:30+02:00`); a repeated one takes its first pass.
pub(crate) fn localize(tz: Tz, naive: NaiveDateTime) -> DateTime<FixedOffset> {
    let at = instant(tz, Wall::new(naive, false));
    in_zone(at, tz)
}

/// Expresses a UTC instant in `tz` with the offset in force there.
pub(crate) fn in_zone(time: DateTime<Utc>, tz: Tz) -> DateTime<FixedOffset> {
    time.with_timezone(&offset_at(tz, time))
}

/// How a wall time reads in `tz` (chrono-tz's answer, years past its tables included):
/// once, twice (a fall-back hour) or never (a spring-forward gap).
pub(crate) fn local_result(tz: Tz, naive: NaiveDateTime) -> LocalResult<FixedOffset> {
    tz.offset_from_local_datetime(&proxy(naive))
        .map(|offset| offset.fix())
}

/// The offset in force at an instant.
pub(crate) fn offset_at(tz: Tz, time: DateTime<Utc>) -> FixedOffset {
    tz.offset_from_utc_datetime(&proxy(time.naive_utc())).fix()
}

/// The last year chrono-tz's transition tables cover.
const TABLE_END: i32 = 2099;

/// `t` moved into the year of 2070–2097 with the same calendar when it lies past the tables
/// (the 28 years hold every pairing of a 1 January weekday with leap or common year).
fn proxy(t: NaiveDateTime) -> NaiveDateTime {
    let year = t.year();
    if year <= TABLE_END {
        return t;
    }
    let calendar = |y: i32| {
        let leap = NaiveDate::from_ymd_opt(y, 2, 29).is_some();
        (NaiveDate::from_ymd_opt(y, 1, 1).map(|d| d.weekday()), leap)
    };
    let wanted = calendar(year);
    (2070..2098)
        .find(|y| calendar(*y) == wanted)
        .and_then(|y| t.with_year(y))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_opt(h, mi, 0))
            .unwrap()
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    /// Berlin's offsets for a wall time with `fold` false, then true.
    fn berlin_offsets(wall: NaiveDateTime) -> [i32; 2] {
        [false, true].map(|fold| utcoffset(BERLIN, wall, fold))
    }

    #[test]
    fn gap_time_takes_the_offset_named_by_fold() {
        let gap = naive(2024, 3, 31, 2, 30);
        assert_eq!(berlin_offsets(gap), [3600, 7200]);
        assert_eq!(
            fixed(BERLIN, Wall::new(gap, false)).to_rfc3339(),
            "2024-03-31T02:30:00+01:00"
        );
    }

    #[test]
    fn repeated_time_takes_the_pass_named_by_fold() {
        let repeated = naive(2024, 10, 27, 2, 30);
        assert_eq!(berlin_offsets(repeated), [7200, 3600]);
        for fold in [true, false] {
            let wall = Wall::new(repeated, fold);
            assert_eq!(wall_at(BERLIN, instant(BERLIN, wall)), wall, "fold {fold}");
        }
    }

    #[test]
    fn years_past_the_tables_follow_the_zones_rule() {
        assert_eq!(utcoffset(BERLIN, naive(2350, 7, 1, 0, 0), false), 7200);
        assert_eq!(utcoffset(BERLIN, naive(2350, 1, 1, 0, 0), false), 3600);
        // The last Sunday of March 2150 is the 29th: 02:30 is in the gap.
        assert_eq!(berlin_offsets(naive(2150, 3, 29, 2, 30)), [3600, 7200]);
        let sydney = chrono_tz::Australia::Sydney;
        let july = instant(sydney, Wall::new(naive(2104, 7, 1, 12, 0), false));
        assert_eq!(in_zone(july, sydney).offset().local_minus_utc(), 36000);
        let january = instant(sydney, Wall::new(naive(2104, 1, 1, 12, 0), false));
        assert_eq!(in_zone(january, sydney).offset().local_minus_utc(), 39600);
    }

    #[test]
    fn localize_moves_gap_times_forward_and_takes_the_first_pass() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            localize(ny, naive(2038, 3, 14, 2, 30)).to_rfc3339(),
            "2038-03-14T03:30:00-04:00"
        );
        assert_eq!(
            localize(ny, naive(2038, 11, 7, 1, 30)).to_rfc3339(),
            "2038-11-07T01:30:00-04:00"
        );
    }
}
