//! The audit log: one record per change made through the API and per refused attempt, kept
//! beside the jobs so that every daemon sharing a store shares it, and so that it survives
//! restarts. Who did what, from where, to what, and how it ended; never a password, a token
//! or a request body (the API layer that writes records has none of them to give).
//!
//! A record's id is a UUIDv7 made from its time: ids sort as times do, so the id is the
//! paging key (`before`) and the order (newest first), as for runs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::{NoContext, Timestamp, Uuid};

use super::{StoreError, from_micros};

/// Characters kept of a record's actor and target (an id in the path, a tried user name):
/// what MySQL can index, and enough for any id tickd accepts. Longer text is cut.
pub const AUDIT_KEY_CHARS: usize = 191;

/// Characters kept of a record's route (a path that matched no route can be long).
pub const AUDIT_ROUTE_CHARS: usize = 1024;

/// How a request ended, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was done (2xx, 3xx).
    Ok,
    /// It was refused before anything was done: 401, 403, 421, 429.
    Denied,
    /// It was tried and failed: a bad body, a missing job, a store down.
    Error,
}

impl Outcome {
    /// The outcome a response status means.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            401 | 403 | 421 | 429 => Outcome::Denied,
            _ => Outcome::Error,
        }
    }

    /// Its name in the store and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }

    /// Back from [`Outcome::as_str`].
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "ok" => Some(Outcome::Ok),
            "denied" => Some(Outcome::Denied),
            "error" => Some(Outcome::Error),
            _ => None,
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// A UUIDv7 of [`AuditRecord::at`]: the order and the paging key.
    pub id: String,
    /// When the request was answered.
    pub at: DateTime<Utc>,
    /// Who: the authenticated user or token name; for a request that was not authenticated,
    /// the user name it tried, if any (never its password).
    pub actor: Option<String>,
    /// How the actor proved it (`password`, `token`); `None` when it did not.
    pub credential: Option<String>,
    /// The client's address.
    pub source: String,
    /// The HTTP method.
    pub method: String,
    /// The route template that matched (`/scheduler/jobs/{id}`), else the path.
    pub route: String,
    /// The job or run the request named or created.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The response's status code.
    pub status: u16,
}

/// What a record is made of, but its id and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// See [`AuditRecord::actor`].
    pub actor: Option<String>,
    /// See [`AuditRecord::credential`].
    pub credential: Option<String>,
    /// See [`AuditRecord::source`].
    pub source: String,
    /// See [`AuditRecord::method`].
    pub method: String,
    /// See [`AuditRecord::route`].
    pub route: String,
    /// See [`AuditRecord::target`].
    pub target: Option<String>,
    /// See [`AuditRecord::status`]; the outcome follows from it.
    pub status: u16,
}

impl AuditRecord {
    /// A record made now: its id a UUIDv7 of this process's clock (ids made in one process
    /// sort in the order they were made, even within a millisecond), its time the id's.
    pub fn now(entry: AuditEntry) -> AuditRecord {
        let id = Uuid::now_v7();
        let at = uuid_time(&id).unwrap_or_else(Utc::now);
        AuditRecord::with_id(id, at, entry)
    }

    /// A record made at `at` (an import, a test): its id a UUIDv7 of that time (records of
    /// one millisecond made this way sort in no particular order).
    pub fn at(at: DateTime<Utc>, entry: AuditEntry) -> AuditRecord {
        AuditRecord::with_id(Uuid::new_v7(timestamp(at, NoContext)), at, entry)
    }

    fn with_id(id: Uuid, at: DateTime<Utc>, entry: AuditEntry) -> AuditRecord {
        AuditRecord {
            id: id.hyphenated().to_string(),
            at,
            actor: entry.actor.map(|t| clip(t, AUDIT_KEY_CHARS)),
            credential: entry.credential,
            source: entry.source,
            method: clip(entry.method, 16),
            route: clip(entry.route, AUDIT_ROUTE_CHARS),
            target: entry.target.map(|t| clip(t, AUDIT_KEY_CHARS)),
            outcome: Outcome::of_status(entry.status),
            status: entry.status,
        }
    }
}

