//! The store conformance suite (APScheduler's `tests/test_jobstores.py` idea): [`conforms`]
//! runs small named checks of the store traits — `JobStore`, `RunLog` (its listing across
//! jobs in `tests/common/run_listing_checks.rs`), `Membership`, `TokenStore`
//! (`tests/common/token_checks.rs`), `AuditLog` (`tests/common/audit_checks.rs`) —
//! against one `&dyn Store`, and four entry points run it on SQLite, MariaDB/MySQL,
//! PostgreSQL and Redis. SQLite always runs; the others run when `TICKD_TEST_MYSQL_URL`,
//! `TICKD_TEST_POSTGRES_URL` or `TICKD_TEST_REDIS_URL` names a server (`.ci/run` sets all
//! three; without one, its test shows as ignored), each in a database (a Redis key prefix) of
//! its own that is made here and dropped at the end, passed or failed. [`Raw`] reaches behind
//! the store for what its API will not do: write an unreadable job, read what is stored.
//!
//! Daemons sharing a server database are checked at the end; what only Redis has (its lock,
//! its key layout) is in `tests/daemon/store_redis.rs`.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::common::audit_checks::audit_conforms;
use crate::common::db::{Server, Space, in_fresh_database};
use crate::common::run_listing_checks::run_listing_conforms;
use crate::common::store_checks::{ClaimDue, listed_ids};
use crate::common::token_checks::tokens_conform;
use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone, Utc};
use futures_util::TryStreamExt;
use redis::AsyncCommands;
use serde_json::json;
use tickd::api::view::render;
use tickd::job::{Job, JobDefaults, JobSpec, RunCause, RunId, RunRecord, RunStatus};
use tickd::store::{
    self, Claim, NodeRecord, Orphans, Store, StoreError, StoredView, ViewBody, ViewFilter,
};

