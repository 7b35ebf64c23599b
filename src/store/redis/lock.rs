//! The single-daemon lock: `<prefix>lock`, set with `SET NX PX <ttl>` to a token naming this
//! daemon, refreshed every third of its time to live by a background task, deleted at
//! [`Store::close`](crate::store::Store::close) (only while this daemon still holds it).
//!
//! A daemon that crashes stops refreshing, so its lock expires at most one time to live later.
//! A daemon that finds the lock taken at start-up therefore waits for as long as the lock has
//! left to live (at most its own time to live, plus a little): if the holder crashed, the lock
//! expires meanwhile and the new daemon takes it, so a supervisor's quick restart after a
//! crash succeeds; if the holder is alive it keeps refreshing, and the new daemon refuses to
//! start with a message naming it. A daemon stalled for longer than the time to live (or a
//! Redis that lost its data) finds its lock gone at the next refresh and takes it again if it
//! is free, logging a warning; if another daemon took it meanwhile, it logs an error.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use redis::aio::ConnectionManager;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::scripts::Scripts;
use crate::store::StoreError;

/// Extra wait past the holder's remaining time to live, for clock steps and latency.
const MARGIN: Duration = Duration::from_millis(500);

/// How often a waiting daemon tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// The lock as this daemon holds it.
#[derive(Debug)]
pub(super) struct Lock {
    key: String,
    token: String,
    /// The refresh task, until [`Lock::release`] (or the store is dropped).
    refresher: Mutex<Option<JoinHandle<()>>>,
}

/// Whose token this is: readable, and unique per process.
fn token() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().to_lowercase())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!(
        "host {host} pid {} id {}",
        std::process::id(),
        uuid::Uuid::now_v7()
    )
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Lock {
    /// Takes the lock (waiting out a crashed holder's lock) and starts refreshing it.
    ///
    /// # Errors
    /// Another live daemon holds it, or Redis cannot be reached.
    pub async fn acquire(
        conn: &ConnectionManager,
        scripts: &Scripts,
        prefix: &str,
        ttl: Duration,
        location: &str,
    ) -> Result<Lock, StoreError> {
        let key = format!("{prefix}lock");
        let token = token();
        let mut con = conn.clone();
        let mut deadline: Option<Instant> = None;
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut con)
                .await?;
            if taken.is_some() {
                break;
            }
            let (holder, left): (Option<String>, i64) = redis::pipe()
                .atomic()
                .get(&key)
                .pttl(&key)
                .query_async(&mut con)
                .await?;
            let Some(holder) = holder else {
                continue; // released in between: try again at once
            };
            let refuse = |why: &str| {
                StoreError::Backend(anyhow!(
                    "another tickd is already using the Redis store at {location} (key prefix \
                     {prefix:?}): its lock {key} is held by {holder}{why}; a Redis store serves \
                     one daemon — stop the other one, or share a MySQL or PostgreSQL store \
                     between daemons"
                ))
            };
            let Ok(left) = u64::try_from(left) else {
                return Err(refuse(&format!(
                    " and has no expiry (if no tickd uses this store, delete {key})"
                )));
            };
            let now = Instant::now();
            // A holder with a longer time to live than ours is waited for as long as ours.
            let wait = Duration::from_millis(left).min(ttl) + MARGIN;
            let deadline = *deadline.get_or_insert_with(|| {
                tracing::warn!(
                    "The Redis store at {location} is locked by {holder}; waiting up to {} ms \
                     for the lock to expire, in case that daemon crashed",
                    millis(wait)
                );
                now + wait
            });
            if now >= deadline {
                return Err(if Duration::from_millis(left) > ttl {
                    refuse(&format!(
                        " (if that daemon is gone, the lock expires in {} s, or delete {key})",
                        left.div_ceil(1000)
                    ))
                } else {
                    refuse(", which keeps it alive")
                });
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
        let refresher = tokio::spawn(refresh(
            conn.clone(),
            scripts.clone(),
            key.clone(),
            token.clone(),
            ttl,
        ));
        tracing::info!("Holding the Redis store lock {key} as {token}");
        Ok(Lock {
            key,
            token,
            refresher: Mutex::new(Some(refresher)),
        })
    }

    /// Stops refreshing, without deleting the key (as a crash would).
    pub fn stop_refreshing(&self) {
        let handle = self
            .refresher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
    }

    /// Stops refreshing and deletes the key if this daemon still holds it.
    pub async fn release(&self, conn: &ConnectionManager, scripts: &Scripts) {
        self.stop_refreshing();
        let mut con = conn.clone();
        let released: Result<i64, _> = scripts
            .release_lock
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut con)
            .await;
        if let Err(error) = released {
            tracing::warn!(
                "Could not release the Redis store lock {}: {error}; it expires by itself",
                self.key
            );
        }
    }
}

/// Refreshes the lock every third of its time to live, for as long as the store is open.
async fn refresh(
    mut con: ConnectionManager,
    scripts: Scripts,
    key: String,
    token: String,
    ttl: Duration,
) {
    let mut every = tokio::time::interval(ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await; // the first tick is immediate; the lock was just set
    loop {
        every.tick().await;
        let refreshed: Result<i64, _> = scripts
            .refresh_lock
            .key(&key)
            .arg(&token)
            .arg(millis(ttl))
            .invoke_async(&mut con)
            .await;
        match refreshed {
            Ok(1) => {}
            Ok(2) => tracing::warn!(
                "The Redis store lock {key} had expired (this daemon could not refresh it in \
                 time, or Redis lost its data); taken again"
            ),
            Ok(_) => tracing::error!(
                "The Redis store lock {key} is held by another daemon: two tickd daemons are \
                 using one Redis store; stop one of them"
            ),
            Err(error) => tracing::warn!("Could not refresh the Redis store lock {key}: {error}"),
        }
    }
}
