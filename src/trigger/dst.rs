//! Where a DST change touches a fire time: [`dst_mark`], for the schedule preview.
//!
//! A fire time is shown as the job JSON shows it (APScheduler 3.11's offsets, see `zone`), so
//! its own text says which of the two things happened:
//!
//! - **moved**: the wall time the trigger asked for does not exist (a spring-forward gap).
//!   The cron search builds such a time directly and keeps it, with the offset from *before*
//!   the transition (`02:30+01:00` in Berlin on the last Sunday of March); the instant it
//!   names is the same clock reading pushed forward by the gap (03:30+02:00). The fixtures'
//!   DST cases (`conformance/`, tags `dst:spring`) show exactly this form, and nothing else,
//!   for cron times in a gap. Interval and date triggers fire at absolute instants, always
//!   shown with the zone's real offset, so they are never marked moved (a `start_date` given
//!   inside a gap was already moved forward when it was read: `localize`).
//! - **repeated**: the fire time's wall clock occurs twice in its zone (the fall-back hour),
//!   whichever of the two passes it is.
//!
//! A time given with a foreign offset (a `run_date` written `-05:00` in a zone that never
//! uses it) is judged by the zone's own clock at that instant.

use chrono::{DateTime, FixedOffset, LocalResult};
use chrono_tz::Tz;

use super::zone;

/// How a DST transition touches one fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstMark {
    /// The wanted wall time falls in a spring-forward gap; the run happens at the same clock
    /// reading after the clocks jumped (the offset shown is the one before the jump).
    Moved,
    /// The wall time occurs twice (the fall-back hour); the offset says which pass.
    Repeated,
}

impl DstMark {
    /// `moved` or `repeated`.
    pub fn as_str(self) -> &'static str {
        match self {
            DstMark::Moved => "moved",
            DstMark::Repeated => "repeated",
        }
    }
}

/// Whether a DST change moves `time` (a wall time in a gap, shown with the pre-transition
/// offset as APScheduler shows it) or makes its wall time occur twice, in `tz`.
pub fn dst_mark(time: &DateTime<FixedOffset>, tz: Tz) -> Option<DstMark> {
    let own = time.offset().local_minus_utc();
    if let LocalResult::None = zone::local_result(tz, time.naive_local()) {
        // In the gap, and in the form zoneinfo gives a gap time with `fold = 0`.
        if own == zone::utcoffset(tz, time.naive_local(), false) {
            return Some(DstMark::Moved);
        }
    }
    let real = zone::in_zone(time.to_utc(), tz);
    match zone::local_result(tz, real.naive_local()) {
        LocalResult::Ambiguous(..) => Some(DstMark::Repeated),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn marks_gap_times_moved_and_fall_back_times_repeated() {
        let berlin = chrono_tz::Europe::Berlin;
        let ny = chrono_tz::America::New_York;
        let lord_howe = chrono_tz::Australia::Lord_Howe;
        let table: [(&str, Tz, Option<DstMark>); 14] = [
            // Ordinary times, either side of the transitions.
            ("2035-03-25T01:30:00+01:00", berlin, None),
            ("2035-03-25T03:30:00+02:00", berlin, None),
            ("2035-07-01T02:30:00+02:00", berlin, None),
            // The spring-forward gap, as the cron search shows it.
            ("2035-03-25T02:30:00+01:00", berlin, Some(DstMark::Moved)),
            ("2038-03-14T02:30:00-05:00", ny, Some(DstMark::Moved)),
            // Lord Howe's gap is 30 minutes (02:00 → 02:30).
            ("2035-10-07T02:15:00+10:30", lord_howe, Some(DstMark::Moved)),
            ("2035-10-07T02:45:00+11:00", lord_howe, None),
            // Both passes of the fall-back hour.
            ("2035-10-28T02:30:00+02:00", berlin, Some(DstMark::Repeated)),
            ("2035-10-28T02:30:00+01:00", berlin, Some(DstMark::Repeated)),
            ("2038-11-07T01:30:00-04:00", ny, Some(DstMark::Repeated)),
            ("2038-11-07T01:30:00-05:00", ny, Some(DstMark::Repeated)),
            ("2038-11-07T02:00:00-05:00", ny, None),
            // Beyond chrono-tz's tables the zone's rule goes on (last Sunday of March 2150).
            ("2150-03-29T02:30:00+01:00", berlin, Some(DstMark::Moved)),
            // A foreign offset is judged by the zone's own clock: 06:30 UTC is 01:30 EST there.
            ("2038-11-07T06:30:00+00:00", ny, Some(DstMark::Repeated)),
        ];
        for (text, tz, want) in table {
            assert_eq!(dst_mark(&at(text), tz), want, "{text} in {tz}");
        }
        // UTC and zones without DST never mark.
        for text in ["2035-03-25T02:30:00+00:00", "2035-10-28T02:30:00+00:00"] {
            assert_eq!(dst_mark(&at(text), Tz::UTC), None);
            assert_eq!(dst_mark(&at(text), chrono_tz::Asia::Shanghai), None);
        }
    }

    #[test]
    fn a_gap_wall_time_with_a_foreign_offset_is_not_moved() {
        // 02:30-03:00 is no offset Berlin uses: a date trigger given it fires at 05:30 UTC,
        // an ordinary 07:30 in Berlin.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(dst_mark(&at("2035-03-25T02:30:00-03:00"), berlin), None);
    }
}
