//! Group commit for job inserts (SQLite: the dialects whose `GROUP_ADDS` is set, which
//! must know `ON CONFLICT (id) DO NOTHING RETURNING id`). `POST P/jobs` is the write that comes in floods (a bulk
//! import, a client creating jobs in a loop, many clients at once); one SQLite transaction
//! per insert makes every request wait for its own commit, behind every other. Here inserts
//! queue for one writer task, which takes whatever has queued up while the previous batch
//! was committing and writes the batch as one multi-row `INSERT` (one statement, so one
//! atomic commit), then answers each request. Under no load a batch is a single insert and
//! costs what it did before; under load the commits are shared.
//!
//! Each insert keeps its own outcome: a batch with a taken id is written again with
//! `ON CONFLICT (id) DO NOTHING RETURNING id`, which answers the rows that went in, so a taken
//! id fails its own request only.

use std::collections::HashSet;

use anyhow::anyhow;
use sqlx::Pool;
use tokio::sync::{mpsc, oneshot};

use super::dialect::{Dialect, Statement, placeholders};
use super::is_unique_violation;
use super::jobs::next_micros;
use crate::job::Job;
use crate::store::StoreError;

/// Inserts written per statement at most (five bound values each, far below SQLite's limit).
const MAX_BATCH: usize = 256;

/// Inserts waiting for the writer, bounded so a flood waits at the queue rather than in
/// memory.
const QUEUE: usize = 4 * MAX_BATCH;

/// One job row to insert (at version 0).
#[derive(Debug)]
struct NewRow {
    id: String,
    next_run_time: Option<i64>,
    pending: bool,
    job_state: String,
    view: String,
}

type Pending = (NewRow, oneshot::Sender<Result<(), StoreError>>);

/// The queue in front of the writer task; the task ends when this is dropped.
#[derive(Debug)]
pub(super) struct Adds {
    queue: mpsc::Sender<Pending>,
}

impl Adds {
    /// Starts the writer task over `pool`.
    pub fn start<D: Dialect>(pool: Pool<D>) -> Adds {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, waiting));
        Adds { queue }
    }

    /// Inserts `job` and its view with the next batch; `Conflict` if its id is taken.
    pub async fn add(&self, job: &Job, view: &str) -> Result<(), StoreError> {
        let row = NewRow {
            id: job.id.to_string(),
            next_run_time: next_micros(job),
            pending: job.pending,
            job_state: job.to_state(),
            view: view.to_owned(),
        };
        let (done, outcome) = oneshot::channel();
        self.queue.send((row, done)).await.map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable(anyhow!("the store is closed"))
}

async fn write_batches<D: Dialect>(pool: Pool<D>, mut waiting: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The first insert woke this task; requests that were already read and parsed are
        // still queued on the runtime behind it. One turn of the run queue lets them join
        // this batch rather than wait for the next commit: larger batches, fewer commits.
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let (rows, answers): (Vec<NewRow>, Vec<_>) = batch.drain(..).unzip();
        match insert(&pool, &rows).await {
            Ok(inserted) => {
                let mut answered = HashSet::with_capacity(rows.len());
                for (row, answer) in rows.into_iter().zip(answers) {
                    // The first of a batch's rows with an id went in; a later one with the
                    // same id conflicts with it.
                    let went_in = match &inserted {
                        Inserted::All => true,
                        Inserted::Only(ids) => {
                            ids.contains(&row.id) && answered.insert(row.id.clone())
                        }
                    };
                    let outcome = if went_in {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict(row.id))
                    };
                    // A request that went away (client gone) needs no answer.
                    let _ = answer.send(outcome);
                }
            }
            Err(error) => {
                let unavailable = matches!(error, StoreError::Unavailable(_));
                let text = format!("{error:#}");
                for answer in answers {
                    let error = anyhow!("{text}");
                    let _ = answer.send(Err(if unavailable {
                        StoreError::Unavailable(error)
                    } else {
                        StoreError::Backend(error)
                    }));
                }
            }
        }
    }
}

/// Which rows of a batch went in.
enum Inserted {
    All,
    /// The ids that went in (each once, for the first row that had it).
    Only(HashSet<String>),
}

/// Writes `rows` in one statement.
///
/// First as a plain insert, which answers one count where `RETURNING` would have SQLite's
/// worker thread send a row per job back. A taken id (or one twice in the batch) aborts the
/// whole statement, which ran in its own transaction, so nothing went in; the batch is then
/// written again skipping taken ids, and answers the ones that went in.
async fn insert<D: Dialect>(pool: &Pool<D>, rows: &[NewRow]) -> Result<Inserted, StoreError> {
    let mut conn = pool.acquire().await?;
    match D::execute(&mut *conn, values(rows, "")).await {
        Ok(_) => Ok(Inserted::All),
        Err(error) if is_unique_violation(&error) => {
            let skipping = values(rows, " ON CONFLICT (id) DO NOTHING RETURNING id");
            let mut ids = HashSet::with_capacity(rows.len());
            for row in D::fetch_all(&mut *conn, skipping).await? {
                ids.extend(D::string(&row, 0)?);
            }
            Ok(Inserted::Only(ids))
        }
        Err(error) => Err(error.into()),
    }
}

/// The multi-row `INSERT` of `rows`, then `tail`. One statement text per batch size, each
/// prepared once and kept in the connection's statement cache: under a steady load the batch
/// sizes repeat.
fn values<'a>(rows: &'a [NewRow], tail: &str) -> Statement<'a> {
    let row = format!("({}, 0)", placeholders(5));
    let text = format!(
        "INSERT INTO tickd_jobs (id, next_run_time, pending, job_state, view_json, version) \
         VALUES {}{tail}",
        vec![row; rows.len()].join(", ")
    );
    let mut statement = Statement::built(text);
    for row in rows {
        statement = statement
            .bind(&row.id)
            .bind(row.next_run_time)
            .bind(row.pending)
            .bind(&row.job_state)
            .bind(&row.view);
    }
    statement
}