// ---- entry points ----

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tickd.db").display());
    let store = store::open(&url).await.unwrap();
    assert!(!store.shared(), "a SQLite store serves one daemon");
    let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    conforms(store.as_ref(), &raw).await;
    raw.close().await;
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_mysql), ignore = "needs TICKD_TEST_MYSQL_URL")]
async fn mysql_store_conforms() {
    in_fresh_database(Server::MySql, |url| async move {
        let store = store::open(&url).await.unwrap();
        assert!(store.shared(), "a MySQL store is shared between daemons");
        let raw = Raw::connect(Server::MySql, &url).await;
        conforms(store.as_ref(), &raw).await;
        raw.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn postgres_store_conforms() {
    in_fresh_database(Server::Postgres, |url| async move {
        let store = store::open(&url).await.unwrap();
        assert!(
            store.shared(),
            "a PostgreSQL store is shared between daemons"
        );
        let raw = Raw::connect(Server::Postgres, &url).await;
        conforms(store.as_ref(), &raw).await;
        raw.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn redis_store_conforms() {
    let space = Space::fresh();
    let store = store::open(&space.url("")).await.unwrap();
    assert!(!store.shared(), "a Redis store serves one daemon");
    let client = redis::Client::open(space.server.as_str()).unwrap();
    let raw = Raw::Redis(
        client.get_multiplexed_async_connection().await.unwrap(),
        space.prefix.clone(),
    );
    conforms(store.as_ref(), &raw).await;
    store.close().await;
}

// Daemons sharing a server database: a claim skips rows another claim holds, and two
// daemons (two stores, two pools) claiming at once take every (job, fire time) exactly once.
// The second store opens the database under the other URL scheme the backend accepts.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(tickd_test_mysql), ignore = "needs TICKD_TEST_MYSQL_URL")]
async fn mysql_daemons_share_due_jobs() {
    in_fresh_database(Server::MySql, |url| async move {
        let other = url.replacen("mysql://", "mariadb://", 1);
        claims_skip_jobs_another_claim_holds(Server::MySql, &url).await;
        claims_each_fire_time_once(&url, &other).await;
        crate::store_queued::queued_runs_are_taken_once_across_daemons(&url, &other).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn postgres_daemons_share_due_jobs() {
    in_fresh_database(Server::Postgres, |url| async move {
        let other = url.replacen("postgres://", "postgresql://", 1);
        claims_skip_jobs_another_claim_holds(Server::Postgres, &url).await;
        claims_each_fire_time_once(&url, &other).await;
        crate::store_queued::queued_runs_are_taken_once_across_daemons(&url, &other).await;
    })
    .await;
}

// ---- the suite ----

/// Every check of the store contract, in an order where each leaves the store as it found it
/// (no jobs, no running runs, no nodes).
async fn conforms(store: &dyn Store, raw: &Raw) {
    // The store as a whole: readiness asks it to answer; systemd's status counts its jobs.
    store.ping().await.unwrap();
    // JobStore
    adds_and_looks_up_jobs(store).await;
    ids_compare_byte_for_byte(store).await;
    updates_compare_and_set(store).await;
    replaces_whatever_the_version(store).await;
    removes_jobs_and_frees_their_ids(store).await;
    orders_jobs_and_finds_the_next_run_time(store).await;
    streams_views_in_order_and_filters_pending_ones(store).await;
    concurrent_adds_keep_their_own_outcomes(store).await;
    claims_advance_due_jobs_and_record_their_runs(store).await;
    claims_take_the_earliest_first_up_to_the_limit(store).await;
    claims_remove_jobs_whose_trigger_ran_out(store).await;
    claims_advance_past_a_fire_time_taken_already(store).await;
    claims_leave_jobs_changed_while_they_were_decided(store).await;
    claims_park_unreadable_jobs(store, raw).await;
    // RunLog
    runs_round_trip(store).await;
    runs_are_one_per_id_and_per_fire_time(store).await;
    runs_page_newest_first(store).await;
    interrupts_runs_of_dead_daemons(store).await;
    prunes_finished_runs_by_age_and_per_job(store).await;
    run_listing_conforms(store).await;
    crate::store_queued::queued_runs_conform(store).await;
    // Outbox
    crate::store_outbox::outbox_conforms(store).await;
    // Membership
    heartbeats_list_and_remove_nodes(store).await;
    // TokenStore
    tokens_conform(store).await;
    // AuditLog
    audit_conforms(store).await;
}

// ---- Store ----

// ---- JobStore ----

async fn adds_and_looks_up_jobs(store: &dyn Store) {
    assert!(store.lookup_job("a").await.unwrap().is_none());
    let a = job("a", Some(t0() + hours(1)));
    add(store, &a).await;
    assert_eq!(
        store.lookup_job("a").await.unwrap(),
        Some(a.clone()),
        "the job round-trips, at version 0"
    );
    assert!(store.lookup_job("missing").await.unwrap().is_none());

    let mut again = job("a", None);
    again.name = "another".into();
    let error = store.add_job(&again, &render(&again)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict(id) if id == "a"),
        "{error:?}"
    );
    assert_eq!(
        store.lookup_job("a").await.unwrap(),
        Some(a),
        "a conflict changes nothing"
    );

    // The longest id (191 bytes), one of 4-byte characters, and ids are opaque (colons, which
    // Redis key names use, spaces, slashes, non-ASCII).
    for id in [
        "x".repeat(191),
        "😀".repeat(47),
        "jöb 日本".into(),
        "x:y z/é".into(),
    ] {
        let odd = job(&id, None);
        add(store, &odd).await;
        assert_eq!(store.lookup_job(&id).await.unwrap(), Some(odd));
    }
    clear(store).await;
}

async fn ids_compare_byte_for_byte(store: &dyn Store) {
    // Case, trailing spaces and accents all make different ids, as in SQLite (a MySQL `_ci` or
    // PAD SPACE collation would merge them).
    let ids = ["Job1", "job1", "pad", "pad ", "e", "é"];
    for id in ids {
        add_job_at(store, id, None).await;
    }
    for id in ids {
        assert_eq!(store.lookup_job(id).await.unwrap().unwrap().id, id);
    }
    store.remove_job("pad").await.unwrap();
    assert!(store.lookup_job("pad").await.unwrap().is_none());
    assert!(store.lookup_job("pad ").await.unwrap().is_some());
    clear(store).await;
}

async fn updates_compare_and_set(store: &dyn Store) {
    add_job_at(store, "u", Some(t0())).await;
    let read = store.lookup_job("u").await.unwrap().unwrap();
    assert_eq!(read.version, 0);

    let mut changed = read.clone();
    changed.name = "renamed".into();
    changed.next_run_time = Some(at(t0() + hours(2)));
    store.update_job(&changed, &render(&changed)).await.unwrap();
    let stored = store.lookup_job("u").await.unwrap().unwrap();
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.next_run_time, changed.next_run_time);
    assert_eq!(stored.version, 1, "a write bumps the version");
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0() + hours(2)),
        "the index follows the job"
    );

    // A writer still holding version 0 lost the race.
    let mut late = read;
    late.name = "late".into();
    let error = store.update_job(&late, &render(&late)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Stale(id) if id == "u"),
        "{error:?}"
    );
    assert_eq!(
        store.lookup_job("u").await.unwrap().unwrap().name,
        "renamed"
    );

    // Pausing through an update takes the job out of the index.
    let mut paused = stored;
    paused.next_run_time = None;
    store.update_job(&paused, &render(&paused)).await.unwrap();
    assert_eq!(store.lookup_job("u").await.unwrap().unwrap().version, 2);
    assert_eq!(store.get_next_run_time().await.unwrap(), None);

    let error = store
        .update_job(&job("ghost", None), &render(&job("ghost", None)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::NotFound(id) if id == "ghost"),
        "{error:?}"
    );
    assert!(
        store.lookup_job("ghost").await.unwrap().is_none(),
        "no upsert"
    );
    clear(store).await;
}

async fn replaces_whatever_the_version(store: &dyn Store) {
    let first = job("r", Some(t0()));
    store.replace_job(&first, &render(&first)).await.unwrap();
    assert_eq!(store.lookup_job("r").await.unwrap(), Some(first), "inserts");
    assert_eq!(store.get_next_run_time().await.unwrap(), Some(t0()));

    let mut second = job("r", Some(t0() + hours(1)));
    second.name = "second".into();
    second.version = 42;
    store.replace_job(&second, &render(&second)).await.unwrap();
    let stored = store.lookup_job("r").await.unwrap().unwrap();
    assert_eq!(stored.name, "second");
    assert_eq!(stored.version, 1, "overwrites and bumps the stored version");
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0() + hours(1)),
        "the index follows"
    );

    let third = job("r", None);
    store.replace_job(&third, &render(&third)).await.unwrap();
    assert_eq!(store.lookup_job("r").await.unwrap().unwrap().version, 2);
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    assert_eq!(store.get_all_jobs().await.unwrap().len(), 1);
    clear(store).await;
}

async fn removes_jobs_and_frees_their_ids(store: &dyn Store) {
    add_job_at(store, "gone", Some(t0() - hours(1))).await;
    add_job_at(store, "kept", Some(t0())).await;
    let mut bumped = store.lookup_job("gone").await.unwrap().unwrap();
    bumped.name = "bumped".into();
    store.update_job(&bumped, &render(&bumped)).await.unwrap();
    store.remove_job("gone").await.unwrap();
    assert!(store.lookup_job("gone").await.unwrap().is_none());
    assert!(store.lookup_job("kept").await.unwrap().is_some());
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0()),
        "the index follows"
    );
    let error = store.remove_job("gone").await.unwrap_err();
    assert!(
        matches!(&error, StoreError::NotFound(id) if id == "gone"),
        "{error:?}"
    );
    // The id is free again, at version 0.
    add_job_at(store, "gone", None).await;
    assert_eq!(store.lookup_job("gone").await.unwrap().unwrap().version, 0);
    clear(store).await;
}

