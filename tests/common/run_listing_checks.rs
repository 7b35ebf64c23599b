//! The listing of runs across jobs in the store conformance suite (`tests/daemon/store.rs`):
//! every backend answers [`RunLog::list_runs`] the same way — newest (highest id) first
//! across jobs, paged by `before`, narrowed by job, statuses and a time range on the run's
//! creation, alone and combined, without the runs' output.
//!
//! The store already holds other checks' runs. These runs are made so that they can be told
//! apart and sort above them: ids `zz-01`… (above any UUIDv7), jobs of their own, and times
//! a year after the other checks' (2031).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tickd::job::{RunCause, RunId, RunRecord, RunStatus};
use tickd::store::{RunFilter, RunLog};

/// The statuses of runs 1 to 9, in order.
const STATUSES: [RunStatus; 9] = [
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::TimedOut,
    RunStatus::Failed,
    RunStatus::Succeeded,
    RunStatus::Missed,
    RunStatus::Failed,
    RunStatus::Running,
    RunStatus::Cancelled,
];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 6, 1, 0, 0, 0).unwrap()
}

/// When run `i` began: `i` minutes after [`base`].
fn began(i: i64) -> DateTime<Utc> {
    base() + TimeDelta::minutes(i)
}

/// Run `i` (1 to 9) of job `listing-a`, `-b` or `-c` in turn, with output.
fn run(i: usize) -> RunRecord {
    let job = ["listing-c", "listing-a", "listing-b"][i % 3];
    let minutes = i64::try_from(i).unwrap();
    let scheduled = i.is_multiple_of(2).then(|| began(minutes).fixed_offset());
    let mut run = RunRecord::new(
        began(minutes),
        job,
        scheduled,
        STATUSES[i - 1],
        if scheduled.is_some() {
            RunCause::Schedule
        } else {
            RunCause::RunNow
        },
        "host",
        "owner",
    );
    run.id = RunId::from(format!("zz-{i:02}"));
    run.stdout = format!("output of run {i}\n");
    run.stderr = "warnings\n".to_owned();
    run.stdout_truncated = i == 3;
    if run.status != RunStatus::Running {
        run.started_at = Some(began(minutes));
        run.finished_at = Some(began(minutes) + TimeDelta::seconds(5));
        run.exit_code = Some(i32::from(run.status != RunStatus::Succeeded));
    }
    run
}

/// A run as the listing answers it: without its output.
fn listed(run: &RunRecord) -> RunRecord {
    RunRecord {
        stdout: String::new(),
        stderr: String::new(),
        ..run.clone()
    }
}

/// The ids a filter answers.
async fn ids(store: &dyn RunLog, filter: &RunFilter) -> Vec<String> {
    let runs = store.list_runs(filter).await.unwrap();
    runs.iter().map(|r| r.id.to_string()).collect()
}

/// `zz-NN` for each `i`.
fn named(numbers: &[usize]) -> Vec<String> {
    numbers.iter().map(|i| format!("zz-{i:02}")).collect()
}

/// This check's whole time range, which no other check's run is in.
fn mine(limit: u32) -> RunFilter {
    RunFilter {
        since: Some(base()),
        until: Some(base() + TimeDelta::days(1)),
        limit,
        ..RunFilter::default()
    }
}

