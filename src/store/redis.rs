//! Jobs in Redis, laid out as APScheduler's `RedisJobStore` lays them out — a hash of job
//! states and a sorted set of next fire times — plus the run history and heartbeats.
//!
//! The URL is `redis://[user][:password@]host[:port][/db][?prefix=P&lock_ttl=S]`: see
//! [`options`]. Every key starts with the prefix (default `tickd:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `jobs` | hash | job id → state JSON ([`Job::to_state`]) |
//! | `versions` | hash | job id → write counter (compare-and-set) |
//! | `run_times` | sorted set | job id, scored by next fire time in µs (UTC); paused and parked jobs are absent |
//! | `runs:<run id>` | hash | one run record, field per SQL column (absent = NULL) |
//! | `job_runs:<job id>` | sorted set | the job's run ids, all scored 0 so they sort by id (UUIDv7: by creation) |
//! | `run_jobs` | set | job ids that have a `job_runs:` set |
//! | `runs_created` | sorted set | run id, scored by creation µs (retention by age; the listing's time range) |
//! | `run_ids` | sorted set | every run id, all scored 0 so they sort by id: the listing across jobs ([`run_listing`]) |
//! | `running` | set | ids of runs whose status is `running` |
//! | `run_slots` | hash | `<fire time µs>:<job id>` → run id: one run per (job, fire time) |
//! | `nodes` | hash | daemon id → `{host, pid, started_micros}` JSON |
//! | `node_beats` | sorted set | daemon id, scored by last heartbeat µs |
//! | `lock` | string | the single-daemon lock ([`lock`]) |
//! | `token:<id>`, `tokens` | hash, sorted set | API tokens ([`tokens`]) |
//! | `audit`, `audit_records`, `audit_actor:<actor>`, `audit_target:<target>` | | the audit log ([`audit`]) |
//!
//! Every change that touches several keys is one Lua script ([`scripts`]), so the keys never
//! disagree and the claim of a due job is atomic: it checks the job's version and that none of
//! its run slots is taken, then inserts the run records and advances or deletes the job. Reads
//! that span keys use `MULTI`. A Redis store still serves one daemon ([`Store::shared`] is
//! false), which a lock key enforces at open.

mod audit;
mod history;
mod lock;
mod notifications;
mod options;
mod records;
mod run_listing;
mod scripts;
mod tokens;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ErrorKind, RedisError, ServerErrorKind};

use self::lock::Lock;
use self::records::run_args;
use self::scripts::Scripts;
use super::{Claim, JobStore, Store, StoreError, from_micros, log_unreadable, to_micros};
use crate::job::Job;
#[cfg(test)]
use crate::job::RunStatus;
use crate::telemetry::logged;

/// How long one command may take before the store reports Redis unavailable.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Connection attempts after the first, before a call reports Redis unavailable (the next
/// call tries again): a down server answers 503 within seconds, not after a long backoff.
const CONNECT_RETRIES: usize = 2;

/// Run ids handed to one pruning script call.
const PRUNE_CHUNK: usize = 500;

/// Jobs in a Redis database.
#[derive(Debug)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: Scripts,
    /// The outbox's scripts (`notifications.rs`).
    outbox: notifications::OutboxScripts,
    /// The single-daemon lock; `None` for a store opened for its tokens only.
    lock: Option<Lock>,
}

impl From<RedisError> for StoreError {
    fn from(error: RedisError) -> Self {
        let unavailable = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_timeout()
            || error.code() == Some("BUSY")
            || matches!(
                error.kind(),
                ErrorKind::ClusterConnectionNotFound
                    | ErrorKind::Server(
                        ServerErrorKind::BusyLoading
                            | ServerErrorKind::MasterDown
                            | ServerErrorKind::ClusterDown
                            | ServerErrorKind::TryAgain
                            | ServerErrorKind::ReadOnly
                    )
            );
        if unavailable {
            StoreError::Unavailable(error.into())
        } else {
            StoreError::Backend(error.into())
        }
    }
}

/// A job's next fire time as the sorted set scores it; `""` when paused.
fn next_micros(job: &Job) -> String {
    job.next_run_time
        .map(|t| to_micros(t.to_utc()).to_string())
        .unwrap_or_default()
}

/// Decodes a stored job, logging (and skipping) an unreadable one, as SQLite does.
fn decode_job(id: &str, state: &str, version: Option<&str>) -> Option<Job> {
    let version = match version {
        None => Ok(0),
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| format!("unreadable version {text:?}")),
    };
    match version.and_then(|version| Job::from_state(state).map(|job| (job, version))) {
        Ok((mut job, version)) => {
            job.version = version;
            Some(job)
        }
        Err(error) => {
            log_unreadable(id, &error, "entry");
            None
        }
    }
}

