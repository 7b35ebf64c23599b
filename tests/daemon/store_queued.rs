//! The store contract for runs that wait (job options `retry` and `overlap`): a `queued` run
//! is listed when due, in due order; exactly one writer takes it (a compare-and-set on its
//! status); it keeps its attempt, the run it retries and its due time; retention leaves it.
//! Run by `store.rs` on every backend, and across two stores sharing a database.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tickd::job::{RunCause, RunRecord, RunStatus};
use tickd::store::{self, RunFilter, Store};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()
}

fn queued(job: &str, due: DateTime<Utc>, attempt: u32, retry_of: Option<&RunRecord>) -> RunRecord {
    let mut run = RunRecord::new(
        t0(),
        job,
        None,
        RunStatus::Queued,
        RunCause::Retry,
        "host",
        "daemon-a",
    );
    run.attempt = attempt;
    run.retry_of = retry_of.map(|run| run.id.clone());
    run.due_at = Some(due);
    run.reason = Some("retry 1 of 3".to_owned());
    run
}

/// `run` as a daemon takes it: running, its own.
fn taken_by(run: &RunRecord, owner: &str) -> RunRecord {
    let mut taken = run.clone();
    taken.status = RunStatus::Running;
    taken.owner = owner.to_owned();
    taken.node = format!("{owner}-host");
    taken.reason = None;
    taken.started_at = Some(t0() + TimeDelta::seconds(30));
    taken
}

/// Due order, the round trip of the new fields, the compare-and-set, cancel while queued,
/// and retention; leaves no run behind.
pub async fn queued_runs_conform(store: &dyn Store) {
    let first = RunRecord::new(
        t0(),
        "flaky",
        None,
        RunStatus::Failed,
        RunCause::RunNow,
        "host",
        "daemon-a",
    );
    store.insert_run(&first).await.unwrap();
    let later = queued("flaky", t0() + TimeDelta::seconds(20), 3, Some(&first));
    let mut sooner = queued("flaky", t0() + TimeDelta::seconds(10), 2, Some(&first));
    // What it runs should the job be gone by then (its trigger ran out).
    sooner.job_state = Some("{\"version\": 1, \"id\": \"flaky\"}".to_owned());
    let other = queued("other", t0() + TimeDelta::seconds(10), 2, None);
    for run in [&later, &sooner, &other] {
        store.insert_run(run).await.unwrap();
    }
    assert_eq!(
        store.get_run(&sooner.id).await.unwrap().as_ref(),
        Some(&sooner)
    );

    // Due by a time: earliest due first, ties by id; none after it.
    assert!(store.due_runs(t0(), 10).await.unwrap().is_empty());
    let due = store
        .due_runs(t0() + TimeDelta::seconds(15), 10)
        .await
        .unwrap();
    let ids: Vec<_> = due.iter().map(|run| run.id.clone()).collect();
    assert_eq!(ids, [sooner.id.clone(), other.id.clone()]);
    assert_eq!(
        due[0], sooner,
        "read back whole: attempt, retry_of, due_at, job state"
    );
    assert_eq!(
        store
            .due_runs(t0() + TimeDelta::seconds(60), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.next_due_run(t0()).await.unwrap(),
        Some(t0() + TimeDelta::seconds(10))
    );
    assert_eq!(
        store
            .next_due_run(t0() + TimeDelta::seconds(10))
            .await
            .unwrap(),
        Some(t0() + TimeDelta::seconds(20))
    );
    assert_eq!(
        store
            .next_due_run(t0() + TimeDelta::seconds(20))
            .await
            .unwrap(),
        None
    );

    // Taken once: the second taker finds it running and writes nothing.
    assert!(
        store
            .take_queued_run(&taken_by(&sooner, "daemon-b"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_queued_run(&taken_by(&sooner, "daemon-c"))
            .await
            .unwrap()
    );
    let stored = store.get_run(&sooner.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.owner.as_str()),
        (RunStatus::Running, "daemon-b")
    );
    assert_eq!(
        stored.due_at, sooner.due_at,
        "the due time is kept once started"
    );
    let due = store
        .due_runs(t0() + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert!(
        due.iter().all(|run| run.id != sooner.id),
        "a taken run is not due any more"
    );

    // Cancelled while queued: it is no longer there to take.
    let mut cancelled = later.clone();
    cancelled.status = RunStatus::Cancelled;
    cancelled.finished_at = Some(t0());
    assert!(store.take_queued_run(&cancelled).await.unwrap());
    assert!(
        !store
            .take_queued_run(&taken_by(&later, "daemon-b"))
            .await
            .unwrap()
    );

    // Retention keeps what has not ended: `other` waits, `sooner` runs.
    store
        .prune_runs(t0() + TimeDelta::days(3650), 0)
        .await
        .unwrap();
    for (id, kept) in [
        (&other.id, true),
        (&sooner.id, true),
        (&later.id, false),
        (&first.id, false),
    ] {
        assert_eq!(store.get_run(id).await.unwrap().is_some(), kept, "{id}");
    }
    let listed = store
        .list_runs(&RunFilter {
            statuses: vec![RunStatus::Queued],
            limit: 10,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attempt, 2, "the listing carries the attempt");

    // Leave nothing behind.
    let mut done = taken_by(&sooner, "daemon-b");
    done.status = RunStatus::Succeeded;
    done.finished_at = Some(t0());
    store.update_run(&done).await.unwrap();
    let mut gone = other.clone();
    gone.status = RunStatus::Skipped;
    gone.finished_at = Some(t0());
    assert!(store.take_queued_run(&gone).await.unwrap());
    store
        .prune_runs(t0() + TimeDelta::days(3650), 0)
        .await
        .unwrap();
    assert!(
        store
            .due_runs(t0() + TimeDelta::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two stores on one database (two daemons) taking the same 50 queued runs at once: each run
/// is taken by exactly one of them.
pub async fn queued_runs_are_taken_once_across_daemons(url: &str, other_url: &str) {
    let a = store::open(url).await.unwrap();
    let b = store::open(other_url).await.unwrap();
    let runs: Vec<RunRecord> = (0..50)
        .map(|i| queued(&format!("job-{i}"), t0(), 2, None))
        .collect();
    for run in &runs {
        a.insert_run(run).await.unwrap();
    }
    let take_all = |store: std::sync::Arc<dyn Store>, owner: &'static str| {
        let runs = runs.clone();
        tokio::spawn(async move {
            let mut taken = 0;
            for run in &runs {
                if store.take_queued_run(&taken_by(run, owner)).await.unwrap() {
                    taken += 1;
                }
            }
            taken
        })
    };
    let (by_a, by_b) = tokio::join!(
        take_all(a.clone(), "daemon-a"),
        take_all(b.clone(), "daemon-b")
    );
    assert_eq!(by_a.unwrap() + by_b.unwrap(), 50, "each run taken once");
    for run in &runs {
        let stored = a.get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Running);
    }
    a.close().await;
    b.close().await;
}
