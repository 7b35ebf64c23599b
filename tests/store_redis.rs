//! The Redis job store against a real server: every `JobStore` method's contract, the key
//! layout's housekeeping, and the single-daemon lock.
//!
//! Needs `TICKD_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`), and `redis-server` on PATH
//! for the outage test; without the variable these tests show as ignored. Each test works
//! under its own random key prefix and deletes its keys at the end, even when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone, Utc};
use common::db::Space;
use common::store_checks;
use common::store_checks::ClaimDue;
use redis::Commands;
use serde_json::json;
use tickd::api::view::render;
use tickd::job::{Job, JobDefaults, JobSpec, RunCause, RunRecord, RunStatus};
use tickd::store::{
    Claim, JobStore, Membership, NodeRecord, Orphans, RedisStore, RunLog, Store, StoreError,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

/// An interval job (every 10 s) due at `next` (`None` = paused).
fn job(id: &str, next: Option<DateTime<Utc>>) -> Job {
    let body = json!({"id": id, "func": "task:success", "args": ["test.py"],
                      "trigger": "interval", "seconds": 10});
    let mut job = JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, t0())
        .unwrap()
        .job;
    job.next_run_time = next.map(|t| t.fixed_offset());
    job
}

/// The store under `space`'s prefix.
async fn open(space: &Space) -> RedisStore {
    RedisStore::open(&space.url("")).await.unwrap()
}

fn fixed(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.fixed_offset()
}