async fn orders_jobs_and_finds_the_next_run_time(store: &dyn Store) {
    assert!(store.get_all_jobs().await.unwrap().is_empty());
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    for id in ["p2", "Z", "p1"] {
        add_job_at(store, id, None).await;
    }
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        None,
        "paused jobs have no next run time"
    );
    for id in ["é", "b", "ab", "a", "B"] {
        add_job_at(store, id, Some(t0() + hours(2))).await;
    }
    // The same instant written at -05:00: a tie, broken by id.
    let mut west = job("a ", None);
    west.next_run_time =
        Some((t0() + hours(2)).with_timezone(&FixedOffset::west_opt(5 * 3600).unwrap()));
    add(store, &west).await;
    add_job_at(store, "z", Some(t0() + hours(1))).await;
    // 09:30 at +08:00 is 01:30 UTC: between the two groups, whatever its offset says.
    let mut east = job("east", None);
    east.next_run_time = Some(
        (t0() + TimeDelta::minutes(90)).with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap()),
    );
    add(store, &east).await;
    let old = t0() - TimeDelta::days(400);
    add_job_at(store, "old", Some(old)).await;

    let all = store.get_all_jobs().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|job| job.id.as_str()).collect();
    // By next run time; ties and paused jobs (last) by id in byte order.
    let expected = [
        "old", "z", "east", "B", "a", "a ", "ab", "b", "é", "Z", "p1", "p2",
    ];
    assert_eq!(ids, expected);
    for written in [&east, &west] {
        let stored = all.iter().find(|job| job.id == written.id).unwrap();
        assert_eq!(
            stored.next_run_time, written.next_run_time,
            "the offset survives"
        );
    }
    assert_eq!(store.get_next_run_time().await.unwrap(), Some(old));
    clear(store).await;
}

/// Views stream in listing order (next fire time, paused and pending last), each the job's
/// own rendering and the same as `get_job_view`; the pending filter finds pending jobs, in
/// the same order.
async fn streams_views_in_order_and_filters_pending_ones(store: &dyn Store) {
    let mut pending = job("pending", Some(t0() + hours(3)));
    pending.pending = true;
    // Sorts after "pending" by id, before it by fire time.
    let mut pending_soon = job("pending-soon", Some(t0() + TimeDelta::minutes(30)));
    pending_soon.pending = true;
    let jobs = [
        job("paused", None),
        job("late", Some(t0() + hours(2))),
        job("early", Some(t0() + hours(1))),
        pending,
        pending_soon,
    ];
    for job in &jobs {
        add(store, job).await;
    }
    let views = collect_views(store, ViewFilter::All).await;
    let ids: Vec<&str> = views.iter().map(|view| view.id.as_str()).collect();
    assert_eq!(ids, ["pending-soon", "early", "late", "pending", "paused"]);
    for view in &views {
        let job = jobs.iter().find(|job| job.id == view.id).unwrap();
        let text = match &view.body {
            ViewBody::Rendered(text) => text.clone(),
            ViewBody::Job(job) => render(job),
        };
        assert_eq!(text, render(job), "the kept view is the job's");
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
    let pending = collect_views(store, ViewFilter::Pending).await;
    let pending_ids: Vec<&str> = pending.iter().map(|view| view.id.as_str()).collect();
    assert_eq!(pending_ids, ["pending-soon", "pending"], "listing order");
    assert!(pending.iter().all(|view| view.pending));
    // The metrics' count: a pending job is pending whether or not it has a fire time.
    let counts = store.count_jobs().await.unwrap();
    assert_eq!(
        (counts.scheduled, counts.paused, counts.pending),
        (2, 1, 2),
        "{counts:?}"
    );
    clear(store).await;
    assert_eq!(
        store.count_jobs().await.unwrap(),
        store::JobCounts::default()
    );
}

/// 60 inserts at once over 20 ids: each id goes in once, every other insert of it is a
/// conflict of its own, whatever batch the store put them in.
async fn concurrent_adds_keep_their_own_outcomes(store: &dyn Store) {
    let jobs: Vec<Job> = (0..60)
        .map(|n| job(&format!("c{}", n % 20), Some(t0() + hours(n))))
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
    clear(store).await;
}

async fn claims_advance_due_jobs_and_record_their_runs(store: &dyn Store) {
    let minute = TimeDelta::minutes(1);
    add_job_at(store, "late", Some(t0() - minute)).await;
    add_job_at(store, "due", Some(t0())).await;
    add_job_at(store, "later", Some(t0() + minute)).await;
    add_job_at(store, "paused", None).await;

    let claimed = store
        .claim_due_jobs(t0(), 10, &advancing(t0()))
        .await
        .unwrap();
    let claimed_ids: Vec<&str> = claimed.iter().map(|(job, _)| job.id.as_str()).collect();
    assert_eq!(
        claimed_ids,
        ["late", "due"],
        "due by now (inclusive), earliest first; not-due and paused left"
    );
    let (late, claim) = &claimed[0];
    assert_eq!(late.version, 0, "answers the job as claimed");
    assert_eq!(claim.runs.len(), 2, "one run per fire time due");

    let stored = store.lookup_job("late").await.unwrap().unwrap();
    assert_eq!(stored.next_run_time, Some(at(t0() + minute)));
    assert_eq!(stored.version, 1);
    let mut runs = store.get_runs("late", 10, None).await.unwrap();
    runs.reverse();
    assert_eq!(runs, claim.runs, "the claim's run records are committed");
    assert_eq!(
        store.get_runs("due", 10, None).await.unwrap(),
        claimed[1].1.runs,
        "one run for the job due now"
    );
    let later = store.lookup_job("later").await.unwrap().unwrap();
    assert_eq!(
        (later.version, later.next_run_time),
        (0, Some(at(t0() + minute)))
    );
    assert_eq!(
        store.lookup_job("paused").await.unwrap().unwrap().version,
        0
    );
    assert!(store.get_runs("later", 10, None).await.unwrap().is_empty());

    let again = store
        .claim_due_jobs(t0(), 10, &advancing(t0()))
        .await
        .unwrap();
    assert!(again.is_empty(), "nothing is due twice");
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0() + minute)
    );
    clear(store).await;
}