/// The contract's order: by next fire instant, ties by id, paused jobs last by id.
fn sort_jobs(jobs: &mut [Job]) {
    let key = |job: &Job| job.next_run_time.map(|t| to_micros(t.to_utc()));
    jobs.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.is_none()
            .cmp(&kb.is_none())
            .then(ka.cmp(&kb))
            .then_with(|| a.id.cmp(&b.id))
    });
}

impl RedisStore {
    /// Connects to the Redis a `redis://` URL names and takes its single-daemon lock.
    ///
    /// # Errors
    /// A bad URL, Redis cannot be reached (`Unavailable`), or another daemon holds the lock.
    pub async fn open(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect(url, true).await
    }

    /// Connects as [`RedisStore::open`] does without taking the lock (nor refreshing it): for
    /// `tickd token`, beside a daemon that holds it.
    ///
    /// # Errors
    /// A bad URL, or Redis cannot be reached (`Unavailable`).
    pub(crate) async fn open_unlocked(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect(url, false).await
    }

    async fn connect(url: &str, locked: bool) -> Result<RedisStore, StoreError> {
        let options = options::parse(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_max_delay(std::time::Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(options.client, config)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Unavailable(e) => StoreError::Unavailable(
                    e.context(format!("cannot reach Redis at {}", options.location)),
                ),
                other => other,
            })?;
        let scripts = Scripts::new();
        let lock = if locked {
            Some(
                Lock::acquire(
                    &conn,
                    &scripts,
                    &options.prefix,
                    options.lock_ttl,
                    &options.location,
                )
                .await?,
            )
        } else {
            None
        };
        let store = RedisStore {
            conn,
            prefix: options.prefix,
            scripts,
            outbox: notifications::OutboxScripts::new(),
            lock,
        };
        if locked {
            store.backfill_run_ids().await?;
        }
        Ok(store)
    }

    /// A key under this store's prefix.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn con(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Up to `limit` members of the sorted set `key` (all scored 0, so in id order), highest
    /// first, only those below `before` when given: a page of a listing newest first.
    async fn ids_before(
        &self,
        key: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let max = before.map_or_else(|| "+".to_owned(), |b| format!("({b}"));
        Ok(self
            .con()
            .zrevrangebylex_limit(
                self.key(key),
                max,
                "-",
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await?)
    }

    /// Up to `limit` members of the sorted set `key` scored (µs) at or before `now`, lowest
    /// first: the queued runs or deliveries due.
    async fn ids_due(
        &self,
        key: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .con()
            .zrangebyscore_limit(
                self.key(key),
                "-inf",
                to_micros(now),
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await?)
    }

    /// The lowest score above `after` (µs) in the sorted set `key`, as a time: when the next
    /// of its members (queued runs, deliveries) falls due.
    async fn first_time_after(
        &self,
        key: &str,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Vec<(String, f64)> = self
            .con()
            .zrangebyscore_limit_withscores(
                self.key(key),
                format!("({}", to_micros(after)),
                "+inf",
                0,
                1,
            )
            .await?;
        #[allow(clippy::cast_possible_truncation)]
        Ok(next
            .first()
            .and_then(|(_, micros)| from_micros(micros.round() as i64)))
    }

    /// Runs `script` with the prefix and `args`; answers its integer reply.
    async fn run_script<I, A>(&self, script: &redis::Script, args: I) -> Result<i64, StoreError>
    where
        I: IntoIterator<Item = A>,
        A: redis::ToRedisArgs,
    {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix);
        for arg in args {
            invocation.arg(arg);
        }
        Ok(invocation.invoke_async(&mut self.con()).await?)
    }

