//! [`RunLog`] on SQL: the `tickd_runs` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::dialect::{Dialect, Statement, Val, placeholders};
use super::{SqlStore, rows};
use crate::job::{RunRecord, RunStatus};
use crate::store::{Orphans, RunFilter, RunLog, StoreError, from_micros, to_micros};

/// The `UPDATE` of a run's mutable columns (its status, times, output, and who runs it), only
/// while it is in the status `only_from` when given.
fn update<D: Dialect>(run: &RunRecord, only_from: Option<RunStatus>) -> Statement<'_> {
    let guard = if only_from.is_some() {
        " AND status = ?"
    } else {
        ""
    };
    Statement::built(format!(
        "UPDATE tickd_runs SET started_micros = ?, finished_micros = ?, status = ?, \
         reason = ?, exit_code = ?, stdout = ?, stderr = ?, stdout_truncated = ?, \
         stderr_truncated = ?, result = ?, node = ?, owner = ?, due_micros = ?, \
         job_state = ? WHERE id = ?{guard}"
    ))
    .bind(run.started_at.map(to_micros))
    .bind(run.finished_at.map(to_micros))
    .bind(run.status.as_str())
    .bind(Val::Text(run.reason.as_deref().map(D::text)))
    .bind(run.exit_code)
    .bind(D::text(&run.stdout))
    .bind(D::text(&run.stderr))
    .bind(run.stdout_truncated)
    .bind(run.stderr_truncated)
    .bind(Val::Text(run.result.as_deref().map(D::text)))
    .bind(&run.node)
    .bind(&run.owner)
    .bind(run.due_at.map(to_micros))
    .bind(Val::Text(run.job_state.as_deref().map(D::text)))
    .bind(&run.id)
    .bind_all(only_from.map(RunStatus::as_str))
}

#[async_trait]
impl<D: Dialect> RunLog for SqlStore<D> {
    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.execute(rows::insert_runs::<D>(&[run])).await?;
        Ok(())
    }

    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.execute(update::<D>(run, None)).await?;
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_runs WHERE id = ?",
            rows::RUN_COLUMNS
        ));
        let row = self.fetch_optional(read.bind(run_id)).await?;
        row.as_ref().map(rows::run::<D>).transpose()
    }

    async fn get_runs(
        &self,
        job_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let older = if before.is_some() { " AND id < ?" } else { "" };
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_runs WHERE job_id = ?{older} ORDER BY id DESC LIMIT ?",
            rows::RUN_COLUMNS
        ))
        .bind(job_id)
        .bind_all(before)
        .bind(i64::from(limit));
        let found = self.fetch_all(read).await?;
        found.iter().map(rows::run::<D>).collect()
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<Val<'_>> = Vec::new();
        if let Some(job) = &filter.job {
            conditions.push("job_id = ?".to_owned());
            values.push(Val::from(job));
        }
        if !filter.statuses.is_empty() {
            conditions.push(format!(
                "status IN ({})",
                placeholders(filter.statuses.len())
            ));
            values.extend(filter.statuses.iter().map(|s| Val::from(s.as_str())));
        }
        if let Some(since) = filter.since {
            conditions.push("created_micros >= ?".to_owned());
            values.push(Val::from(to_micros(since)));
        }
        if let Some(until) = filter.until {
            conditions.push("created_micros < ?".to_owned());
            values.push(Val::from(to_micros(until)));
        }
        if let Some(before) = &filter.before {
            conditions.push("id < ?".to_owned());
            values.push(Val::from(before));
        }
        let filtered = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_runs{filtered} ORDER BY id DESC LIMIT ?",
            rows::RUN_SUMMARY_COLUMNS
        ))
        .bind_all(values)
        .bind(i64::from(filter.limit));
        let found = self.fetch_all(read).await?;
        found.iter().map(rows::run::<D>).collect()
    }

    async fn due_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_runs WHERE status = ? AND due_micros <= ? \
             ORDER BY due_micros, id LIMIT ?",
            rows::RUN_COLUMNS
        ))
        .bind(RunStatus::Queued.as_str())
        .bind(to_micros(now))
        .bind(i64::from(limit));
        let found = self.fetch_all(read).await?;
        found.iter().map(rows::run::<D>).collect()
    }

    async fn next_due_run(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let read = Statement::new(
            "SELECT MIN(due_micros) FROM tickd_runs WHERE status = ? AND due_micros > ?",
        )
        .bind(RunStatus::Queued.as_str())
        .bind(to_micros(after));
        let row = self.fetch_optional(read).await?;
        let micros = match &row {
            Some(row) => D::int(row, 0)?,
            None => None,
        };
        Ok(micros.and_then(from_micros))
    }

    async fn take_queued_run(&self, run: &RunRecord) -> Result<bool, StoreError> {
        let taken = self
            .execute(update::<D>(run, Some(RunStatus::Queued)))
            .await?;
        Ok(taken == 1)
    }

    async fn interrupt_orphaned_runs(&self, orphans: &Orphans<'_>) -> Result<u64, StoreError> {
        let update = Statement::new(
            "UPDATE tickd_runs SET status = ?, reason = ?, finished_micros = ? \
             WHERE status = ? AND owner <> ? AND owner NOT IN \
             (SELECT id FROM tickd_nodes WHERE heartbeat_micros >= ?)",
        )
        .bind(RunStatus::Interrupted.as_str())
        .bind(orphans.reason)
        .bind(to_micros(orphans.at))
        .bind(RunStatus::Running.as_str())
        .bind(orphans.me)
        .bind(to_micros(orphans.alive_since));
        self.execute(update).await
    }

    async fn prune_runs(
        &self,
        older_than: DateTime<Utc>,
        keep_per_job: u32,
    ) -> Result<u64, StoreError> {
        let old = Statement::new(
            "DELETE FROM tickd_runs WHERE created_micros < ? AND status NOT IN (?, ?)",
        )
        .bind(to_micros(older_than))
        .bind(RunStatus::Running.as_str())
        .bind(RunStatus::Queued.as_str());
        // MySQL refuses a DELETE whose subquery reads the target table (error 1093) unless
        // that read is a derived table, which it materialises first: `ranked` is one (and a
        // window function keeps it from being merged into the outer query).
        let extra = Statement::new(
            "DELETE FROM tickd_runs WHERE id IN (SELECT id FROM (SELECT id, \
             ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id DESC) AS n FROM tickd_runs \
             WHERE status NOT IN (?, ?)) AS ranked WHERE n > ?)",
        )
        .bind(RunStatus::Running.as_str())
        .bind(RunStatus::Queued.as_str())
        .bind(i64::from(keep_per_job));
        Ok(self.execute(old).await? + self.execute(extra).await?)
    }
}