async fn claims_take_the_earliest_first_up_to_the_limit(store: &dyn Store) {
    let second = TimeDelta::seconds(1);
    for (id, next) in [
        ("c", t0()),
        ("a", t0()),
        ("b", t0() - second),
        ("d", t0() - second * 2),
        ("e", t0() + second),
    ] {
        add_job_at(store, id, Some(next)).await;
    }
    let none = store.claim_due_jobs(t0(), 0, &advancing(t0())).await;
    assert!(none.unwrap().is_empty(), "a limit of 0 takes nothing");
    let mut order = Vec::new();
    loop {
        let claimed = store
            .claim_due_jobs(t0(), 2, &advancing(t0()))
            .await
            .unwrap();
        assert!(claimed.len() <= 2, "at most the limit");
        if claimed.is_empty() {
            break;
        }
        order.extend(claimed.into_iter().map(|(job, _)| job.id.to_string()));
    }
    assert_eq!(order, ["d", "b", "a", "c"], "by next run time, ties by id");
    assert_eq!(store.lookup_job("e").await.unwrap().unwrap().version, 0);
    clear(store).await;
}

async fn claims_remove_jobs_whose_trigger_ran_out(store: &dyn Store) {
    add_job_at(store, "once", Some(t0())).await;
    let last_run = |job: &Job| Claim {
        view: String::new(),
        next: None,
        runs: vec![run_for(job, job.next_run_time)],
    };
    let claimed = store.claim_due_jobs(t0(), 10, &last_run).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].1.next.is_none());
    assert!(store.lookup_job("once").await.unwrap().is_none(), "removed");
    let runs = store.get_runs("once", 10, None).await.unwrap();
    assert_eq!(runs, claimed[0].1.runs, "its last run is kept");
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    clear(store).await;
}

async fn claims_advance_past_a_fire_time_taken_already(store: &dyn Store) {
    // Another daemon recorded `a-taken`'s second fire time; `b-free` comes after it in the
    // batch, so the claim must go on after the duplicate.
    let minute = TimeDelta::minutes(1);
    add_job_at(store, "a-taken", Some(t0() - minute)).await;
    add_job_at(store, "b-free", Some(t0() - minute)).await;
    let theirs = run_for(&job("a-taken", None), Some(at(t0())));
    store.insert_run(&theirs).await.unwrap();

    let claimed = store
        .claim_due_jobs(t0(), 10, &advancing(t0()))
        .await
        .unwrap();
    let recorded: Vec<(&str, usize)> = claimed
        .iter()
        .map(|(job, claim)| (job.id.as_str(), claim.runs.len()))
        .collect();
    assert_eq!(recorded, [("a-taken", 0), ("b-free", 2)]);

    // It advances without its runs: a job left due would be claimed again at once.
    let taken = store.lookup_job("a-taken").await.unwrap().unwrap();
    assert_eq!(
        (taken.version, taken.next_run_time),
        (1, Some(at(t0() + minute))),
        "advanced"
    );
    assert_eq!(
        store.get_runs("a-taken", 10, None).await.unwrap(),
        [theirs],
        "its first fire time's record was undone with the rest of its claim"
    );
    let free = store.lookup_job("b-free").await.unwrap().unwrap();
    assert_eq!(
        (free.version, free.next_run_time),
        (1, Some(at(t0() + minute)))
    );
    assert_eq!(store.get_runs("b-free", 10, None).await.unwrap().len(), 2);
    clear(store).await;
}

/// A claim decides between its read and its commit, outside every lock: a job written in
/// between (an API change, another daemon's claim) or deleted is left out of the commit,
/// with none of its runs, whether the decision advanced it or removed it, and the others are
/// committed.
async fn claims_leave_jobs_changed_while_they_were_decided(store: &dyn Store) {
    for id in ["changed", "deleted", "ending", "kept"] {
        add_job_at(store, id, Some(t0())).await;
    }
    let due = store.due_jobs(t0(), 10).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids, ["changed", "deleted", "ending", "kept"], "read only");
    let advance = advancing(t0());
    let claims: Vec<(Job, Claim)> = due
        .into_iter()
        .map(|job| {
            let mut claim = advance(&job);
            if job.id == "ending" {
                claim.next = None;
            }
            (job, claim)
        })
        .collect();

    for id in ["changed", "ending"] {
        let mut renamed = store.lookup_job(id).await.unwrap().unwrap();
        renamed.name = "renamed".into();
        store.update_job(&renamed, &render(&renamed)).await.unwrap();
    }
    store.remove_job("deleted").await.unwrap();

    let committed = store.commit_claims(claims).await.unwrap();
    let ids: Vec<&str> = committed.iter().map(|(job, _)| job.id.as_str()).collect();
    assert_eq!(ids, ["kept"]);
    for id in ["changed", "ending"] {
        let stored = store.lookup_job(id).await.unwrap().unwrap();
        assert_eq!(
            (stored.name.as_str(), stored.version, stored.next_run_time),
            ("renamed", 1, Some(at(t0()))),
            "{id}: the change stands, still due, to be decided again"
        );
    }
    assert!(store.lookup_job("deleted").await.unwrap().is_none());
    for id in ["changed", "deleted", "ending"] {
        assert!(
            store.get_runs(id, 10, None).await.unwrap().is_empty(),
            "{id}"
        );
    }
    assert_eq!(store.get_runs("kept", 10, None).await.unwrap().len(), 1);
    assert_eq!(
        store
            .lookup_job("kept")
            .await
            .unwrap()
            .unwrap()
            .next_run_time,
        Some(at(t0() + TimeDelta::minutes(1)))
    );
    clear(store).await;
}

