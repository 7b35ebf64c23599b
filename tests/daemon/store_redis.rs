//! What only the Redis store has, against a real server: its key layout's housekeeping (an
//! index entry goes with what it indexes; entries of kinds only Redis has are parked when
//! unreadable; runs written before the listing's `run_ids` index are listed after an open),
//! opening (the URL, an unreachable server, TLS), the single-daemon lock, and an
//! outage. The contract every store keeps is checked by `tests/daemon/store.rs`, on Redis too.
//!
//! Needs `TICKD_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`), and `redis-server` on PATH
//! for the outage test; without the variable these tests show as ignored. Each test works
//! under its own random key prefix and deletes its keys at the end, even when it fails.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::db::Space;
use crate::common::store_checks::{ClaimDue, listed_ids};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use redis::Commands;
use serde_json::json;
use tickd::api::view::render;
use tickd::job::{Job, JobDefaults, JobSpec, RunCause, RunRecord, RunStatus};
use tickd::store::{Claim, JobStore, Orphans, RedisStore, RunFilter, RunLog, Store, StoreError};

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

/// Whether `space` has the key `name` (an empty hash, set or sorted set is no key).
fn has(space: &Space, name: &str) -> bool {
    space.keys().contains(&space.key(name))
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn claims_park_a_dangling_index_entry_and_an_unreadable_version() {
    let space = Space::fresh();
    let store = open(&space).await;
    let due = (t0() - TimeDelta::seconds(1)).timestamp_micros();
    let state = job("badversion", Some(t0())).to_state();
    {
        let mut con = space.raw();
        // An index entry without a job at all.
        let _: () = con.zadd(space.key("run_times"), "dangling", due).unwrap();
        // A readable state with an unreadable version.
        let _: () = con.hset(space.key("jobs"), "badversion", &state).unwrap();
        let _: () = con.hset(space.key("versions"), "badversion", "x").unwrap();
        let _: () = con.zadd(space.key("run_times"), "badversion", due).unwrap();
    }
    let ok = job("ok", Some(t0()));
    store.add_job(&ok, &render(&ok)).await.unwrap();
    assert!(
        store.lookup_job("badversion").await.unwrap().is_none(),
        "unreadable: logged, not answered"
    );
    let pause = |j: &Job| Claim {
        view: String::new(),
        next: Some(Job {
            next_run_time: None,
            ..j.clone()
        }),
        runs: Vec::new(),
    };
    let claimed = store.claim_due_jobs(t0(), 10, &pause).await.unwrap();
    let claimed_ids: Vec<&str> = claimed.iter().map(|(j, _)| j.id.as_str()).collect();
    assert_eq!(claimed_ids, ["ok"]);
    let mut con = space.raw();
    for id in ["dangling", "badversion"] {
        let score: Option<f64> = con.zscore(space.key("run_times"), id).unwrap();
        assert_eq!(score, None, "{id} parked: out of the index");
    }
    let kept: Option<String> = con.hget(space.key("jobs"), "badversion").unwrap();
    assert_eq!(kept, Some(state), "its state is kept");
    let made_up: Option<String> = con.hget(space.key("jobs"), "dangling").unwrap();
    assert_eq!(made_up, None, "no job is made up for a dangling entry");
    assert_eq!(store.get_next_run_time().await.unwrap(), None);
    assert_eq!(listed_ids(&store).await, ["ok"]);
    store.close().await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn paused_and_removed_jobs_leave_no_index_keys() {
    let space = Space::fresh();
    let store = open(&space).await;
    let a = job("a", Some(t0()));
    store.add_job(&a, &render(&a)).await.unwrap();
    assert!(has(&space, "run_times"));
    // Paused by an update: out of the index, and an empty index is no key.
    let mut paused = store.lookup_job("a").await.unwrap().unwrap();
    paused.next_run_time = None;
    store.update_job(&paused, &render(&paused)).await.unwrap();
    assert!(!has(&space, "run_times"), "{:?}", space.keys());
    // Removed: nothing of a job is left (the lock is the store's own).
    let b = job("b", Some(t0()));
    store.add_job(&b, &render(&b)).await.unwrap();
    store.remove_job("a").await.unwrap();
    store.remove_job("b").await.unwrap();
    assert_eq!(space.keys(), [space.key("lock")]);
    store.close().await;
    let left = space.keys();
    assert!(left.is_empty(), "close() deletes the lock: {left:?}");
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn finished_and_pruned_runs_leave_no_index_entries() {
    let space = Space::fresh();
    let store = open(&space).await;
    let run = |job_id: &str, scheduled: Option<DateTime<Utc>>, owner: &str| {
        let cause = if scheduled.is_some() {
            RunCause::Schedule
        } else {
            RunCause::RunNow
        };
        let scheduled = scheduled.map(|t| t.fixed_offset());
        RunRecord::new(
            t0(),
            job_id,
            scheduled,
            RunStatus::Running,
            cause,
            "host-a",
            owner,
        )
    };
    let mut finishing = run("a", Some(t0()), "me");
    let orphan = run("a", None, "gone");
    let other = run("b", Some(t0()), "gone");
    for r in [&finishing, &orphan, &other] {
        store.insert_run(r).await.unwrap();
    }
    let running = || -> HashSet<String> { space.raw().smembers(space.key("running")).unwrap() };
    assert_eq!(running().len(), 3);
    // A run leaves the running index when it finishes, or is interrupted.
    finishing.status = RunStatus::Succeeded;
    store.update_run(&finishing).await.unwrap();
    let orphans = Orphans {
        me: "me",
        alive_since: t0(),
        reason: "gone",
        at: t0(),
    };
    assert_eq!(store.interrupt_orphaned_runs(&orphans).await.unwrap(), 2);
    assert!(running().is_empty(), "{:?}", running());
    // Pruned by count: the run's index entries go with it, its job's others stay.
    assert_eq!(
        store
            .prune_runs(t0() - TimeDelta::days(1), 1)
            .await
            .unwrap(),
        1
    );
    let mut con = space.raw();
    let job_runs: Vec<String> = con.zrange(space.key("job_runs:a"), 0, -1).unwrap();
    assert_eq!(job_runs, [orphan.id]);
    let created: usize = con.zcard(space.key("runs_created")).unwrap();
    assert_eq!(created, 2);
    let slots: Vec<String> = con.hvals(space.key("run_slots")).unwrap();
    assert_eq!(slots, [other.id]);
    // Pruned by age: nothing is left of the runs (memory stays bounded).
    assert_eq!(
        store
            .prune_runs(t0() + TimeDelta::days(1), 0)
            .await
            .unwrap(),
        2
    );
    store.close().await;
    let left = space.keys();
    assert!(left.is_empty(), "nothing left of the runs: {left:?}");
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn runs_written_before_the_listing_index_are_listed_after_open() {
    let space = Space::fresh();
    let store = open(&space).await;
    let mut ids = Vec::new();
    for (i, job_id) in ["a", "b", "a"].into_iter().enumerate() {
        let created = t0() + TimeDelta::seconds(i64::try_from(i).unwrap());
        let run = RunRecord::new(
            created,
            job_id,
            None,
            RunStatus::Failed,
            RunCause::RunNow,
            "host",
            "me",
        );
        store.insert_run(&run).await.unwrap();
        ids.push(run.id.to_string());
    }
    ids.reverse();
    let all = RunFilter {
        limit: 10,
        ..RunFilter::default()
    };
    let listed = |runs: Vec<RunRecord>| {
        runs.into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(store.list_runs(&all).await.unwrap()), ids);
    store.close().await;
    // As an older tickd left them: no `run_ids`, which the next open fills.
    let _: () = space.raw().del(space.key("run_ids")).unwrap();
    let store = open(&space).await;
    assert_eq!(listed(store.list_runs(&all).await.unwrap()), ids);
    let count: usize = space.raw().zcard(space.key("run_ids")).unwrap();
    assert_eq!(count, 3);
    // Pruned runs leave the index.
    assert_eq!(
        store
            .prune_runs(t0() + TimeDelta::days(1), 0)
            .await
            .unwrap(),
        3
    );
    assert!(store.list_runs(&all).await.unwrap().is_empty());
    store.close().await;
    let left = space.keys();
    assert!(left.is_empty(), "nothing left of the runs: {left:?}");
}

#[tokio::test]
#[cfg_attr(not(tickd_test_redis), ignore = "needs TICKD_TEST_REDIS_URL")]
async fn open_dispatches_redis_urls_to_the_redis_store() {
    let space = Space::fresh();
    let store = tickd::store::open(&space.url("")).await.unwrap();
    assert!(!store.shared());
    let a = job("a", None);
    store.add_job(&a, &render(&a)).await.unwrap();
    for name in ["jobs", "versions", "lock"] {
        assert!(has(&space, name), "{name} in {:?}", space.keys());
    }
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
