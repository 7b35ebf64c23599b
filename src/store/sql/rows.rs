//! Rows as the SQL store writes and reads them: the column lists, the values a record binds,
//! and the decoding back, once for every dialect.

use super::dialect::{Dialect, Statement, Val, placeholders};
use crate::job::{Job, RunRecord};
use crate::store::{
    NodeRecord, RunRow, StoreError, StoredView, ViewBody, from_micros, log_unreadable,
    scheduled_micros, scheduled_text, to_micros,
};

/// The columns a job is read from.
pub(super) const JOB_COLUMNS: &str = "id, job_state, version";

/// The columns a view is read from: the state only where no view was kept.
pub(super) const VIEW_COLUMNS: &str = "id, next_run_time, pending, view_json, \
    CASE WHEN view_json IS NULL THEN job_state END, version";

/// The columns a run record is written and read as.
pub(super) const RUN_COLUMNS: &str = "id, job_id, scheduled_micros, scheduled_run_time, \
    created_micros, started_micros, finished_micros, status, reason, exit_code, stdout, stderr, \
    stdout_truncated, stderr_truncated, result, cause, node, owner, attempt, retry_of, \
    due_micros, job_state";

/// [`RUN_COLUMNS`] with the output (and a call's result) read as empty: the listing across
/// jobs, which answers runs without their output (decoded as [`run`] decodes a whole row).
pub(super) const RUN_SUMMARY_COLUMNS: &str = "id, job_id, scheduled_micros, \
    scheduled_run_time, created_micros, started_micros, finished_micros, status, reason, \
    exit_code, '' AS stdout, '' AS stderr, stdout_truncated, stderr_truncated, NULL AS result, \
    cause, node, owner, attempt, retry_of, due_micros, NULL AS job_state";

/// How many columns [`RUN_COLUMNS`] names.
pub(super) const RUN_WIDTH: usize = 22;

/// The columns a node is read from.
pub(super) const NODE_COLUMNS: &str = "id, host, pid, started_micros, heartbeat_micros";

/// Reads a row's columns in order.
pub(super) struct Columns<'r, D: Dialect> {
    row: &'r D::Row,
    next: usize,
}

impl<'r, D: Dialect> Columns<'r, D> {
    pub fn of(row: &'r D::Row) -> Self {
        Columns { row, next: 0 }
    }

    fn at(&mut self) -> usize {
        self.next += 1;
        self.next - 1
    }

    pub fn int(&mut self) -> Result<Option<i64>, sqlx::Error> {
        D::int(self.row, self.at())
    }

    pub fn small(&mut self) -> Result<Option<i32>, sqlx::Error> {
        D::small(self.row, self.at())
    }

    pub fn text(&mut self) -> Result<Option<String>, sqlx::Error> {
        D::string(self.row, self.at())
    }

    pub fn flag(&mut self) -> Result<bool, sqlx::Error> {
        D::flag(self.row, self.at())
    }

    /// Passes over a column.
    pub fn skip(&mut self) -> &mut Self {
        self.next += 1;
        self
    }
}

/// A NOT NULL column read as NULL: the row is not one tickd wrote.
fn null(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("{what} is NULL").into())
}

/// The id of a row read with [`JOB_COLUMNS`] or [`VIEW_COLUMNS`], for the log when the rest
/// cannot be read.
fn row_id<D: Dialect>(row: &D::Row) -> String {
    D::string(row, 0).ok().flatten().unwrap_or_default()
}

/// A job row ([`JOB_COLUMNS`]) decoded; an unreadable one is logged, and its id answered in
/// `Err` so that a claim can park it.
pub(super) fn job<D: Dialect>(row: &D::Row) -> Result<Job, String> {
    let decoded = (|| {
        let mut columns = Columns::<D>::of(row);
        let id = columns.text()?.ok_or_else(|| null("id"))?;
        let state = columns.text()?.ok_or_else(|| null("job_state"))?;
        let version = columns.int()?.ok_or_else(|| null("version"))?;
        Ok::<_, sqlx::Error>((id, state, version))
    })();
    match decoded {
        Ok((id, state, version)) => match Job::from_state(&state) {
            Ok(mut job) => {
                job.version = version;
                Ok(job)
            }
            Err(error) => {
                log_unreadable(&id, &error, "row");
                Err(id)
            }
        },
        Err(error) => {
            let id = row_id::<D>(row);
            log_unreadable(&id, &error, "row");
            Err(id)
        }
    }
}

/// Job rows decoded, the unreadable ones logged and skipped; answers their ids too.
pub(super) fn jobs<D: Dialect>(rows: &[D::Row]) -> (Vec<Job>, Vec<String>) {
    let mut jobs = Vec::with_capacity(rows.len());
    let mut broken = Vec::new();
    for row in rows {
        match job::<D>(row) {
            Ok(job) => jobs.push(job),
            Err(id) => broken.push(id),
        }
    }
    (jobs, broken)
}