    /// Applies one claim atomically: `Some(true)` when it was recorded, `Some(false)` when
    /// the job advanced without its runs (their fire time was handled already), `None` when
    /// the job changed or went meanwhile and was left for the next pass.
    async fn record_claim(&self, job: &Job, claim: &Claim) -> Result<Option<bool>, StoreError> {
        let (keep, state, micros) = match &claim.next {
            Some(next) => ("1", next.to_state(), next_micros(next)),
            None => ("0", String::new(), String::new()),
        };
        let mut args = vec![
            job.id.to_string(),
            job.version.to_string(),
            keep.to_owned(),
            state,
            micros,
            claim.runs.len().to_string(),
        ];
        for run in &claim.runs {
            args.extend(run_args(run));
        }
        let done = self.run_script(&self.scripts.claim, args).await?;
        match done {
            1 => Ok(Some(true)),
            0 => {
                let id = logged(&job.id);
                tracing::debug!(job_id = %id, "A run of job {id} for this fire time exists already; the job advanced without it");
                Ok(Some(false))
            }
            _ => {
                let id = logged(&job.id);
                tracing::debug!(job_id = %id, "Job {id} changed while it was claimed; left for the next pass");
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl JobStore for RedisStore {
    async fn lookup_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let (state, version): (Option<String>, Option<String>) = redis::pipe()
            .atomic()
            .hget(self.key("jobs"), id)
            .hget(self.key("versions"), id)
            .query_async(&mut self.con())
            .await?;
        Ok(state.and_then(|state| decode_job(id, &state, version.as_deref())))
    }

    async fn get_all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let (states, versions): (HashMap<String, String>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .hgetall(self.key("jobs"))
            .hgetall(self.key("versions"))
            .query_async(&mut self.con())
            .await?;
        let mut jobs: Vec<Job> = states
            .iter()
            .filter_map(|(id, state)| decode_job(id, state, versions.get(id).map(String::as_str)))
            .collect();
        sort_jobs(&mut jobs);
        Ok(jobs)
    }

    async fn get_next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let first: Vec<(String, f64)> = self
            .con()
            .zrange_withscores(self.key("run_times"), 0, 0)
            .await?;
        // Scores are doubles: exact for every µs instant before the year 2255.
        #[allow(clippy::cast_possible_truncation)]
        Ok(first
            .first()
            .and_then(|(_, score)| from_micros(score.round() as i64)))
    }

    async fn add_job(&self, job: &Job, _view: &str) -> Result<(), StoreError> {
        let args = [job.id.to_string(), job.to_state(), next_micros(job)];
        match self.run_script(&self.scripts.add_job, args).await? {
            1 => Ok(()),
            _ => Err(StoreError::Conflict(job.id.to_string())),
        }
    }

    async fn update_job(&self, job: &Job, _view: &str) -> Result<(), StoreError> {
        let args = [
            job.id.to_string(),
            job.version.to_string(),
            job.to_state(),
            next_micros(job),
        ];
        match self.run_script(&self.scripts.update_job, args).await? {
            1 => Ok(()),
            0 => Err(StoreError::Stale(job.id.to_string())),
            _ => Err(StoreError::NotFound(job.id.to_string())),
        }
    }

    async fn replace_job(&self, job: &Job, _view: &str) -> Result<(), StoreError> {
        let args = [job.id.to_string(), job.to_state(), next_micros(job)];
        self.run_script(&self.scripts.replace_job, args).await?;
        Ok(())
    }

    async fn remove_job(&self, id: &str) -> Result<(), StoreError> {
        match self.run_script(&self.scripts.remove_job, [id]).await? {
            1 => Ok(()),
            _ => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    async fn due_jobs(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.due_jobs.prepare_invoke();
        invocation.arg(&self.prefix).arg(to_micros(now)).arg(limit);
        let due: Vec<Option<String>> = invocation.invoke_async(&mut self.con()).await?;
        let mut jobs = Vec::with_capacity(due.len() / 3);
        for entry in due.chunks(3) {
            let [Some(id), state, version] = entry else {
                continue;
            };
            let job = state
                .as_deref()
                .and_then(|state| decode_job(id, state, version.as_deref()));
            match job {
                Some(job) => jobs.push(job),
                None => {
                    // Unreadable (or an index entry without a job): out of the sorted set,
                    // state kept, so it cannot spin the scheduler.
                    let seen = state.clone().unwrap_or_default();
                    self.run_script(&self.scripts.park_job, [id.clone(), seen])
                        .await?;
                }
            }
        }
        Ok(jobs)
    }

    async fn commit_claims(
        &self,
        claims: Vec<(Job, Claim)>,
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        // One script per claim: each checks the job's version and records it atomically.
        let mut claimed = Vec::with_capacity(claims.len());
        for (job, mut claim) in claims {
            match self.record_claim(&job, &claim).await? {
                Some(true) => claimed.push((job, claim)),
                Some(false) => {
                    claim.runs.clear();
                    claimed.push((job, claim));
                }
                None => {}
            }
        }
        Ok(claimed)
    }
}

#[async_trait]
impl Store for RedisStore {
    fn shared(&self) -> bool {
        false
    }

    /// Jobs are kept as APScheduler's `RedisJobStore` keeps them, state only: a listing
    /// renders each job it reads.
    fn keeps_views(&self) -> bool {
        false
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.con()).await?;
        Ok(())
    }

    async fn close(&self) {
        if let Some(lock) = &self.lock {
            lock.release(&self.conn, &self.scripts).await;
        }
    }
}

impl Drop for RedisStore {
    /// Without [`Store::close`] the lock is left to expire, as after a crash.
    fn drop(&mut self) {
        if let Some(lock) = &self.lock {
            lock.stop_refreshing();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_statuses_are_the_stored_ones() {
        // The Lua scripts name these statuses by their text.
        assert_eq!(RunStatus::Running.as_str(), "running");
        assert_eq!(RunStatus::Interrupted.as_str(), "interrupted");
    }
}
