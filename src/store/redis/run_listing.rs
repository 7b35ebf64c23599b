//! Runs of every job, newest first ([`RunLog::list_runs`](crate::store::RunLog::list_runs))
//! on Redis: an index read in order, the filter's other conditions checked on three fields
//! of each run, and only the page's runs read (without their output).
//!
//! Which index is read:
//! - a job given: its `job_runs:<job id>` (that job's runs only);
//! - else a time range given: the range of `runs_created` (the runs that began in it);
//! - else `run_ids` (every run, by id).
//!
//! A status filter alone therefore walks `run_ids` newest first, [`WALK_BATCH`] runs per
//! round trip, until the page is full: its cost grows with the runs of other statuses newer
//! than the page, which retention bounds. The SQL stores read an index on (status, id).

use std::collections::HashMap;

use redis::AsyncCommands;

use super::RedisStore;
use super::records::run_from_hash;
use crate::job::RunRecord;
use crate::store::{RunFilter, StoreError, to_micros};

/// Run ids checked per round trip while a filter walks an index.
const WALK_BATCH: usize = 200;

/// A run's hash fields but its output: what the listing reads of each run it answers.
const SUMMARY_FIELDS: [&str; 18] = [
    "id",
    "job_id",
    "scheduled_micros",
    "scheduled_run_time",
    "created_micros",
    "started_micros",
    "finished_micros",
    "status",
    "reason",
    "exit_code",
    "stdout_truncated",
    "stderr_truncated",
    "cause",
    "node",
    "owner",
    "attempt",
    "retry_of",
    "due_micros",
];

/// Run ids copied per command while `run_ids` is filled at open.
const BACKFILL_CHUNK: isize = 1000;

impl RedisStore {
    /// The runs `filter` lets through, newest (highest id) first.
    pub(super) async fn list_runs_in_order(
        &self,
        filter: &RunFilter,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids = match &filter.job {
            None if filter.since.is_some() || filter.until.is_some() => {
                self.ids_in_time_range(filter, limit).await?
            }
            job => {
                let index = job.as_ref().map_or_else(
                    || self.key("run_ids"),
                    |job| self.key(&format!("job_runs:{job}")),
                );
                self.walk_ids(&index, filter, limit).await?
            }
        };
        self.read_summaries(&ids).await
    }

    /// Walks a sorted set of run ids (all scored 0, so in id order) from `filter.before`
    /// down, keeping those the filter admits, until `limit` are kept or the set ends.
    async fn walk_ids(
        &self,
        index: &str,
        filter: &RunFilter,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        // A job's runs unfiltered otherwise are a page of the index as it stands.
        let checked =
            !filter.statuses.is_empty() || filter.since.is_some() || filter.until.is_some();
        let batch = if checked {
            limit.max(WALK_BATCH)
        } else {
            limit
        };
        let mut max = filter
            .before
            .as_ref()
            .map_or_else(|| "+".to_owned(), |b| format!("({b}"));
        let mut kept = Vec::new();
        loop {
            let ids: Vec<String> = self
                .con()
                .zrevrangebylex_limit(
                    index,
                    &max,
                    "-",
                    0,
                    isize::try_from(batch).unwrap_or(isize::MAX),
                )
                .await?;
            let Some(last) = ids.last() else { break };
            max = format!("({last}");
            let full = ids.len() == batch;
            if checked {
                kept.extend(self.admitted(ids, filter).await?);
            } else {
                kept.extend(ids);
            }
            if kept.len() >= limit || !full {
                break;
            }
        }
        kept.truncate(limit);
        Ok(kept)
    }

