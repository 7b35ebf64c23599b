//! Claims per second with three daemons sharing one database (issue 5): three stores, each
//! with its own connection pool as three daemons have, claim the same due jobs concurrently
//! through `JobStore::due_jobs` and `commit_claims` (one transaction per batch: `FOR UPDATE SKIP LOCKED`,
//! run records under UNIQUE, job advance). Scripts are not run: this measures the database
//! side of firing, which bounds how many fire times a cluster can take per second.
//!
//! `cargo bench --bench claims` with `TICKD_TEST_POSTGRES_URL` and/or `TICKD_TEST_MYSQL_URL`
//! set (e.g. `postgres://postgres@127.0.0.1:5432/test`); a fresh database is created on the
//! server and dropped at the end. Prints claims/s; asserts each fire time was taken once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection};
use tickd::api::view::render;
use tickd::job::{Job, JobDefaults, JobSpec, RunCause, RunRecord, RunStatus};
use tickd::store::{self, Claim, Store};

const JOBS: usize = 10_000;
const DAEMONS: usize = 3;
const BATCH: usize = 256;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap()
}

fn job(i: usize) -> Job {
    let body = json!({"id": format!("job{i:05}"), "func": "task:success", "trigger": "interval", "minutes": 1});
    let mut job = JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, t0())
        .unwrap()
        .job;
    job.next_run_time = Some(t0().fixed_offset());
    job
}

/// What the scheduler decides for a due job: one run record, the next fire time.
fn decide(node: &'static str) -> impl Fn(&Job) -> Claim + Send + Sync {
    move |job: &Job| {
        let scheduled = job.next_run_time.unwrap();
        let run = RunRecord::new(
            t0(),
            &job.id,
            Some(scheduled),
            RunStatus::Running,
            RunCause::Schedule,
            node,
            node,
        );
        let mut next = job.clone();
        next.next_run_time = job.trigger.next_fire_time(Some(scheduled), t0());
        Claim {
            view: render(&next),
            next: Some(next),
            runs: vec![run],
        }
    }
}

async fn admin(url: &str, sql: String) {
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

async fn bench(server: &str) {
    let name = format!("tickd_bench_{}", uuid::Uuid::now_v7().simple());
    admin(server, format!("CREATE DATABASE {name}")).await;
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    let url = format!("{base}/{name}");
    let first = store::open(&url).await.unwrap();
    for i in 0..JOBS {
        let job = job(i);
        first.add_job(&job, &render(&job)).await.unwrap();
    }
    let mut stores: Vec<Arc<dyn Store>> = vec![first];
    for _ in 1..DAEMONS {
        stores.push(store::open(&url).await.unwrap());
    }
    let started = Instant::now();
    let nodes = ["daemon-a", "daemon-b", "daemon-c"];
    let tasks: Vec<_> = stores
        .iter()
        .zip(nodes)
        .map(|(store, node)| {
            let store = store.clone();
            tokio::spawn(async move {
                let decide = decide(node);
                let mut taken = 0;
                loop {
                    let due = store.due_jobs(t0(), BATCH).await.unwrap();
                    let claims = due
                        .into_iter()
                        .map(|job| {
                            let claim = decide(&job);
                            (job, claim)
                        })
                        .collect();
                    let claimed = store.commit_claims(claims).await.unwrap();
                    if claimed.is_empty() {
                        return taken;
                    }
                    taken += claimed.iter().filter(|(_, c)| !c.runs.is_empty()).count();
                }
            })
        })
        .collect();
    let mut per_daemon = Vec::new();
    for task in tasks {
        per_daemon.push(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total: usize = per_daemon.iter().sum();
    assert_eq!(total, JOBS, "every fire time taken exactly once");
    println!(
        "{}: {JOBS} fire times claimed by {DAEMONS} daemons in {:.2} s = {:.0} claims/s (per daemon {:?})",
        base.split(':').next().unwrap_or("?"),
        elapsed.as_secs_f64(),
        JOBS as f64 / elapsed.as_secs_f64(),
        per_daemon
    );
    for store in &stores {
        store.close().await;
    }
    let force = if server.starts_with("postgres") {
        " WITH (FORCE)"
    } else {
        ""
    };
    admin(server, format!("DROP DATABASE IF EXISTS {name}{force}")).await;
}

#[tokio::main]
async fn main() {
    let mut ran = false;
    for var in ["TICKD_TEST_POSTGRES_URL", "TICKD_TEST_MYSQL_URL"] {
        if let Ok(url) = std::env::var(var)
            && !url.is_empty()
        {
            bench(&url).await;
            ran = true;
        }
    }
    if !ran {
        println!(
            "claims: not measured: it needs a database server; set TICKD_TEST_POSTGRES_URL \
             and/or TICKD_TEST_MYSQL_URL (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
    }
}
