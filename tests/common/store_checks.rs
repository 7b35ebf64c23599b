//! What the store tests (`tests/daemon/store.rs`, `tests/daemon/store_redis.rs`, the outage tests) do the
//! same way: claim due jobs as the scheduler does ([`ClaimDue`]), list the ids of the jobs a
//! store answers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use tickd::job::Job;
use tickd::store::{Claim, JobStore, StoreError};

/// Both halves of a claim, as the scheduler's pass does them: reads up to `limit` jobs due by
/// `now`, asks `decide` what to do with each, and commits.
pub trait ClaimDue {
    async fn claim_due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: &(dyn Fn(&Job) -> Claim + Send + Sync),
    ) -> Result<Vec<(Job, Claim)>, StoreError>;
}

impl<S: JobStore + ?Sized> ClaimDue for S {
    async fn claim_due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        decide: &(dyn Fn(&Job) -> Claim + Send + Sync),
    ) -> Result<Vec<(Job, Claim)>, StoreError> {
        let jobs = self.due_jobs(now, limit).await?;
        let claims = jobs
            .into_iter()
            .map(|job| {
                let claim = decide(&job);
                (job, claim)
            })
            .collect();
        self.commit_claims(claims).await
    }
}

/// The ids of the jobs `get_all_jobs` answers, in its order.
pub async fn listed_ids(store: &(impl JobStore + ?Sized)) -> Vec<String> {
    let jobs = store.get_all_jobs().await.unwrap();
    jobs.into_iter().map(|job| job.id.into()).collect()
}