fn run(
    job_id: &str,
    scheduled: Option<DateTime<Utc>>,
    status: RunStatus,
    owner: &str,
) -> RunRecord {
    RunRecord::new(
        t0(),
        job_id,
        scheduled.map(fixed),
        status,
        if scheduled.is_some() {
            RunCause::Schedule
        } else {
            RunCause::RunNow
        },
        "host-a",
        owner,
    )
}

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn add_lookup_and_conflict() {
    let space = Space::fresh();
    let store = open(&space).await;
    let a = job("a", Some(t0()));
    assert!(store.lookup_job("a").await.unwrap().is_none());
    store.add_job(&a, &render(&a)).await.unwrap();
    let found = store.lookup_job("a").await.unwrap().unwrap();
    assert_eq!(found, a, "the state round-trips");
    assert_eq!(found.version, 0);
    match store
        .add_job(&job("a", None), &render(&job("a", None)))
        .await
    {
        Err(StoreError::Conflict(id)) => assert_eq!(id, "a"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.lookup_job("a").await.unwrap().unwrap().next_run_time,
        a.next_run_time,
        "the refused add changed nothing"
    );
    // Ids are opaque: colons, spaces and non-ASCII are fine.
    let odd = job("x:y z/é", None);
    store.add_job(&odd, &render(&odd)).await.unwrap();
    assert_eq!(store.lookup_job("x:y z/é").await.unwrap().unwrap(), odd);
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn update_is_compare_and_set_on_the_version() {
    let space = Space::fresh();
    let store = open(&space).await;
    store
        .add_job(&job("a", Some(t0())), &render(&job("a", Some(t0()))))
        .await
        .unwrap();
    let mut a = store.lookup_job("a").await.unwrap().unwrap();
    a.name = "renamed".into();
    a.next_run_time = Some(fixed(t0() + TimeDelta::seconds(30)));
    store.update_job(&a, &render(&a)).await.unwrap();
    let now = store.lookup_job("a").await.unwrap().unwrap();
    assert_eq!(now.version, 1);
    assert_eq!(now.name, "renamed");
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0() + TimeDelta::seconds(30)),
        "the index follows"
    );
    // The same (old) version again: another writer got there first.
    match store.update_job(&a, &render(&a)).await {
        Err(StoreError::Stale(id)) => assert_eq!(id, "a"),
        other => panic!("expected Stale, got {other:?}"),
    }
    // Pausing through an update takes it out of the index.
    let mut paused = now.clone();
    paused.next_run_time = None;
    store.update_job(&paused, &render(&paused)).await.unwrap();
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    assert_eq!(store.lookup_job("a").await.unwrap().unwrap().version, 2);
    match store
        .update_job(&job("ghost", None), &render(&job("ghost", None)))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "ghost"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(
        store.lookup_job("ghost").await.unwrap().is_none(),
        "no upsert"
    );
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn replace_inserts_or_overwrites_whatever_the_version() {
    let space = Space::fresh();
    let store = open(&space).await;
    let a = job("a", Some(t0()));
    store.replace_job(&a, &render(&a)).await.unwrap();
    assert_eq!(store.lookup_job("a").await.unwrap().unwrap().version, 0);
    let mut b = job("a", Some(t0() + TimeDelta::hours(1)));
    b.version = 42; // ignored
    b.name = "second".into();
    store.replace_job(&b, &render(&b)).await.unwrap();
    let now = store.lookup_job("a").await.unwrap().unwrap();
    assert_eq!(now.name, "second");
    assert_eq!(now.version, 1);
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0() + TimeDelta::hours(1))
    );
    store
        .replace_job(&job("a", None), &render(&job("a", None)))
        .await
        .unwrap();
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    assert_eq!(store.get_all_jobs().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn remove_deletes_or_says_not_found() {
    let space = Space::fresh();
    let store = open(&space).await;
    store
        .add_job(&job("a", Some(t0())), &render(&job("a", Some(t0()))))
        .await
        .unwrap();
    store.remove_job("a").await.unwrap();
    assert!(store.lookup_job("a").await.unwrap().is_none());
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    match store.remove_job("a").await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "a"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // The id is free again, at version 0.
    store
        .add_job(&job("a", None), &render(&job("a", None)))
        .await
        .unwrap();
    assert_eq!(store.lookup_job("a").await.unwrap().unwrap().version, 0);
    store.close().await;
    let left = space.keys();
    assert!(
        left.iter().all(|k| !k.ends_with("run_times")),
        "an empty index leaves no key: {left:?}"
    );
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn jobs_are_listed_by_next_run_time_then_id_paused_last() {
    let space = Space::fresh();
    let store = open(&space).await;
    assert!(store.get_all_jobs().await.unwrap().is_empty());
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    let t = t0();
    // "d" is due at the same instant as "b" but written with a +05:30 offset.
    let mut d = job("d", None);
    d.next_run_time =
        Some((t + TimeDelta::seconds(5)).with_timezone(&FixedOffset::east_opt(19_800).unwrap()));
    for j in [
        job("z-paused", None),
        job("c", Some(t + TimeDelta::seconds(5))),
        job("a", Some(t + TimeDelta::seconds(9))),
        job("b", Some(t + TimeDelta::seconds(5))),
        job("e", Some(t - TimeDelta::days(400))),
        job("a-paused", None),
        d,
    ] {
        store.add_job(&j, &render(&j)).await.unwrap();
    }
    let all = store.get_all_jobs().await.unwrap();
    assert_eq!(ids(&all), ["e", "b", "c", "d", "a", "a-paused", "z-paused"]);
    assert_eq!(
        all[3].next_run_time.unwrap().offset().local_minus_utc(),
        19_800,
        "the offset is kept"
    );
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t - TimeDelta::days(400))
    );
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn views_stream_in_listing_order_and_pending_ones_are_found() {
    let space = Space::fresh();
    let store = open(&space).await;
    store_checks::streams_views_in_order(&store, job, t0()).await;
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn concurrent_adds_keep_their_own_outcomes() {
    let space = Space::fresh();
    let store = open(&space).await;
    store_checks::concurrent_adds_keep_their_own_outcomes(&store, job, t0()).await;
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn claim_advances_removes_and_records_due_jobs() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    store
        .add_job(
            &job("advance", Some(now - TimeDelta::seconds(20))),
            &render(&job("advance", Some(now - TimeDelta::seconds(20)))),
        )
        .await
        .unwrap();
    store
        .add_job(
            &job("finish", Some(now - TimeDelta::seconds(5))),
            &render(&job("finish", Some(now - TimeDelta::seconds(5)))),
        )
        .await
        .unwrap();
    store
        .add_job(
            &job("later", Some(now + TimeDelta::seconds(1))),
            &render(&job("later", Some(now + TimeDelta::seconds(1)))),
        )
        .await
        .unwrap();
    store
        .add_job(&job("paused", None), &render(&job("paused", None)))
        .await
        .unwrap();
    store
        .add_job(
            &job("exactly-now", Some(now)),
            &render(&job("exactly-now", Some(now))),
        )
        .await
        .unwrap();

    let seen = Mutex::new(Vec::new());
    let decide = |j: &Job| {
        seen.lock().unwrap().push(j.id.clone());
        let fire = j.next_run_time.unwrap();
        let record = RunRecord::new(
            now,
            &j.id,
            Some(fire),
            RunStatus::Running,
            RunCause::Schedule,
            "host-a",
            "me",
        );
        let next = (j.id != "finish").then(|| {
            let mut next = j.clone();
            next.next_run_time = Some(fire + TimeDelta::seconds(30));
            next
        });
        Claim {
            view: String::new(),
            next,
            runs: vec![record],
        }
    };
    let claimed = store.claim_due_jobs(now, 10, &decide).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["advance", "finish", "exactly-now"],
        "due by now (inclusive), earliest first"
    );
    let claimed_ids: Vec<&str> = claimed.iter().map(|(j, _)| j.id.as_str()).collect();
    assert_eq!(claimed_ids, ["advance", "finish", "exactly-now"]);
    assert_eq!(claimed[0].0.version, 0, "answered as claimed");

    let advanced = store.lookup_job("advance").await.unwrap().unwrap();
    assert_eq!(advanced.version, 1);
    assert_eq!(
        advanced.next_run_time,
        Some(fixed(now + TimeDelta::seconds(10)))
    );
    assert!(
        store.lookup_job("finish").await.unwrap().is_none(),
        "a trigger that ran out removes the job"
    );
    let later = store.lookup_job("later").await.unwrap().unwrap();
    assert_eq!(later.version, 0, "not due: untouched");
    assert_eq!(
        store.lookup_job("paused").await.unwrap().unwrap().version,
        0
    );
    for (j, claim) in &claimed {
        let stored = store.get_run(&claim.runs[0].id).await.unwrap().unwrap();
        assert_eq!(stored, claim.runs[0], "the run record of {}", j.id);
    }
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(now + TimeDelta::seconds(1))
    );
    // Nothing is due any more.
    let again = store.claim_due_jobs(now, 10, &decide).await.unwrap();
    assert!(again.is_empty());
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn claim_takes_at_most_limit_earliest_first() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    for (i, id) in ["d", "c", "b", "a"].iter().enumerate() {
        let secs = i64::try_from(i).unwrap();
        store
            .add_job(
                &job(id, Some(now - TimeDelta::seconds(10 - secs))),
                &render(&job(id, Some(now - TimeDelta::seconds(10 - secs)))),
            )
            .await
            .unwrap();
    }
    // Same instant as "d": ties by id.
    store
        .add_job(
            &job("0", Some(now - TimeDelta::seconds(10))),
            &render(&job("0", Some(now - TimeDelta::seconds(10)))),
        )
        .await
        .unwrap();
    let decide = |j: &Job| Claim {
        view: String::new(),
        next: Some(Job {
            next_run_time: None,
            ..j.clone()
        }),
        runs: Vec::new(),
    };
    let claimed = store.claim_due_jobs(now, 2, &decide).await.unwrap();
    let claimed_ids: Vec<&str> = claimed.iter().map(|(j, _)| j.id.as_str()).collect();
    assert_eq!(claimed_ids, ["0", "d"]);
    assert!(
        store
            .claim_due_jobs(now, 0, &decide)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_due_jobs(now, 10, &decide).await.unwrap();
    assert_eq!(claimed.len(), 3);
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn claim_advances_a_job_whose_fire_time_has_a_run_already_without_recording() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    let fire = now - TimeDelta::seconds(3);
    store
        .add_job(
            &job("taken", Some(fire)),
            &render(&job("taken", Some(fire))),
        )
        .await
        .unwrap();
    store
        .add_job(&job("free", Some(fire)), &render(&job("free", Some(fire))))
        .await
        .unwrap();
    // Another daemon already recorded (taken, fire).
    let theirs = run("taken", Some(fire), RunStatus::Running, "other");
    store.insert_run(&theirs).await.unwrap();
    let decide = |j: &Job| {
        let mut next = j.clone();
        next.next_run_time = Some(fixed(now + TimeDelta::seconds(7)));
        Claim {
            view: String::new(),
            next: Some(next),
            runs: vec![
                run(
                    &j.id,
                    Some(fire - TimeDelta::seconds(10)),
                    RunStatus::Missed,
                    "me",
                ),
                run(&j.id, Some(fire), RunStatus::Running, "me"),
            ],
        }
    };
    let claimed = store.claim_due_jobs(now, 10, &decide).await.unwrap();
    let recorded: Vec<(&str, usize)> = claimed
        .iter()
        .map(|(j, c)| (j.id.as_str(), c.runs.len()))
        .collect();
    assert_eq!(
        recorded,
        [("free", 2), ("taken", 0)],
        "taken comes back with no runs"
    );
    // It advances all the same, or it would stay due and be claimed again at once.
    let taken = store.lookup_job("taken").await.unwrap().unwrap();
    assert_eq!(taken.version, 1, "advanced");
    assert_eq!(
        taken.next_run_time,
        Some(fixed(now + TimeDelta::seconds(7)))
    );
    let runs = store.get_runs("taken", 10, None).await.unwrap();
    assert_eq!(runs, [theirs], "none of the claim's records went in");
    assert_eq!(store.get_runs("free", 10, None).await.unwrap().len(), 2);
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn claim_leaves_a_job_changed_while_it_was_decided() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    store
        .add_job(
            &job("a", Some(now - TimeDelta::seconds(1))),
            &render(&job("a", Some(now - TimeDelta::seconds(1)))),
        )
        .await
        .unwrap();
    let versions = space.key("versions");
    let decide = |j: &Job| {
        // Another writer bumps the version between the claim's read and its write.
        let _: i64 = space.raw().hincr(&versions, "a", 1).unwrap();
        Claim {
            view: String::new(),
            next: None,
            runs: vec![run(
                &j.id,
                j.next_run_time.map(|t| t.to_utc()),
                RunStatus::Running,
                "me",
            )],
        }
    };
    let claimed = store.claim_due_jobs(now, 10, &decide).await.unwrap();
    assert!(claimed.is_empty());
    let a = store.lookup_job("a").await.unwrap().unwrap();
    assert_eq!(a.version, 1, "the other writer's change stands");
    assert!(store.get_runs("a", 10, None).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn claim_parks_an_undecodable_due_job_and_keeps_its_state() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    let due = (now - TimeDelta::seconds(1)).timestamp_micros();
    {
        let mut con = space.raw();
        let _: () = con.hset(space.key("jobs"), "broken", "{not json").unwrap();
        let _: () = con.zadd(space.key("run_times"), "broken", due).unwrap();
        // An index entry without a job at all.
        let _: () = con.zadd(space.key("run_times"), "dangling", due).unwrap();
        // A readable state with an unreadable version.
        let state = job("badversion", Some(now)).to_state();
        let _: () = con.hset(space.key("jobs"), "badversion", state).unwrap();
        let _: () = con.hset(space.key("versions"), "badversion", "x").unwrap();
        let _: () = con.zadd(space.key("run_times"), "badversion", due).unwrap();
    }
    store
        .add_job(&job("ok", Some(now)), &render(&job("ok", Some(now))))
        .await
        .unwrap();
    let decide = |j: &Job| Claim {
        view: String::new(),
        next: Some(Job {
            next_run_time: None,
            ..j.clone()
        }),
        runs: Vec::new(),
    };
    assert!(
        store.lookup_job("broken").await.unwrap().is_none(),
        "unreadable: logged, not listed"
    );
    let claimed = store.claim_due_jobs(now, 10, &decide).await.unwrap();
    let claimed_ids: Vec<&str> = claimed.iter().map(|(j, _)| j.id.as_str()).collect();
    assert_eq!(claimed_ids, ["ok"]);
    let mut con = space.raw();
    let score: Option<f64> = con.zscore(space.key("run_times"), "broken").unwrap();
    assert_eq!(score, None, "parked: out of the index");
    for id in ["dangling", "badversion"] {
        let score: Option<f64> = con.zscore(space.key("run_times"), id).unwrap();
        assert_eq!(score, None, "{id} parked");
    }
    let state: Option<String> = con.hget(space.key("jobs"), "broken").unwrap();
    assert_eq!(state.as_deref(), Some("{not json"), "its state is kept");
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    assert_eq!(ids(&store.get_all_jobs().await.unwrap()), ["ok"]);
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn runs_are_inserted_updated_read_and_paged() {
    let space = Space::fresh();
    let store = open(&space).await;
    let mut runs = Vec::new();
    for i in 0..5 {
        let r = run(
            "j",
            Some(t0() + TimeDelta::seconds(i)),
            RunStatus::Succeeded,
            "me",
        );
        store.insert_run(&r).await.unwrap();
        runs.push(r);
    }
    store
        .insert_run(&run("other", None, RunStatus::Running, "me"))
        .await
        .unwrap();
    let newest_first: Vec<RunRecord> = runs.iter().rev().cloned().collect();
    assert_eq!(store.get_runs("j", 50, None).await.unwrap(), newest_first);
    assert_eq!(
        store.get_runs("j", 2, None).await.unwrap(),
        newest_first[..2]
    );
    assert_eq!(
        store.get_runs("j", 2, Some(&runs[3].id)).await.unwrap(),
        newest_first[2..4],
        "only runs older than `before`"
    );
    assert!(
        store
            .get_runs("j", 5, Some(&runs[0].id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.get_runs("j", 0, None).await.unwrap().is_empty());
    assert!(store.get_runs("nobody", 5, None).await.unwrap().is_empty());
    assert!(store.get_run("no-such-run").await.unwrap().is_none());

    // An update changes the status, times and output, and clears what became empty.
    let mut r = run("j", None, RunStatus::Running, "me");
    r.reason = Some("was".into());
    r.exit_code = Some(9);
    r.started_at = Some(t0());
    store.insert_run(&r).await.unwrap();
    assert_eq!(store.get_run(&r.id).await.unwrap().unwrap(), r);
    r.status = RunStatus::Failed;
    r.finished_at = Some(t0() + TimeDelta::milliseconds(1500));
    r.reason = None;
    r.exit_code = Some(-3);
    r.stdout = "out\nput ✓".into();
    r.stderr = "err".into();
    r.stdout_truncated = true;
    store.update_run(&r).await.unwrap();
    assert_eq!(store.get_run(&r.id).await.unwrap().unwrap(), r);
    r.exit_code = None;
    store.update_run(&r).await.unwrap();
    assert_eq!(store.get_run(&r.id).await.unwrap().unwrap().exit_code, None);

    // Updating a run that does not exist creates nothing.
    let ghost = run("j", None, RunStatus::Succeeded, "me");
    store.update_run(&ghost).await.unwrap();
    assert!(store.get_run(&ghost.id).await.unwrap().is_none());

    // One record per id, and per (job, fire time).
    assert!(store.insert_run(&runs[0]).await.is_err());
    let twin = run("j", Some(t0()), RunStatus::Running, "me");
    assert!(store.insert_run(&twin).await.is_err());
    assert!(store.get_run(&twin.id).await.unwrap().is_none());
    // Run-now records have no fire time: any number of them.
    store
        .insert_run(&run("j", None, RunStatus::Running, "me"))
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn orphaned_runs_of_silent_daemons_are_interrupted() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    let node = |id: &str, beat: DateTime<Utc>| NodeRecord {
        id: id.into(),
        host: "h".into(),
        pid: 1,
        started_at: now - TimeDelta::hours(1),
        heartbeat_at: beat,
    };
    store.heartbeat(&node("me", now)).await.unwrap();
    store
        .heartbeat(&node("alive", now - TimeDelta::seconds(2)))
        .await
        .unwrap();
    store
        .heartbeat(&node("silent", now - TimeDelta::seconds(60)))
        .await
        .unwrap();
    let mine = run("j", None, RunStatus::Running, "me");
    let alive = run("j", None, RunStatus::Running, "alive");
    let silent = run("j", None, RunStatus::Running, "silent");
    let unknown = run("j", None, RunStatus::Running, "never-seen");
    let done = run("j", None, RunStatus::Succeeded, "silent");
    for r in [&mine, &alive, &silent, &unknown, &done] {
        store.insert_run(r).await.unwrap();
    }
    let at = now + TimeDelta::milliseconds(250);
    let count = store
        .interrupt_orphaned_runs(&Orphans {
            me: "me",
            alive_since: now - TimeDelta::seconds(10),
            reason: "gone",
            at,
        })
        .await
        .unwrap();
    assert_eq!(count, 2);
    for (r, status) in [
        (&mine, RunStatus::Running),
        (&alive, RunStatus::Running),
        (&silent, RunStatus::Interrupted),
        (&unknown, RunStatus::Interrupted),
        (&done, RunStatus::Succeeded),
    ] {
        let stored = store.get_run(&r.id).await.unwrap().unwrap();
        assert_eq!(stored.status, status, "run of {}", r.owner);
        if status == RunStatus::Interrupted {
            assert_eq!(stored.reason.as_deref(), Some("gone"));
            assert_eq!(stored.finished_at, Some(at));
        }
    }
    assert_eq!(
        store
            .interrupt_orphaned_runs(&Orphans {
                me: "me",
                alive_since: now - TimeDelta::seconds(10),
                reason: "gone",
                at
            })
            .await
            .unwrap(),
        0,
        "once"
    );
    // At boot of a store one daemon uses, every other daemon is dead.
    assert_eq!(
        store
            .interrupt_orphaned_runs(&Orphans {
                me: "me",
                alive_since: now,
                reason: "restarted",
                at
            })
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.get_run(&alive.id).await.unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    // A run that finishes leaves the running index.
    let mut r = mine.clone();
    r.status = RunStatus::Succeeded;
    store.update_run(&r).await.unwrap();
    let running: Vec<String> = space.raw().smembers(space.key("running")).unwrap();
    assert!(running.is_empty(), "{running:?}");
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn prune_drops_old_and_surplus_finished_runs_with_their_index_entries() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    let at = |r: &mut RunRecord, t: DateTime<Utc>| r.created_at = t;
    // Job "a": 5 runs, the oldest two created long ago, one of those still running.
    let mut a = Vec::new();
    for i in 0..5 {
        let mut r = run(
            "a",
            Some(now + TimeDelta::seconds(i)),
            if i == 1 {
                RunStatus::Running
            } else {
                RunStatus::Succeeded
            },
            "me",
        );
        at(
            &mut r,
            if i < 2 {
                now - TimeDelta::days(40)
            } else {
                now
            },
        );
        store.insert_run(&r).await.unwrap();
        a.push(r);
    }
    // Job "b": 3 recent runs, the newest running.
    let mut b = Vec::new();
    for i in 0..3 {
        let mut r = run(
            "b",
            Some(now + TimeDelta::seconds(i)),
            if i == 2 {
                RunStatus::Running
            } else {
                RunStatus::Failed
            },
            "me",
        );
        at(&mut r, now);
        store.insert_run(&r).await.unwrap();
        b.push(r);
    }
    // By age only: a[0] goes, a[1] is running and stays.
    let gone = store
        .prune_runs(now - TimeDelta::days(30), 100)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert!(store.get_run(&a[0].id).await.unwrap().is_none());
    assert!(store.get_run(&a[1].id).await.unwrap().is_some());
    // Keep 2 finished runs per job: running runs neither count nor go.
    let gone = store
        .prune_runs(now - TimeDelta::days(30), 2)
        .await
        .unwrap();
    assert_eq!(gone, 1, "a[2] of a; b keeps its two finished runs");
    let left: Vec<String> = store
        .get_runs("a", 10, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [a[4].id.clone(), a[3].id.clone(), a[1].id.clone()]);
    let left: Vec<String> = store
        .get_runs("b", 10, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [b[2].id.clone(), b[1].id.clone(), b[0].id.clone()]);
    // Keep 0: every finished run goes; the slot of a pruned run is free again.
    let gone = store
        .prune_runs(now - TimeDelta::days(30), 0)
        .await
        .unwrap();
    assert_eq!(gone, 4, "a[3], a[4], b[0], b[1]");
    let again = run("a", Some(now), RunStatus::Succeeded, "me");
    store.insert_run(&again).await.unwrap();
    // Everything finished: the index keys go with the runs (memory stays bounded).
    for mut r in [a[1].clone(), b[2].clone()] {
        r.status = RunStatus::Interrupted;
        store.update_run(&r).await.unwrap();
    }
    assert_eq!(
        store.prune_runs(now + TimeDelta::days(1), 0).await.unwrap(),
        3
    );
    store.close().await;
    let left = space.keys();
    assert!(left.is_empty(), "nothing left of the runs: {left:?}");
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn heartbeats_are_listed_most_recent_first_and_removed() {
    let space = Space::fresh();
    let store = open(&space).await;
    let now = t0();
    let node = |id: &str, host: &str, beat: DateTime<Utc>| NodeRecord {
        id: id.into(),
        host: host.into(),
        pid: 4242,
        started_at: now - TimeDelta::hours(1),
        heartbeat_at: beat,
    };
    assert!(store.get_nodes().await.unwrap().is_empty());
    store
        .heartbeat(&node("n1", "h1", now - TimeDelta::seconds(9)))
        .await
        .unwrap();
    store
        .heartbeat(&node("n2", "h2", now - TimeDelta::seconds(4)))
        .await
        .unwrap();
    store
        .heartbeat(&node("n0", "h0", now - TimeDelta::seconds(4)))
        .await
        .unwrap();
    store
        .heartbeat(&node("old", "h", now - TimeDelta::days(2)))
        .await
        .unwrap();
    // A later beat updates the time only.
    store
        .heartbeat(&node("n1", "changed", now - TimeDelta::milliseconds(1)))
        .await
        .unwrap();
    let nodes = store.get_nodes().await.unwrap();
    let order: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(order, ["n1", "n0", "n2", "old"]);
    assert_eq!(nodes[0], node("n1", "h1", now - TimeDelta::milliseconds(1)));
    store
        .remove_nodes("n2", now - TimeDelta::days(1))
        .await
        .unwrap();
    let order: Vec<String> = store
        .get_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(order, ["n1", "n0"]);
    assert!(!store.shared(), "a Redis store serves one daemon");
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn a_second_daemon_is_refused_until_the_first_closes() {
    let space = Space::fresh();
    let url = space.url("&lock_ttl=1");
    let first = RedisStore::open(&url).await.unwrap();
    // Longer than the lock's time to live: the holder keeps it alive.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let started = Instant::now();
    let error = RedisStore::open(&url).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("another tickd is already using the Redis store"),
        "{text}"
    );
    assert!(text.contains(&space.prefix), "names the prefix: {text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Through the public entry point too.
    let error = tickd::store::open(&url).await.unwrap_err();
    assert!(error.to_string().contains("another tickd"), "{error}");
    // A store under another prefix on the same server is another store.
    let neighbour = Space::on(&space.server);
    let other = open(&neighbour).await;
    other.close().await;

    first.close().await;
    let started = Instant::now();
    let second = RedisStore::open(&url).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "after close() the lock is free at once"
    );
    second.close().await;
    let left = space.keys();
    assert!(left.is_empty(), "close() deletes the lock: {left:?}");
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn the_lock_of_a_crashed_daemon_expires() {
    let space = Space::fresh();
    let url = space.url("&lock_ttl=2");
    let crashed = RedisStore::open(&url).await.unwrap();
    drop(crashed); // no close(): the lock stays until its time to live runs out
    let started = Instant::now();
    let next = RedisStore::open(&url).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(500) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );
    let holder: Option<String> = space.raw().get(space.key("lock")).unwrap();
    assert!(
        holder
            .unwrap()
            .contains(&format!("pid {}", std::process::id())),
        "the lock names its holder"
    );
    next.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn a_lock_is_waited_for_at_most_our_own_time_to_live() {
    let space = Space::fresh();
    let url = space.url("&lock_ttl=1");
    // Held by a daemon with a longer time to live.
    let _: () = redis::cmd("SET")
        .arg(space.key("lock"))
        .arg("host far pid 7 id x")
        .arg("PX")
        .arg(30_000)
        .query(&mut space.raw())
        .unwrap();
    let started = Instant::now();
    let text = RedisStore::open(&url).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(text.contains("host far pid 7"), "{text}");
    assert!(text.contains("expires in"), "{text}");
    // A lock without expiry was not set by tickd: refused at once, with the way out.
    let _: () = space.raw().set(space.key("lock"), "manual").unwrap();
    let started = Instant::now();
    let text = RedisStore::open(&url).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(text.contains("no expiry"), "{text}");
    assert!(
        text.contains(&format!("delete {}", space.key("lock"))),
        "{text}"
    );
}

#[tokio::test]
async fn open_reports_an_unreachable_server_and_refuses_tls() {
    // No server needed: nothing listens on port 1.
    let started = Instant::now();
    match tickd::store::open("redis://127.0.0.1:1/?prefix=x:").await {
        Err(StoreError::Unavailable(e)) => {
            assert!(format!("{e:#}").contains("127.0.0.1:1"), "{e:#}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let error = tickd::store::open("rediss://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn open_dispatches_redis_urls_to_the_redis_store() {
    let space = Space::fresh();
    let store = tickd::store::open(&space.url("")).await.unwrap();
    assert!(!store.shared());
    store
        .add_job(&job("a", None), &render(&job("a", None)))
        .await
        .unwrap();
    let keys: HashMap<String, ()> = space.keys().into_iter().map(|k| (k, ())).collect();
    for name in ["jobs", "versions", "lock"] {
        assert!(keys.contains_key(&space.key(name)), "{name} in {keys:?}");
    }
    store.close().await;
}

/// A scratch `redis-server` this test starts and stops (no persistence, a free port).
struct Scratch {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Scratch {
    /// `None` when there is no `redis-server` to start.
    fn new() -> Option<Scratch> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut scratch = Scratch {
            port,
            dir,
            child: None,
        };
        scratch.start().then_some(scratch)
    }

    fn start(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let client = redis::Client::open(self.url("")).unwrap();
        for _ in 0..100 {
            if let Ok(mut con) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut con).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} did not answer", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self, query: &str) -> String {
        format!("redis://127.0.0.1:{}/{query}", self.port)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
#[cfg_attr(
    not(tickd_test_redis),
    ignore = "needs TICKD_TEST_REDIS_URL, and redis-server on PATH"
)]
async fn an_outage_is_unavailable_and_the_store_recovers_by_itself() {
    let Some(mut scratch) = Scratch::new() else {
        panic!(
            "no redis-server on PATH: this test stops and starts a Redis of its own (it runs \
             with the other Redis tests, because TICKD_TEST_REDIS_URL is set)"
        );
    };
    let store = RedisStore::open(&scratch.url("?prefix=outage:&lock_ttl=1"))
        .await
        .unwrap();
    store
        .add_job(&job("a", Some(t0())), &render(&job("a", Some(t0()))))
        .await
        .unwrap();
    scratch.stop();
    let started = Instant::now();
    match store.lookup_job("a").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        store.get_all_jobs().await,
        Err(StoreError::Unavailable(_))
    ));
    // Back, empty (no persistence): the store reconnects, and takes its lock again.
    assert!(scratch.start());
    let mut answer = store.lookup_job("a").await;
    for _ in 0..100 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = store.lookup_job("a").await;
    }
    assert!(answer.unwrap().is_none(), "the server lost its data");
    let mut con = redis::Client::open(scratch.url(""))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut holder: Option<String> = None;
    for _ in 0..30 {
        holder = con.get("outage:lock").unwrap();
        if holder.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        holder
            .unwrap()
            .contains(&format!("pid {}", std::process::id())),
        "the lock is taken again"
    );
    store.close().await;
}
