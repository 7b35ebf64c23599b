//! Checks of the `JobStore` contract shared by the SQL suite (`tests/store.rs`) and the
//! Redis suite (`tests/store_redis.rs`). Each takes the suite's way of making a job (ids and
//! next fire times; the rest as the suite likes) and leaves the jobs it added behind for the
//! caller to clear.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::TryStreamExt;
use tickd::api::view::render;
use tickd::job::Job;
use tickd::store::{Claim, JobStore, Store, StoreError, StoredView, ViewBody, ViewFilter};

/// A view's text: as the store kept it, or rendered from the job it gave back.
pub fn text(view: &StoredView) -> String {
    match &view.body {
        ViewBody::Rendered(text) => text.clone(),
        ViewBody::Job(job) => render(job),
    }
}

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

/// Views stream in listing order (next fire time, paused and pending last), each the job's
/// own rendering and the same as `get_job_view`; the pending filter finds pending jobs, in
/// the same order.
pub async fn streams_views_in_order(
    store: &dyn Store,
    job: impl Fn(&str, Option<DateTime<Utc>>) -> Job,
    t0: DateTime<Utc>,
) {
    let hours = TimeDelta::hours;
    let mut pending = job("pending", Some(t0 + hours(3)));
    pending.pending = true;
    // Sorts after "pending" by id, before it by fire time.
    let mut pending_soon = job("pending-soon", Some(t0 + TimeDelta::minutes(30)));
    pending_soon.pending = true;
    let jobs = [
        job("paused", None),
        job("late", Some(t0 + hours(2))),
        job("early", Some(t0 + hours(1))),
        pending,
        pending_soon,
    ];
    for job in &jobs {
        store.add_job(job, &render(job)).await.unwrap();
    }
    let views: Vec<StoredView> = store
        .stream_job_views(ViewFilter::All)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<&str> = views.iter().map(|view| view.id.as_str()).collect();
    assert_eq!(ids, ["pending-soon", "early", "late", "pending", "paused"]);
    for view in &views {
        let job = jobs.iter().find(|job| job.id == view.id).unwrap();
        assert_eq!(text(view), render(job), "the kept view is the job's");
        assert_eq!(view.pending, job.pending);
        assert_eq!(
            view.next_run_time,
            job.next_run_time.map(|t| t.timestamp_micros())
        );
        assert_eq!(
            store.get_job_view(&view.id).await.unwrap().as_ref(),
            Some(view)
        );
    }
    assert_eq!(store.get_job_view("missing").await.unwrap(), None);
    // The pending jobs, in listing order.
    let pending: Vec<StoredView> = store
        .stream_job_views(ViewFilter::Pending)
        .try_collect()
        .await
        .unwrap();
    let pending_ids: Vec<&str> = pending.iter().map(|view| view.id.as_str()).collect();
    assert_eq!(pending_ids, ["pending-soon", "pending"], "listing order");
    assert!(pending.iter().all(|view| view.pending));
}

/// 60 inserts at once over 20 ids: each id goes in once, every other insert of it is a
/// conflict of its own, whatever batch the store put them in.
pub async fn concurrent_adds_keep_their_own_outcomes(
    store: &dyn Store,
    job: impl Fn(&str, Option<DateTime<Utc>>) -> Job,
    t0: DateTime<Utc>,
) {
    let jobs: Vec<Job> = (0..60)
        .map(|n| job(&format!("c{}", n % 20), Some(t0 + TimeDelta::hours(n))))
        .collect();
    let outcomes = futures_util::future::join_all(jobs.iter().map(|job| async move {
        let view = render(job);
        store.add_job(job, &view).await
    }))
    .await;
    let mut added = BTreeSet::new();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        match outcome {
            Ok(()) => assert!(added.insert(job.id.clone()), "{} added twice", job.id),
            Err(StoreError::Conflict(id)) => assert_eq!(id, job.id),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(added.len(), 20);
    for id in &added {
        let stored = store.lookup_job(id).await.unwrap().unwrap();
        assert!(
            jobs.iter().any(|job| job == &stored),
            "{id} is one of the jobs sent"
        );
    }
}