    /// The ids of the runs that began in the filter's time range, below `before`, admitted
    /// by its other conditions, highest first, at most `limit`.
    async fn ids_in_time_range(
        &self,
        filter: &RunFilter,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let min = filter
            .since
            .map_or_else(|| "-inf".to_owned(), |t| to_micros(t).to_string());
        let max = filter
            .until
            .map_or_else(|| "+inf".to_owned(), |t| format!("({}", to_micros(t)));
        let mut ids: Vec<String> = self
            .con()
            .zrangebyscore(self.key("runs_created"), min, max)
            .await?;
        if let Some(before) = &filter.before {
            ids.retain(|id| id < before);
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        if filter.statuses.is_empty() {
            ids.truncate(limit);
            return Ok(ids);
        }
        let mut kept = Vec::new();
        for chunk in ids.chunks(WALK_BATCH) {
            kept.extend(self.admitted(chunk.to_vec(), filter).await?);
            if kept.len() >= limit {
                break;
            }
        }
        kept.truncate(limit);
        Ok(kept)
    }

    /// The ids among `ids` whose run exists and passes the filter, read from three fields
    /// of each (in order).
    async fn admitted(
        &self,
        ids: Vec<String>,
        filter: &RunFilter,
    ) -> Result<Vec<String>, StoreError> {
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hmget(
                self.key(&format!("runs:{id}")),
                &["job_id", "status", "created_micros"],
            );
        }
        type Fields = (Option<String>, Option<String>, Option<String>);
        let fields: Vec<Fields> = pipe.query_async(&mut self.con()).await?;
        Ok(ids
            .into_iter()
            .zip(fields)
            .filter_map(|(id, fields)| {
                // A run pruned meanwhile has no fields: it is simply not listed.
                let (Some(job), Some(status), Some(created)) = fields else {
                    return None;
                };
                let created = created.parse::<i64>().ok()?;
                filter.admits(&job, &status, created).then_some(id)
            })
            .collect())
    }

    /// The records of `ids` without their output, in their order (those pruned meanwhile
    /// left out).
    async fn read_summaries(&self, ids: &[String]) -> Result<Vec<RunRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hmget(self.key(&format!("runs:{id}")), &SUMMARY_FIELDS[..]);
        }
        let values: Vec<Vec<Option<String>>> = pipe.query_async(&mut self.con()).await?;
        let mut runs = Vec::with_capacity(ids.len());
        for (id, values) in ids.iter().zip(values) {
            let hash: HashMap<String, String> = SUMMARY_FIELDS
                .iter()
                .zip(values)
                .filter_map(|(name, value)| Some(((*name).to_owned(), value?)))
                .collect();
            if let Some(run) = run_from_hash(id, hash)? {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// The records of `ids`, in their order (those pruned meanwhile left out).
    pub(super) async fn read_runs(&self, ids: &[String]) -> Result<Vec<RunRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.key(&format!("runs:{id}")));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.con()).await?;
        let mut runs = Vec::with_capacity(ids.len());
        for (id, hash) in ids.iter().zip(hashes) {
            if let Some(run) = run_from_hash(id, hash)? {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// Fills `run_ids` from `runs_created` when it holds fewer runs: a store written before
    /// `run_ids` existed (or by an older tickd since) gets every run listed. Chunked, so
    /// Redis is never blocked for long; runs inserted meanwhile are in both sets already.
    pub(super) async fn backfill_run_ids(&self) -> Result<(), StoreError> {
        let (ids, created): (usize, usize) = redis::pipe()
            .zcard(self.key("run_ids"))
            .zcard(self.key("runs_created"))
            .query_async(&mut self.con())
            .await?;
        if ids >= created {
            return Ok(());
        }
        let mut start = 0;
        loop {
            let chunk: Vec<String> = self
                .con()
                .zrange(self.key("runs_created"), start, start + BACKFILL_CHUNK - 1)
                .await?;
            if chunk.is_empty() {
                break;
            }
            let members: Vec<(i64, &str)> = chunk.iter().map(|id| (0, id.as_str())).collect();
            let _: usize = self
                .con()
                .zadd_multiple(self.key("run_ids"), &members)
                .await?;
            start += BACKFILL_CHUNK;
        }
        tracing::info!(
            "Indexed {} existing runs for the listing of runs across jobs",
            created.saturating_sub(ids)
        );
        Ok(())
    }
}