/// The smallest record id of time `at`: every record made at or after `at` has an id at
/// least this (to the millisecond), every one made before a smaller one.
pub fn audit_id_floor(at: DateTime<Utc>) -> String {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes).hyphenated().to_string()
}

fn timestamp(at: DateTime<Utc>, context: NoContext) -> Timestamp {
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    Timestamp::from_unix(context, seconds, at.timestamp_subsec_nanos())
}

fn uuid_time(id: &Uuid) -> Option<DateTime<Utc>> {
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, nanos)
}

/// `text` cut to at most `chars` characters.
fn clip(mut text: String, chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(chars) {
        text.truncate(cut);
    }
    text
}

/// Which records to read: newest first, at most `limit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    /// Records answered at most.
    pub limit: u32,
    /// Only records older than the one with this id (the last of the previous page).
    pub before: Option<&'a str>,
    /// Only this actor's records.
    pub actor: Option<&'a str>,
    /// Only records of this target.
    pub target: Option<&'a str>,
}

/// Where audit records are kept.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends records (a batch: one statement or script where the backend allows).
    async fn append(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    /// Records newest first, as `filter` says.
    async fn audit(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes the records made before `before`; answers how many went.
    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A record as plain column values, decoded in one place for every backend.
#[derive(Debug, Default)]
pub(crate) struct AuditRow {
    pub id: String,
    pub at_micros: i64,
    pub actor: Option<String>,
    pub credential: Option<String>,
    pub source: String,
    pub method: String,
    pub route: String,
    pub target: Option<String>,
    pub outcome: String,
    pub status: i64,
}

impl AuditRow {
    /// The record, or a message saying which column is unreadable.
    pub fn into_record(self) -> Result<AuditRecord, StoreError> {
        let id = self.id.clone();
        let bad = |what: &str| {
            StoreError::Backend(anyhow::anyhow!("audit record {id}: unreadable {what}"))
        };
        Ok(AuditRecord {
            at: from_micros(self.at_micros).ok_or_else(|| bad("time"))?,
            outcome: Outcome::parse(&self.outcome).ok_or_else(|| bad("outcome"))?,
            status: u16::try_from(self.status).map_err(|_| bad("status"))?,
            id: self.id,
            actor: self.actor,
            credential: self.credential,
            source: self.source,
            method: self.method,
            route: self.route,
            target: self.target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            actor: Some("é".repeat(300)),
            credential: None,
            source: "127.0.0.1".to_owned(),
            method: "POST".to_owned(),
            route: "/scheduler/jobs".to_owned(),
            target: None,
            status: 201,
        }
    }

    #[test]
    fn ids_sort_as_times_and_the_floor_is_below_its_millisecond() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .to_utc();
        let a = AuditRecord::at(t, entry());
        let b = AuditRecord::at(t + chrono::TimeDelta::milliseconds(1), entry());
        assert!(a.id < b.id);
        assert!(audit_id_floor(t) <= a.id && a.id < audit_id_floor(b.at));
        assert_eq!(a.actor.as_ref().map(|a| a.chars().count()), Some(191));
        assert_eq!(a.outcome, Outcome::Ok);
        let now = [AuditRecord::now(entry()), AuditRecord::now(entry())];
        assert!(now[0].id < now[1].id && now[0].at <= now[1].at);
    }

    #[test]
    fn outcomes_follow_statuses() {
        for (status, outcome) in [
            (200, Outcome::Ok),
            (204, Outcome::Ok),
            (401, Outcome::Denied),
            (403, Outcome::Denied),
            (421, Outcome::Denied),
            (429, Outcome::Denied),
            (400, Outcome::Error),
            (404, Outcome::Error),
            (503, Outcome::Error),
        ] {
            assert_eq!(Outcome::of_status(status), outcome, "{status}");
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
    }
}
