//! The run history and the heartbeat rows of a [`RedisStore`]: its [`RunLog`] and
//! [`Membership`].

use std::collections::HashMap;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::records::{NodeEntry, run_args, run_from_hash, update_args};
use super::{PRUNE_CHUNK, RedisStore};
use crate::job::{RunRecord, RunStatus};
use crate::store::{
    Membership, NodeRecord, Orphans, RunFilter, RunLog, StoreError, scheduled_text, to_micros,
};

#[async_trait]
impl RunLog for RedisStore {
    /// Inserts a run record with its index entries; an error if its id or (job, fire
    /// time) is taken, as the SQL stores' keys refuse it.
    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        match self
            .run_script(&self.scripts.insert_run, run_args(run))
            .await?
        {
            1 => Ok(()),
            _ => Err(StoreError::Backend(anyhow!(
                "run {} of job {} exists already (same id, or same fire time {})",
                run.id,
                run.job_id,
                scheduled_text(run).unwrap_or_default()
            ))),
        }
    }

    /// Overwrites a run's mutable fields (a run that is gone stays gone).
    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.run_script(&self.scripts.update_run, update_args(run, None))
            .await?;
        Ok(())
    }

    /// Queued runs by their score in `queued` (the due time, µs).
    async fn due_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let ids = self.ids_due("queued", now, limit).await?;
        let mut runs = self.read_runs(&ids).await?;
        // An entry left by a run that moved on is not a queued run.
        runs.retain(|run| run.status == RunStatus::Queued);
        Ok(runs)
    }

    async fn next_due_run(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time_after("queued", after).await
    }

    async fn take_queued_run(&self, run: &RunRecord) -> Result<bool, StoreError> {
        let taken = self
            .run_script(
                &self.scripts.update_run,
                update_args(run, Some(RunStatus::Queued)),
            )
            .await?;
        Ok(taken == 1)
    }

    /// One run record, or `None`.
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let hash: HashMap<String, String> = self
            .con()
            .hgetall(self.key(&format!("runs:{run_id}")))
            .await?;
        run_from_hash(run_id, hash)
    }

    /// A job's runs, newest (highest id) first, only those with ids below `before`.
    async fn get_runs(
        &self,
        job_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let ids = self
            .ids_before(&format!("job_runs:{job_id}"), limit, before)
            .await?;
        // A run pruned between the two reads is simply not listed.
        self.read_runs(&ids).await
    }

    /// Runs of every job, newest first: see [`super::run_listing`].
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.list_runs_in_order(filter).await
    }

    /// Marks `interrupted` the running runs of daemons silent since `alive_since`.
    async fn interrupt_orphaned_runs(&self, orphans: &Orphans<'_>) -> Result<u64, StoreError> {
        let Orphans {
            me,
            alive_since,
            reason,
            at,
        } = *orphans;
        let args = [
            me.to_owned(),
            to_micros(alive_since).to_string(),
            reason.to_owned(),
            to_micros(at).to_string(),
        ];
        let count = self
            .run_script(&self.scripts.interrupt_orphans, args)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Deletes old finished runs, then all but the newest `keep_per_job` of each job.
    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError> {
        // As the SQL stores: first the old ones, then all but the newest `keep_per_job`
        // finished runs of each job (running runs are neither counted nor deleted).
        let old: Vec<String> = self
            .con()
            .zrangebyscore(
                self.key("runs_created"),
                "-inf",
                format!("({}", to_micros(older_than)),
            )
            .await?;
        let old: Vec<(String, String)> = old.into_iter().map(|id| (id, String::new())).collect();
        let mut count = self.delete_finished_runs(&old).await?;
        let mut running: std::collections::HashSet<String> =
            self.con().smembers(self.key("running")).await?;
        let queued: Vec<String> = self.con().zrange(self.key("queued"), 0, -1).await?;
        running.extend(queued);
        let keep = usize::try_from(keep_per_job).unwrap_or(usize::MAX);
        let jobs: Vec<String> = self.con().smembers(self.key("run_jobs")).await?;
        for chunk in jobs.chunks(PRUNE_CHUNK) {
            let mut pipe = redis::pipe();
            for job in chunk {
                pipe.zrevrange(self.key(&format!("job_runs:{job}")), 0, -1);
            }
            let ids: Vec<Vec<String>> = pipe.query_async(&mut self.con()).await?;
            let extra: Vec<(String, String)> = chunk
                .iter()
                .zip(ids)
                .flat_map(|(job, ids)| {
                    ids.into_iter()
                        .filter(|id| !running.contains(id))
                        .skip(keep)
                        .map(move |id| (id, job.clone()))
                })
                .collect();
            count += self.delete_finished_runs(&extra).await?;
        }
        Ok(count)
    }
}

#[async_trait]
impl Membership for RedisStore {
    /// Inserts this daemon's row, or moves its heartbeat only.
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        let entry = NodeEntry {
            host: node.host.clone(),
            pid: node.pid,
            started_micros: to_micros(node.started_at),
        };
        let entry = serde_json::to_string(&entry)
            .map_err(|e| StoreError::Backend(anyhow!("encoding a heartbeat: {e}")))?;
        let () = redis::pipe()
            .atomic()
            .hset_nx(self.key("nodes"), &node.id, entry)
            .ignore()
            .zadd(
                self.key("node_beats"),
                &node.id,
                to_micros(node.heartbeat_at),
            )
            .ignore()
            .query_async(&mut self.con())
            .await?;
        Ok(())
    }

    /// Every daemon with a heartbeat, most recent first, ties by id.
    async fn get_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let (entries, beats): (HashMap<String, String>, Vec<(String, f64)>) = redis::pipe()
            .atomic()
            .hgetall(self.key("nodes"))
            .zrange_withscores(self.key("node_beats"), 0, -1)
            .query_async(&mut self.con())
            .await?;
        #[allow(clippy::cast_possible_truncation)]
        let mut nodes: Vec<NodeRecord> = beats
            .into_iter()
            .filter_map(|(id, beat)| {
                let entry: NodeEntry = serde_json::from_str(entries.get(&id)?).ok()?;
                entry.into_record(id, beat.round() as i64)
            })
            .collect();
        nodes.sort_by(|a, b| {
            b.heartbeat_at
                .cmp(&a.heartbeat_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(nodes)
    }

    /// Deletes a daemon's row and those silent since `before`.
    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        let args = [id.to_owned(), to_micros(before).to_string()];
        self.run_script(&self.scripts.remove_nodes, args).await?;
        Ok(())
    }
}

impl RedisStore {
    /// Deletes the finished runs among `ids` (run id, job id or `""`); answers how many.
    async fn delete_finished_runs(&self, ids: &[(String, String)]) -> Result<u64, StoreError> {
        let mut count = 0;
        for chunk in ids.chunks(PRUNE_CHUNK) {
            let args = chunk.iter().flat_map(|(id, job)| [id, job]);
            let done = self
                .run_script(&self.scripts.delete_finished_runs, args)
                .await?;
            count += u64::try_from(done).unwrap_or(0);
        }
        Ok(count)
    }
}