async fn claims_park_unreadable_jobs(store: &dyn Store, raw: &Raw) {
    let bad_time = t0() - TimeDelta::seconds(10);
    raw.write_job("bad", Some(bad_time.timestamp_micros()), "{not a job")
        .await;
    add_job_at(store, "good", Some(t0())).await;
    assert_eq!(store.get_next_run_time().await.unwrap(), Some(bad_time));
    assert!(
        store.lookup_job("bad").await.unwrap().is_none(),
        "unreadable: logged, not answered"
    );

    let claimed = store
        .claim_due_jobs(t0(), 10, &advancing(t0()))
        .await
        .unwrap();
    let claimed_ids: Vec<&str> = claimed.iter().map(|(job, _)| job.id.as_str()).collect();
    assert_eq!(claimed_ids, ["good"]);
    assert_eq!(
        raw.stored_job("bad").await,
        Some((None, "{not a job".to_owned())),
        "parked: out of the index (no next run time), state kept"
    );
    assert_eq!(
        store.get_next_run_time().await.unwrap(),
        Some(t0() + TimeDelta::minutes(1)),
        "a parked job no longer drives the scheduler"
    );
    assert!(
        store
            .claim_due_jobs(t0(), 10, &advancing(t0()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        listed_ids(store).await,
        ["good"],
        "unreadable jobs are not listed"
    );
    store.remove_job("bad").await.unwrap();
    assert_eq!(raw.stored_job("bad").await, None);
    clear(store).await;
}

// ---- RunLog ----

async fn runs_round_trip(store: &dyn Store) {
    let india = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let mut run = RunRecord::new(
        t0(),
        "rt",
        Some(t0().with_timezone(&india)),
        RunStatus::Running,
        RunCause::Startup,
        "host-1",
        "owner-1",
    );
    run.started_at = Some(t0() + TimeDelta::microseconds(1));
    run.reason = Some("was".into());
    run.exit_code = Some(9);
    store.insert_run(&run).await.unwrap();
    assert_eq!(store.get_run(&run.id).await.unwrap(), Some(run.clone()));
    assert!(store.get_run("no-such-run").await.unwrap().is_none());

    // An update changes the status, times and output, and clears what became empty.
    run.finished_at = Some(t0() + TimeDelta::seconds(3));
    run.status = RunStatus::Failed;
    run.reason = None;
    run.exit_code = Some(-3);
    run.stdout = "ünïcödé ✓\n".repeat(12_000); // about 170 KB: more than a 64 KB TEXT
    run.stderr = "bad\n".into();
    run.stdout_truncated = true;
    run.stderr_truncated = false;
    // A function job's return value, as JSON text up to 64 KiB (more than MySQL's TEXT).
    run.result = Some(format!(
        r#"{{"to":"ops ✓","pad":"{}"}}"#,
        "x".repeat(65_000)
    ));
    store.update_run(&run).await.unwrap();
    assert_eq!(store.get_run(&run.id).await.unwrap(), Some(run.clone()));
    run.reason = Some("exit code 3".into());
    run.exit_code = None;
    run.result = None;
    store.update_run(&run).await.unwrap();
    assert_eq!(store.get_run(&run.id).await.unwrap(), Some(run.clone()));

    // A script may print NUL. Every store keeps the record; PostgreSQL cannot store NUL in
    // text, so it may come back as U+FFFD.
    run.stdout = "a\0b".into();
    run.stderr_truncated = true;
    store.update_run(&run).await.unwrap();
    let stored = store.get_run(&run.id).await.unwrap().unwrap();
    assert!(
        stored.stdout == "a\0b" || stored.stdout == "a\u{FFFD}b",
        "{:?}",
        stored.stdout
    );
    assert!(stored.stderr_truncated);

    // Updating a run that does not exist creates nothing.
    let ghost = RunRecord::new(
        t0(),
        "rt",
        None,
        RunStatus::Succeeded,
        RunCause::RunNow,
        "host-1",
        "owner-1",
    );
    store.update_run(&ghost).await.unwrap();
    assert!(store.get_run(&ghost.id).await.unwrap().is_none());
    assert_eq!(store.get_runs("rt", 10, None).await.unwrap().len(), 1);
    finish_running_runs(store).await;
}

/// A run's id is its key, and a job has one run per fire time (the instant, whatever the
/// offset): both are refused a second record. Run-now records have no fire time: any number
/// of them may exist.
async fn runs_are_one_per_id_and_per_fire_time(store: &dyn Store) {
    let first = run_for(&job("one", None), Some(at(t0())));
    store.insert_run(&first).await.unwrap();
    assert!(store.insert_run(&first).await.is_err(), "same id");
    let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
    let twin = run_for(&job("one", None), Some(t0().with_timezone(&tokyo)));
    assert!(store.insert_run(&twin).await.is_err(), "same fire time");
    assert!(store.get_run(&twin.id).await.unwrap().is_none());
    let other_job = run_for(&job("other", None), Some(at(t0())));
    store.insert_run(&other_job).await.unwrap();
    for _ in 0..2 {
        let now_run = run_for(&job("one", None), None);
        store.insert_run(&now_run).await.unwrap();
        assert_eq!(store.get_run(&now_run.id).await.unwrap(), Some(now_run));
    }
    assert_eq!(store.get_runs("one", 10, None).await.unwrap().len(), 3);
    finish_running_runs(store).await;
}

async fn runs_page_newest_first(store: &dyn Store) {
    let mut runs = Vec::new();
    for i in 0..5 {
        let run = RunRecord::new(
            t0() + TimeDelta::seconds(i),
            "paged",
            Some(at(t0() + TimeDelta::seconds(i))),
            RunStatus::Succeeded,
            RunCause::Schedule,
            "host",
            "owner",
        );
        store.insert_run(&run).await.unwrap();
        runs.push(run);
    }
    let other = RunRecord::new(
        t0(),
        "paged-other",
        None,
        RunStatus::Succeeded,
        RunCause::RunNow,
        "host",
        "owner",
    );
    store.insert_run(&other).await.unwrap();
    // Run ids grow with creation.
    runs.reverse();

    let page = |limit, before: Option<&RunId>| {
        let before = before.cloned();
        async move {
            let runs = store.get_runs("paged", limit, before.as_deref()).await;
            runs.unwrap()
        }
    };
    assert_eq!(page(10, None).await, runs, "newest first, this job only");
    assert_eq!(page(2, None).await, runs[..2]);
    assert_eq!(
        page(2, Some(&runs[1].id)).await,
        runs[2..4],
        "only runs older than `before`"
    );
    assert_eq!(page(10, Some(&runs[3].id)).await, runs[4..]);
    assert!(page(10, Some(&runs[4].id)).await.is_empty());
    assert!(page(0, None).await.is_empty());
    assert!(store.get_runs("nobody", 10, None).await.unwrap().is_empty());
}

async fn interrupts_runs_of_dead_daemons(store: &dyn Store) {
    finish_running_runs(store).await;
    for (id, heartbeat) in [
        ("me", t0()),
        ("alive", t0() - TimeDelta::seconds(5)),
        ("dead", t0() - hours(1)),
    ] {
        store.heartbeat(&node(id, heartbeat)).await.unwrap();
    }
    let orphan = |owner: &str, status| {
        RunRecord::new(
            t0() - hours(2),
            "orphans",
            None,
            status,
            RunCause::RunNow,
            "host",
            owner,
        )
    };
    let mut runs = HashMap::new();
    for owner in ["me", "alive", "dead", "vanished"] {
        let run = orphan(owner, RunStatus::Running);
        store.insert_run(&run).await.unwrap();
        runs.insert(owner, run);
    }
    // Finished as it was recorded, and finished later: neither is running.
    let mut done = orphan("dead", RunStatus::Succeeded);
    done.finished_at = Some(t0() - hours(2));
    store.insert_run(&done).await.unwrap();
    let mut finished = orphan("dead", RunStatus::Running);
    store.insert_run(&finished).await.unwrap();
    finished.status = RunStatus::Failed;
    finished.finished_at = Some(t0() - hours(1));
    store.update_run(&finished).await.unwrap();

    let at_time = t0() + TimeDelta::seconds(1);
    let interrupt = |alive_since| async move {
        let orphans = Orphans {
            me: "me",
            alive_since,
            reason: "its daemon died",
            at: at_time,
        };
        store.interrupt_orphaned_runs(&orphans).await.unwrap()
    };
    let count = interrupt(t0() - TimeDelta::minutes(1)).await;
    assert_eq!(
        count, 2,
        "the dead daemon's run and the one without a heartbeat row"
    );
    for owner in ["dead", "vanished"] {
        let run = store.get_run(&runs[owner].id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Interrupted, "{owner}");
        assert_eq!(run.reason.as_deref(), Some("its daemon died"));
        assert_eq!(run.finished_at, Some(at_time));
    }
    for owner in ["me", "alive"] {
        let run = store.get_run(&runs[owner].id).await.unwrap().unwrap();
        assert_eq!(run, runs[owner], "{owner}'s run is left running");
    }
    for run in [done, finished] {
        assert_eq!(store.get_run(&run.id).await.unwrap(), Some(run), "stays");
    }
    let again = interrupt(t0() - TimeDelta::minutes(1)).await;
    assert_eq!(again, 0, "once");
    // At the start of a store one daemon uses, every other daemon is dead.
    assert_eq!(interrupt(t0()).await, 1);
    let alive = store.get_run(&runs["alive"].id).await.unwrap().unwrap();
    assert_eq!(alive.status, RunStatus::Interrupted);
    let mine = store.get_run(&runs["me"].id).await.unwrap().unwrap();
    assert_eq!(mine, runs["me"], "this daemon's own run is left running");
    store.remove_nodes("me", t0() + hours(1)).await.unwrap();
    finish_running_runs(store).await;
}

async fn prunes_finished_runs_by_age_and_per_job(store: &dyn Store) {
    // Start from no finished runs at all.
    store.prune_runs(t0() + hours(24 * 365), 0).await.unwrap();
    let finished = |job_id: &str, created: DateTime<Utc>| {
        let mut run = RunRecord::new(
            created,
            job_id,
            Some(at(created)),
            RunStatus::Succeeded,
            RunCause::Schedule,
            "host",
            "owner",
        );
        run.finished_at = Some(created);
        run
    };
    let running = |job_id: &str, created| {
        let run = RunRecord::new(
            created,
            job_id,
            None,
            RunStatus::Running,
            RunCause::RunNow,
            "host",
            "owner",
        );
        async move {
            store.insert_run(&run).await.unwrap();
            run.id
        }
    };
    // `old`: a running run and two finished ones, ten days old.
    let old_running = running("old", t0() - hours(240)).await;
    for i in 0..2 {
        let run = finished("old", t0() - hours(240) + TimeDelta::seconds(i));
        store.insert_run(&run).await.unwrap();
    }
    // `many`: five finished runs between two running ones (run ids grow with creation).
    let first_running = running("many", t0()).await;
    let mut many = Vec::new();
    for i in 0..5 {
        let run = finished("many", t0() + TimeDelta::seconds(i));
        store.insert_run(&run).await.unwrap();
        many.push(run.id);
    }
    let last_running = running("many", t0() + TimeDelta::seconds(5)).await;
    let ids = |job_id: &'static str| async move {
        let runs = store.get_runs(job_id, 10, None).await.unwrap();
        runs.into_iter().map(|run| run.id).collect::<Vec<_>>()
    };

    // Both rules in one pass; running runs neither count nor go.
    let pruned = store.prune_runs(t0() - hours(24), 3).await.unwrap();
    assert_eq!(
        pruned,
        2 + 2,
        "old's two finished runs, and many's two oldest"
    );
    assert_eq!(ids("old").await, [old_running], "a running run stays");
    let kept = [&last_running, &many[4], &many[3], &many[2], &first_running];
    assert_eq!(ids("many").await, kept.map(RunId::clone));

    // Keep none: every finished run goes.
    let pruned = store.prune_runs(t0() - hours(24), 0).await.unwrap();
    assert_eq!(pruned, 3);
    assert_eq!(ids("many").await, [last_running, first_running]);
    // The (job, fire time) of a pruned run is free again.
    let again = finished("many", t0());
    store.insert_run(&again).await.unwrap();
    finish_running_runs(store).await;
    store.prune_runs(t0() + hours(24 * 365), 0).await.unwrap();
}

// ---- Membership ----

async fn heartbeats_list_and_remove_nodes(store: &dyn Store) {
    assert!(store.get_nodes().await.unwrap().is_empty());
    let n1 = node("n1", t0());
    store.heartbeat(&n1).await.unwrap();
    let n2 = node("n2", t0() + TimeDelta::seconds(5));
    store.heartbeat(&n2).await.unwrap();
    let n3 = node("n3", t0() + TimeDelta::seconds(5));
    store.heartbeat(&n3).await.unwrap();
    // A later heartbeat moves only the heartbeat.
    let mut beat = node("n1", t0() + TimeDelta::seconds(10));
    beat.host = "elsewhere".into();
    beat.started_at = t0() + hours(1);
    store.heartbeat(&beat).await.unwrap();
    let n1 = NodeRecord {
        heartbeat_at: beat.heartbeat_at,
        ..n1
    };
    assert_eq!(
        store.get_nodes().await.unwrap(),
        [n1, n2.clone(), n3.clone()],
        "most recent heartbeat first, ties by id"
    );

    // Removes itself and anything silent since `before` (strictly earlier).
    let n4 = node("n4", t0() - hours(1));
    store.heartbeat(&n4).await.unwrap();
    store
        .remove_nodes("n1", t0() + TimeDelta::seconds(5))
        .await
        .unwrap();
    assert_eq!(store.get_nodes().await.unwrap(), [n2, n3]);
    store
        .remove_nodes("none", t0() + TimeDelta::seconds(6))
        .await
        .unwrap();
    assert!(store.get_nodes().await.unwrap().is_empty());
}

// ---- two daemons at once ----

/// While another daemon's claim holds a due row (here a plain locking read in an open
/// transaction), a claim skips that row and takes the next due job: it neither waits for the
/// lock nor takes the same job. (The UNIQUE run records alone would keep fire times single,
/// but every daemon would then queue behind, or race for, the same rows.)
async fn claims_skip_jobs_another_claim_holds(server: Server, url: &str) {
    let store = store::open(url).await.unwrap();
    for id in ["held", "next"] {
        add_job_at(store.as_ref(), id, Some(t0())).await;
    }
    let raw = Raw::connect(server, url).await;
    let lock = raw.lock_job_row("held").await;
    let claimed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.claim_due_jobs(t0(), 10, &advancing(t0())),
    )
    .await
    .expect("the claim waited for another transaction's row lock")
    .unwrap();
    let ids: Vec<String> = claimed.into_iter().map(|(job, _)| job.id.into()).collect();
    assert_eq!(ids, ["next"], "the held row is skipped, the next one taken");
    lock.rollback().await;
    let claimed = store
        .claim_due_jobs(t0(), 10, &advancing(t0()))
        .await
        .unwrap();
    let ids: Vec<String> = claimed.into_iter().map(|(job, _)| job.id.into()).collect();
    assert_eq!(ids, ["held"], "taken once released");
    clear(store.as_ref()).await;
    raw.close().await;
    store.close().await;
}