/// Lists runs across jobs as every store must. Leaves its runs in the store.
pub async fn run_listing_conforms(store: &dyn RunLog) {
    let runs: Vec<RunRecord> = (1..=9).map(run).collect();
    for run in &runs {
        store.insert_run(run).await.unwrap();
    }
    let newest_first: Vec<RunRecord> = runs.iter().rev().map(listed).collect();

    // Unfiltered: these runs are the newest of the store, whole but for their output.
    let all = RunFilter {
        limit: 9,
        ..RunFilter::default()
    };
    assert_eq!(
        store.list_runs(&all).await.unwrap(),
        newest_first,
        "newest first across jobs, without output"
    );
    let more = RunFilter {
        limit: 500,
        ..RunFilter::default()
    };
    let every = ids(store, &more).await;
    assert_eq!(every[..9], named(&[9, 8, 7, 6, 5, 4, 3, 2, 1]));
    assert!(
        every[9..].iter().all(|id| !id.starts_with("zz-")),
        "older runs follow"
    );
    let mut sorted = every.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(every, sorted, "every run by id, highest first");

    // Limits.
    assert!(
        ids(store, &RunFilter::default()).await.is_empty(),
        "limit 0"
    );
    let one = RunFilter {
        limit: 1,
        ..RunFilter::default()
    };
    assert_eq!(ids(store, &one).await, named(&[9]));

    // Pages with `before`, inside the time range.
    let page = |before: Option<&str>| RunFilter {
        before: before.map(str::to_owned),
        ..mine(4)
    };
    assert_eq!(ids(store, &page(None)).await, named(&[9, 8, 7, 6]));
    assert_eq!(ids(store, &page(Some("zz-06"))).await, named(&[5, 4, 3, 2]));
    assert_eq!(ids(store, &page(Some("zz-02"))).await, named(&[1]));
    assert!(ids(store, &page(Some("zz-01"))).await.is_empty());
    let before_all = RunFilter {
        before: Some("zz-06".to_owned()),
        limit: 3,
        ..RunFilter::default()
    };
    assert_eq!(ids(store, &before_all).await, named(&[5, 4, 3]));

    // A job.
    let job = |job: &str, before: Option<&str>| RunFilter {
        job: Some(job.to_owned()),
        before: before.map(str::to_owned),
        limit: 100,
        ..RunFilter::default()
    };
    assert_eq!(ids(store, &job("listing-a", None)).await, named(&[7, 4, 1]));
    assert_eq!(ids(store, &job("listing-c", None)).await, named(&[9, 6, 3]));
    assert_eq!(
        ids(store, &job("listing-a", Some("zz-07"))).await,
        named(&[4, 1])
    );
    assert!(ids(store, &job("listing-nobody", None)).await.is_empty());

    // Statuses, inside the time range and across the store.
    let statuses = |statuses: &[RunStatus]| RunFilter {
        statuses: statuses.to_vec(),
        ..mine(100)
    };
    assert_eq!(
        ids(store, &statuses(&[RunStatus::Failed])).await,
        named(&[7, 4, 2])
    );
    assert_eq!(
        ids(store, &statuses(&[RunStatus::Failed, RunStatus::TimedOut])).await,
        named(&[7, 4, 3, 2])
    );
    assert_eq!(
        ids(store, &statuses(&[RunStatus::Running])).await,
        named(&[8])
    );
    assert!(
        ids(store, &statuses(&[RunStatus::Skipped]))
            .await
            .is_empty()
    );
    let failed_anywhere = RunFilter {
        statuses: vec![RunStatus::Failed],
        limit: 500,
        ..RunFilter::default()
    };
    let failed = store.list_runs(&failed_anywhere).await.unwrap();
    assert_eq!(
        failed[..3]
            .iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>(),
        named(&[7, 4, 2])
    );
    assert!(failed.iter().all(|r| r.status == RunStatus::Failed));
    let failed_page = RunFilter {
        statuses: vec![RunStatus::Failed],
        before: Some("zz-07".to_owned()),
        limit: 1,
        ..RunFilter::default()
    };
    assert_eq!(ids(store, &failed_page).await, named(&[4]));

    // A time range: since inclusive, until exclusive.
    let range = |since: Option<i64>, until: Option<i64>, limit| RunFilter {
        since: since.map(began),
        until: until.map(began),
        limit,
        ..RunFilter::default()
    };
    assert_eq!(
        ids(store, &range(Some(3), Some(6), 100)).await,
        named(&[5, 4, 3])
    );
    assert_eq!(
        ids(store, &range(Some(7), None, 100)).await,
        named(&[9, 8, 7])
    );
    let until = ids(store, &range(None, Some(3), 500)).await;
    assert_eq!(until[..2], named(&[2, 1]));
    assert!(until[2..].iter().all(|id| !id.starts_with("zz-")));
    assert!(ids(store, &range(Some(10), None, 100)).await.is_empty());
    let ranged_page = RunFilter {
        before: Some("zz-05".to_owned()),
        ..range(Some(3), Some(6), 1)
    };
    assert_eq!(ids(store, &ranged_page).await, named(&[4]));

    // Combined.
    let combined = RunFilter {
        job: Some("listing-b".to_owned()),
        statuses: vec![RunStatus::Failed, RunStatus::Missed],
        since: Some(began(2)),
        until: Some(began(9)),
        before: None,
        limit: 10,
    };
    assert_eq!(ids(store, &combined).await, named(&[2]));
    let combined = RunFilter {
        job: Some("listing-c".to_owned()),
        statuses: vec![RunStatus::Missed, RunStatus::Cancelled, RunStatus::TimedOut],
        since: Some(began(3)),
        ..mine(10)
    };
    assert_eq!(ids(store, &combined).await, named(&[9, 6, 3]));
    let combined = RunFilter {
        before: Some("zz-09".to_owned()),
        limit: 1,
        ..combined
    };
    assert_eq!(ids(store, &combined).await, named(&[6]));
    let nothing = RunFilter {
        job: Some("listing-a".to_owned()),
        statuses: vec![RunStatus::Succeeded],
        ..mine(10)
    };
    assert_eq!(ids(store, &nothing).await, named(&[1]));
    let nothing = RunFilter {
        since: Some(began(2)),
        ..nothing
    };
    assert!(ids(store, &nothing).await.is_empty());
}
