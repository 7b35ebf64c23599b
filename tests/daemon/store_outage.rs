//! A server store whose database goes away answers `StoreError::Unavailable` (the API's 503)
//! within seconds — not a hang, not a generic backend error — and works again once the
//! database is back, without being reopened. A TCP proxy in the test stands between the store
//! and the real server and is cut and restored. Runs when `TICKD_TEST_MYSQL_URL` /
//! `TICKD_TEST_POSTGRES_URL` name a server (ignored otherwise), in a database of its own,
//! dropped at the end.

use crate::common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::db::{Server, in_fresh_database};
use common::store_checks::ClaimDue;
use serde_json::json;
use tickd::api::view::render;
use tickd::job::{Job, JobDefaults, JobSpec};
use tickd::metrics::{Metrics, Snapshot};
use tickd::store::{self, Claim, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// Longest an outage may take to answer: the pool's acquire timeout (5 s) and some slack.
const PROMPT: Duration = Duration::from_secs(15);

#[tokio::test]
#[cfg_attr(not(tickd_test_mysql), ignore = "needs TICKD_TEST_MYSQL_URL")]
async fn mysql_store_survives_an_outage() {
    in_fresh_database(Server::MySql, |url| survives_an_outage(url, 3306)).await;
}

#[tokio::test]
#[cfg_attr(not(tickd_test_postgres), ignore = "needs TICKD_TEST_POSTGRES_URL")]
async fn postgres_store_survives_an_outage() {
    in_fresh_database(Server::Postgres, |url| survives_an_outage(url, 5432)).await;
}

async fn survives_an_outage(url: String, default_port: u16) {
    let proxy = Proxy::start(upstream(&url, default_port).await).await;
    let through = via(&url, proxy.addr);
    // Timed as the daemon times it when metrics are on: the outage shows as store errors.
    let metrics = Metrics::new([], 10);
    let store = store::metered(store::open(&through).await.unwrap(), &metrics);
    store
        .add_job(&job("steady"), &render(&job("steady")))
        .await
        .unwrap();

    store.ping().await.unwrap();
    proxy.cut().await;
    let error = promptly(store.lookup_job("steady")).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let text = metrics.encode(Snapshot::default(), false).unwrap();
    for line in [
        r#"tickd_store_errors_total{operation="lookup_job"} 1"#,
        r#"tickd_store_errors_total{operation="add_job"} 0"#,
        r#"tickd_store_operation_duration_seconds_count{operation="lookup_job"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // Readiness's question gets the same answer.
    let error = promptly(store.ping()).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let error = promptly(store.claim_due_jobs(t0(), 10, &keep))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // A daemon starting while its database is down says so the same way.
    let error = promptly(store::open(&through)).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    proxy.restore().await;
    promptly(store.ping()).await.unwrap();
    let found = promptly(store.lookup_job("steady")).await.unwrap();
    assert_eq!(
        found.map(|job| job.id.to_string()).as_deref(),
        Some("steady")
    );
    store
        .add_job(&job("after"), &render(&job("after")))
        .await
        .unwrap();
    let claimed = store.claim_due_jobs(t0(), 10, &keep).await.unwrap();
    assert_eq!(claimed.len(), 2, "claims work again");
    store.close().await;
    proxy.cut().await;
}

/// Awaits `call`, failing the test if it takes longer than [`PROMPT`].
async fn promptly<T>(call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let answer = tokio::time::timeout(PROMPT, call)
        .await
        .expect("a store call hung while its database was away");
    println!("answered in {:?}", started.elapsed());
    answer
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// A job due at t0.
fn job(id: &str) -> Job {
    let body = json!({"id": id, "func": "task:success", "trigger": "interval", "minutes": 1});
    let mut job = JobSpec::parse(&body, &JobDefaults::default(), chrono_tz::UTC, t0())
        .unwrap()
        .job;
    job.next_run_time = Some(t0().fixed_offset());
    job
}

/// A claim decision that keeps the job as it is and records nothing.
fn keep(job: &Job) -> Claim {
    Claim {
        view: String::new(),
        next: Some(job.clone()),
        runs: Vec::new(),
    }
}

// ---- the proxy (also cut under a daemon by tests/daemon/health.rs) ----

/// Forwards TCP connections from a local port to the database server, until cut.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    upstream: SocketAddr,
    accepting: Mutex<Option<JoinHandle<()>>>,
    pumps: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            accepting: Mutex::new(None),
            pumps: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, pumps) = (self.upstream, self.pumps.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let pump = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                pumps.lock().unwrap().push(pump.abort_handle());
            }
        });
        *self.accepting.lock().unwrap() = Some(accepting);
    }

    /// The database goes away: the port refuses connections, and open ones are dropped.
    pub(crate) async fn cut(&self) {
        let accepting = self.accepting.lock().unwrap().take();
        if let Some(accepting) = accepting {
            accepting.abort();
            let _ = accepting.await; // the listener is closed once this returns
        }
        for pump in self.pumps.lock().unwrap().drain(..) {
            pump.abort();
        }
    }

    /// The database is back, at the same address.
    pub(crate) async fn restore(&self) {
        self.serve(TcpListener::bind(self.addr).await.unwrap());
    }
}

/// The server's address in a database URL.
pub(crate) async fn upstream(url: &str, default_port: u16) -> SocketAddr {
    let host_port = authority(url).1;
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// `url` pointed at `addr` instead of its server.
pub(crate) fn via(url: &str, addr: SocketAddr) -> String {
    let (before, host_port, _) = authority(url);
    let after = &url[before.len() + host_port.len()..];
    format!("{before}{addr}{after}")
}

/// Splits a URL around its host and port: (everything before, host:port, everything after).
fn authority(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    (&url[..host_start], &url[host_start..end], &url[end..])
}

// ---- databases (as in tests/daemon/store.rs) ----