/// Two stores on one database claim 50 jobs due every second over a simulated minute, each
/// at its own pace, with small batches: every (job, fire time) is claimed by exactly one of
/// them, and has exactly one run record.
async fn claims_each_fire_time_once(url: &str, other_url: &str) {
    const JOBS: usize = 50;
    const SECONDS: i64 = 60;
    let first = store::open(url).await.unwrap();
    let second = store::open(other_url).await.unwrap();
    for i in 0..JOBS {
        let mut job = job(&format!("job{i:02}"), Some(t0()));
        job.trigger = interval_seconds(1);
        add(first.as_ref(), &job).await;
    }

    let claimer =
        |store: Arc<dyn Store>| {
            tokio::spawn(async move {
                let mut taken: Vec<(String, DateTime<FixedOffset>)> = Vec::new();
                for second in 0..SECONDS {
                    let now = t0() + TimeDelta::seconds(second);
                    loop {
                        let claimed = store.claim_due_jobs(now, 7, &advancing(now)).await.unwrap();
                        if claimed.is_empty() {
                            break;
                        }
                        for (_, claim) in claimed {
                            taken.extend(claim.runs.iter().map(|run| {
                                (run.job_id.to_string(), run.scheduled_run_time.unwrap())
                            }));
                        }
                        tokio::task::yield_now().await;
                    }
                }
                taken
            })
        };
    let (a, b) = tokio::join!(claimer(first.clone()), claimer(second.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    println!(
        "first store took {} fire times, second {}",
        a.len(),
        b.len()
    );

    let mut counts: HashMap<(String, DateTime<FixedOffset>), usize> = HashMap::new();
    for key in a.into_iter().chain(b) {
        *counts.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "claimed twice: {twice:?}");
    assert_eq!(
        counts.len(),
        JOBS * SECONDS as usize,
        "every fire time claimed"
    );
    for i in 0..JOBS {
        let id = format!("job{i:02}");
        let runs = first.get_runs(&id, 1000, None).await.unwrap();
        let mut times: Vec<_> = runs
            .iter()
            .map(|run| run.scheduled_run_time.unwrap())
            .collect();
        times.sort();
        let expected: Vec<_> = (0..SECONDS)
            .map(|s| at(t0() + TimeDelta::seconds(s)))
            .collect();
        assert_eq!(times, expected, "{id}: one run record per fire time");
        let job = first.lookup_job(&id).await.unwrap().unwrap();
        assert_eq!(
            job.next_run_time,
            Some(at(t0() + TimeDelta::seconds(SECONDS)))
        );
    }
    first.close().await;
    second.close().await;
}

// ---- helpers ----

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn at(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    time.fixed_offset()
}

/// A job running a script every minute, next at `next` (`None` = paused).
fn job(id: &str, next: Option<DateTime<Utc>>) -> Job {
    let body = json!({"id": id, "func": "task:success", "args": ["test.py"],
                      "trigger": "interval", "minutes": 1});
    let mut job = JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, t0())
        .unwrap()
        .job;
    job.next_run_time = next.map(at);
    job
}

/// Adds `job` with its view.
async fn add(store: &dyn Store, job: &Job) {
    store.add_job(job, &render(job)).await.unwrap();
}

/// Adds [`job`]`(id, next)`.
async fn add_job_at(store: &dyn Store, id: &str, next: Option<DateTime<Utc>>) {
    add(store, &job(id, next)).await;
}

fn interval_seconds(seconds: u64) -> tickd::trigger::Trigger {
    let body =
        json!({"id": "x", "func": "task:success", "trigger": "interval", "seconds": seconds});
    JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, t0())
        .unwrap()
        .job
        .trigger
}

