//! The second half of a claim on SQL ([`JobStore::commit_claims`]): one transaction per
//! batch, the same on every dialect.
//!
//! 1. The batch's rows are read with their versions, locked where the database has row locks
//!    (`FOR UPDATE SKIP LOCKED`: a row another daemon's claim holds is skipped, not waited
//!    for); SQLite takes the whole database up front (`BEGIN IMMEDIATE`).
//! 2. A decision is kept only if its job is still at the version it was decided on.
//! 3. The kept decisions are written in a few statements: their run records in multi-row
//!    `INSERT`s, the finished jobs in `DELETE ... IN`, then an `UPDATE` per advanced job.
//!    A run record for a fire time taken already (`UNIQUE(job_id, scheduled_micros)`) rolls
//!    the batch back to its savepoint, and the batch is written again job by job, each in a
//!    savepoint of its own, so that only that job's runs are left out — it still advances.
//!
//! [`JobStore::commit_claims`]: crate::store::JobStore::commit_claims

use std::collections::HashMap;

use sqlx::{Connection, Transaction};

use super::dialect::{Dialect, Statement, placeholders};
use super::jobs::overwrite;
use super::{SqlStore, is_unique_violation, rows};
use crate::job::{Job, RunRecord};
use crate::store::{Claim, StoreError};

/// Run records per multi-row `INSERT` (17 values each, well below every database's limit).
const RUNS_PER_INSERT: usize = 64;

impl<D: Dialect> SqlStore<D> {
    /// See the module's doc.
    pub(super) async fn commit(
        &self,
        claims: Vec<(Job, Claim)>,
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        if claims.is_empty() {
            return Ok(claims);
        }
        let mut conn = self.conn().await?;
        if let Some(before) = D::BEFORE_CLAIM {
            D::execute(&mut *conn, Statement::new(before)).await?;
        }
        let mut tx = Connection::begin_with(&mut *conn, D::BEGIN_CLAIM).await?;
        let current = versions(&mut tx, claims.iter().map(|(job, _)| job.id.as_str())).await?;
        let mut kept: Vec<(Job, Claim)> = claims
            .into_iter()
            .filter(|(job, _)| current.get(job.id.as_str()) == Some(&job.version))
            .collect();
        if !record_claims(&mut tx, &kept).await? {
            for (job, claim) in &mut kept {
                if !record_claim(&mut tx, job, claim).await? {
                    claim.runs.clear();
                }
            }
        }
        tx.commit().await?;
        Ok(kept)
    }
}

/// The stored versions of the jobs `ids` names (gone ones, and ones another claim holds, are
/// absent), their rows locked until the transaction ends.
async fn versions<'a, D: Dialect>(
    tx: &mut Transaction<'_, D>,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, i64>, StoreError> {
    let ids: Vec<&str> = ids.collect();
    let mut current = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(D::IDS_PER_STATEMENT) {
        let read = Statement::built(format!(
            "SELECT id, version FROM tickd_jobs WHERE id IN ({}){}",
            placeholders(chunk.len()),
            D::SKIP_LOCKED
        ))
        .bind_all(chunk.iter().copied());
        for row in D::fetch_all(&mut *tx, read).await? {
            if let (Some(id), Some(version)) = (D::string(&row, 0)?, D::int(&row, 1)?) {
                current.insert(id, version);
            }
        }
    }
    Ok(current)
}

/// Inserts `runs`, in as few statements as it takes; `Ok(false)` when one of them exists
/// already (its statement failed; the caller rolls back).
async fn insert_runs<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    runs: &[&RunRecord],
) -> Result<bool, StoreError> {
    for chunk in runs.chunks(RUNS_PER_INSERT) {
        match D::execute(&mut *tx, rows::insert_runs::<D>(chunk)).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Writes a claim's job: its advance (next fire time, state and view, version bumped), or
/// its removal.
async fn write_job<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    job: &Job,
    claim: &Claim,
) -> Result<(), StoreError> {
    let statement = match &claim.next {
        Some(next) => overwrite(next, &claim.view, ""),
        None => Statement::new("DELETE FROM tickd_jobs WHERE id = ?").bind(&job.id),
    };
    D::execute(&mut *tx, statement).await?;
    Ok(())
}

/// Records a whole batch of claims: false, with nothing written, when one of its run
/// records exists already.
async fn record_claims<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    claims: &[(Job, Claim)],
) -> Result<bool, StoreError> {
    D::execute(&mut *tx, Statement::new("SAVEPOINT claims")).await?;
    let runs: Vec<&RunRecord> = claims.iter().flat_map(|(_, claim)| &claim.runs).collect();
    if !insert_runs(tx, &runs).await? {
        D::execute(&mut *tx, Statement::new("ROLLBACK TO SAVEPOINT claims")).await?;
        D::execute(&mut *tx, Statement::new("RELEASE SAVEPOINT claims")).await?;
        return Ok(false);
    }
    let finished: Vec<&str> = claims
        .iter()
        .filter(|(_, claim)| claim.next.is_none())
        .map(|(job, _)| job.id.as_str())
        .collect();
    for chunk in finished.chunks(D::IDS_PER_STATEMENT) {
        let delete = Statement::built(format!(
            "DELETE FROM tickd_jobs WHERE id IN ({})",
            placeholders(chunk.len())
        ));
        D::execute(&mut *tx, delete.bind_all(chunk.iter().copied())).await?;
    }
    for (job, claim) in claims.iter().filter(|(_, claim)| claim.next.is_some()) {
        write_job(tx, job, claim).await?;
    }
    D::execute(&mut *tx, Statement::new("RELEASE SAVEPOINT claims")).await?;
    Ok(true)
}

/// Records one claim in a savepoint of its own. When a run record for one of its fire times
/// exists already (that fire time was handled), none of the claim's runs are kept but the
/// job still advances — else it would stay due and be claimed again at once — and false is
/// answered: there is nothing to start.
async fn record_claim<D: Dialect>(
    tx: &mut Transaction<'_, D>,
    job: &Job,
    claim: &Claim,
) -> Result<bool, StoreError> {
    D::execute(&mut *tx, Statement::new("SAVEPOINT claim")).await?;
    let runs: Vec<&RunRecord> = claim.runs.iter().collect();
    let fresh = insert_runs(tx, &runs).await?;
    if !fresh {
        D::execute(&mut *tx, Statement::new("ROLLBACK TO SAVEPOINT claim")).await?;
    }
    write_job(tx, job, claim).await?;
    D::execute(&mut *tx, Statement::new("RELEASE SAVEPOINT claim")).await?;
    Ok(fresh)
}
