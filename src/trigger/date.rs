//! The `date` trigger: APScheduler 3.11's `DateTrigger`. It fires once, at `run_date`, even
//! when that is in the past (the scheduler then treats the run as missed or late).

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::datetime::{TriggerDate, isoformat};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DateTrigger {
    pub run_date: TriggerDate,
    pub timezone: Tz,
}

impl DateTrigger {
    /// `run_date` if nothing fired yet, then nothing. The value keeps the offset it was given
    /// with, as the reference's `next_run_time` does.
    pub(crate) fn next_fire_time(
        &self,
        previous: Option<DateTime<FixedOffset>>,
    ) -> Option<DateTime<FixedOffset>> {
        match previous {
            None => Some(self.run_date.time),
            Some(_) => None,
        }
    }

    pub(crate) fn fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(
            "run_date".into(),
            Value::String(isoformat(&self.run_date.time)),
        );
        map
    }
}