fn run_for(job: &Job, scheduled: Option<DateTime<FixedOffset>>) -> RunRecord {
    RunRecord::new(
        t0(),
        &job.id,
        scheduled,
        RunStatus::Running,
        if scheduled.is_some() {
            RunCause::Schedule
        } else {
            RunCause::RunNow
        },
        "host",
        "claimer",
    )
}

/// The scheduler's decision without its options, for a claim at `now`: a run for every fire
/// time due, and the next fire time after the last of them (none: the job is removed).
fn advancing(now: DateTime<Utc>) -> impl Fn(&Job) -> Claim + Send + Sync {
    move |job: &Job| {
        let times = job.run_times_until(now);
        let runs = times.iter().map(|time| run_for(job, Some(*time))).collect();
        let mut next = job.clone();
        next.next_run_time = times
            .last()
            .and_then(|last| job.trigger.next_fire_time(Some(*last), now));
        Claim {
            view: render(&next),
            next: next.next_run_time.is_some().then_some(next),
            runs,
        }
    }
}

fn node(id: &str, heartbeat: DateTime<Utc>) -> NodeRecord {
    NodeRecord {
        id: id.to_owned(),
        host: "host-a".to_owned(),
        pid: u32::MAX,
        started_at: t0() - hours(3),
        heartbeat_at: heartbeat,
    }
}