/// A listing row ([`VIEW_COLUMNS`]); a row kept without a view is decoded, and skipped
/// (logged) if unreadable.
pub(super) fn view<D: Dialect>(row: &D::Row) -> Option<StoredView> {
    let decoded = (|| {
        let mut columns = Columns::<D>::of(row);
        let id = columns.text()?.ok_or_else(|| null("id"))?;
        let next_run_time = columns.int()?;
        let pending = columns.flag()?;
        let view = columns.text()?;
        let state = columns.text()?;
        let version = columns.int()?;
        Ok::<_, sqlx::Error>((id, next_run_time, pending, view, state, version))
    })();
    let (id, next_run_time, pending, view, state, version) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            log_unreadable(&row_id::<D>(row), &error, "row");
            return None;
        }
    };
    let body = match (view, state) {
        (Some(view), _) => ViewBody::Rendered(view),
        (None, state) => match Job::from_state(state.as_deref().unwrap_or_default()) {
            Ok(mut job) => {
                job.version = version.unwrap_or_default();
                ViewBody::Job(Box::new(job))
            }
            Err(error) => {
                log_unreadable(&id, &error, "row");
                return None;
            }
        },
    };
    Some(StoredView {
        id,
        next_run_time,
        pending,
        body,
    })
}

/// A run record's values, in [`RUN_COLUMNS`]' order.
pub(super) fn run_values<'a, D: Dialect>(run: &'a RunRecord) -> [Val<'a>; RUN_WIDTH] {
    [
        Val::from(&run.id),
        Val::from(&run.job_id),
        Val::from(scheduled_micros(run)),
        Val::Text(scheduled_text(run).map(Into::into)),
        Val::from(to_micros(run.created_at)),
        Val::from(run.started_at.map(to_micros)),
        Val::from(run.finished_at.map(to_micros)),
        Val::from(run.status.as_str()),
        Val::Text(run.reason.as_deref().map(D::text)),
        Val::from(run.exit_code),
        Val::from(D::text(&run.stdout)),
        Val::from(D::text(&run.stderr)),
        Val::from(run.stdout_truncated),
        Val::from(run.stderr_truncated),
        Val::Text(run.result.as_deref().map(D::text)),
        Val::from(run.cause.as_str()),
        Val::from(&run.node),
        Val::from(&run.owner),
        Val::from(i32::try_from(run.attempt).ok()),
        Val::Text(run.retry_of.as_ref().map(|id| id.as_str().into())),
        Val::from(run.due_at.map(to_micros)),
        Val::Text(run.job_state.as_deref().map(D::text)),
    ]
}

/// One `INSERT` of `runs`, a row each: a single record, or a claim's batch.
pub(super) fn insert_runs<'a, D: Dialect>(runs: &[&'a RunRecord]) -> Statement<'a> {
    let row = format!("({})", placeholders(RUN_WIDTH));
    let rows = vec![row; runs.len()].join(", ");
    Statement::built(format!(
        "INSERT INTO tickd_runs ({RUN_COLUMNS}) VALUES {rows}"
    ))
    .bind_all(runs.iter().flat_map(|run| run_values::<D>(run)))
}

/// A run row ([`RUN_COLUMNS`]) decoded, or a message naming the unreadable column.
pub(super) fn run<D: Dialect>(row: &D::Row) -> Result<RunRecord, StoreError> {
    let id = row_id::<D>(row);
    let bad = |what: &str| StoreError::Backend(anyhow::anyhow!("run {id}: unreadable {what}"));
    let read = || {
        let mut c = Columns::<D>::of(row);
        let text = |c: &mut Columns<'_, D>, what| c.text()?.ok_or_else(|| null(what));
        Ok::<_, sqlx::Error>(RunRow {
            id: text(&mut c, "id")?,
            job_id: text(&mut c, "job_id")?,
            // `scheduled_micros` is the uniqueness key; the record keeps the text with its
            // offset.
            scheduled_run_time: c.skip().text()?,
            created_micros: c.int()?.ok_or_else(|| null("created_micros"))?,
            started_micros: c.int()?,
            finished_micros: c.int()?,
            status: text(&mut c, "status")?,
            reason: c.text()?,
            exit_code: c.small()?,
            stdout: text(&mut c, "stdout")?,
            stderr: text(&mut c, "stderr")?,
            stdout_truncated: c.flag()?,
            stderr_truncated: c.flag()?,
            result: c.text()?,
            cause: text(&mut c, "cause")?,
            node: text(&mut c, "node")?,
            owner: text(&mut c, "owner")?,
            attempt: c.small()?,
            retry_of: c.text()?,
            due_micros: c.int()?,
            job_state: c.text()?,
        })
    };
    read().map_err(|e| bad(&e.to_string()))?.into_record()
}

/// A node row ([`NODE_COLUMNS`]); `None` if a column is unreadable.
pub(super) fn node<D: Dialect>(row: &D::Row) -> Option<NodeRecord> {
    let mut c = Columns::<D>::of(row);
    Some(NodeRecord {
        id: c.text().ok()??,
        host: c.text().ok()??,
        pid: u32::try_from(c.int().ok()??).ok()?,
        started_at: from_micros(c.int().ok()??)?,
        heartbeat_at: from_micros(c.int().ok()??)?,
    })
}
