//! Unit tests of the cron trigger.