/// The views `stream_job_views` gives, collected.
async fn collect_views(store: &dyn Store, filter: ViewFilter) -> Vec<StoredView> {
    let stream = store.stream_job_views(filter);
    stream.try_collect().await.unwrap()
}

/// Removes every (readable) job.
async fn clear(store: &dyn Store) {
    for job in store.get_all_jobs().await.unwrap() {
        store.remove_job(&job.id).await.unwrap();
    }
    assert!(store.get_all_jobs().await.unwrap().is_empty());
}

/// Marks every running run interrupted, so the next check starts without any.
async fn finish_running_runs(store: &dyn Store) {
    store
        .interrupt_orphaned_runs(&Orphans {
            me: "",
            alive_since: t0() + hours(24 * 365),
            reason: "test reset",
            at: t0(),
        })
        .await
        .unwrap();
}

// ---- behind the store ----

/// Direct access to a store's own records, for what the store API will not do (write an
/// unreadable job) or does not show (what is stored for a job it cannot read).
enum Raw {
    Sqlite(sqlx::SqlitePool),
    MySql(sqlx::MySqlPool),
    Postgres(sqlx::PgPool),
    /// A connection, and the store's key prefix.
    Redis(redis::aio::MultiplexedConnection, String),
}

impl Raw {
    async fn connect(server: Server, url: &str) -> Raw {
        match server {
            Server::MySql => Raw::MySql(sqlx::MySqlPool::connect(url).await.unwrap()),
            Server::Postgres => Raw::Postgres(sqlx::PgPool::connect(url).await.unwrap()),
        }
    }

    /// Writes a job's state as it is, filed under `next` (µs; `None` = paused).
    async fn write_job(&self, id: &str, next: Option<i64>, state: &str) {
        const SQL: &str =
            "INSERT INTO tickd_jobs (id, next_run_time, job_state, version) VALUES (?, ?, ?, 0)";
        const PG: &str =
            "INSERT INTO tickd_jobs (id, next_run_time, job_state, version) VALUES ($1, $2, $3, 0)";
        match self {
            Raw::Sqlite(pool) => {
                let query = sqlx::query(SQL).bind(id).bind(next).bind(state);
                query.execute(pool).await.unwrap();
            }
            Raw::MySql(pool) => {
                let query = sqlx::query(SQL).bind(id).bind(next).bind(state);
                query.execute(pool).await.unwrap();
            }
            Raw::Postgres(pool) => {
                let query = sqlx::query(PG).bind(id).bind(next).bind(state);
                query.execute(pool).await.unwrap();
            }
            Raw::Redis(con, prefix) => {
                let mut con = con.clone();
                let _: () = con.hset(format!("{prefix}jobs"), id, state).await.unwrap();
                if let Some(micros) = next {
                    let index = format!("{prefix}run_times");
                    let _: () = con.zadd(index, id, micros).await.unwrap();
                }
            }
        }
    }

    /// A job's next run time in its index (µs) and its state, as stored.
    async fn stored_job(&self, id: &str) -> Option<(Option<i64>, String)> {
        const SQL: &str = "SELECT next_run_time, job_state FROM tickd_jobs WHERE id = ?";
        const PG: &str = "SELECT next_run_time, job_state FROM tickd_jobs WHERE id = $1";
        let row = match self {
            Raw::Sqlite(pool) => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await,
            Raw::MySql(pool) => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await,
            Raw::Postgres(pool) => sqlx::query_as(PG).bind(id).fetch_optional(pool).await,
            Raw::Redis(con, prefix) => {
                let (state, score): (Option<String>, Option<f64>) = redis::pipe()
                    .hget(format!("{prefix}jobs"), id)
                    .zscore(format!("{prefix}run_times"), id)
                    .query_async(&mut con.clone())
                    .await
                    .unwrap();
                // Scores are whole µs.
                return state.map(|state| (score.map(|score| score as i64), state));
            }
        };
        row.unwrap()
    }

    /// Locks a job row as a claim does, until the answer is rolled back.
    async fn lock_job_row(&self, id: &str) -> RawLock {
        match self {
            Raw::Sqlite(_) | Raw::Redis(..) => unreachable!("only shared stores lock rows"),
            Raw::MySql(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("SELECT id FROM tickd_jobs WHERE id = ? FOR UPDATE")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                RawLock::MySql(tx)
            }
            Raw::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("SELECT id FROM tickd_jobs WHERE id = $1 FOR UPDATE")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                RawLock::Postgres(tx)
            }
        }
    }

    async fn close(&self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::MySql(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
            Raw::Redis(..) => {}
        }
    }
}

/// An open transaction holding a row lock.
enum RawLock {
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl RawLock {
    async fn rollback(self) {
        match self {
            RawLock::MySql(tx) => tx.rollback().await.unwrap(),
            RawLock::Postgres(tx) => tx.rollback().await.unwrap(),
        }
    }
}
