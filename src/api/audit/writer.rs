//! Audit records are written off the request path: the layer hands each one to a bounded
//! queue, and one writer task appends whatever queued as one batch.
//!
//! A change's record waits for room in the queue (back-pressure: a change is never answered
//! without its record queued). A refused attempt's record that finds the queue full is
//! dropped and counted, with a warning at most once a minute, so that a flood of bad logins
//! cannot grow memory or hold up the answers. A store error is logged and the batch tried
//! again a few times, never a panic. The writer also deletes records past their age hourly
//! (the app does it once at start). At shutdown it writes what is queued before the store
//! closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::store::{AuditLog, AuditRecord};

/// Records the queue holds.
const QUEUE: usize = 4096;
/// Records appended at most in one batch.
const BATCH: usize = 512;
/// How long a batch that is not full waits for more records before it is written.
const LINGER: Duration = Duration::from_millis(25);
/// Waits before each retry of a failed batch.
const RETRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];
/// How often dropped records are reported, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How often old records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How long the writer may take to write what is queued at shutdown.
const DRAIN: Duration = Duration::from_secs(15);

/// The sending side, shared by the layer (cloning is a reference-count bump).
#[derive(Clone, Debug)]
pub struct Auditor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: mpsc::Sender<AuditRecord>,
    /// Refused attempts' records dropped since the start.
    dropped: AtomicU64,
    /// The last warning of dropped records: when, and the count it brought up to date.
    warned: Mutex<(Option<Instant>, u64)>,
}

/// The writer task, kept by the app to drain it at shutdown.
#[derive(Debug)]
pub struct AuditWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Where the writer writes, and how long records are kept.
pub struct AuditSettings {
    /// The store's audit log.
    pub log: Arc<dyn AuditLog>,
    /// The clock retention reads.
    pub clock: Arc<dyn Clock>,
    /// Records older than this are deleted; `None` keeps them.
    pub max_age: Option<Duration>,
}

impl Auditor {
    /// Starts the writer task; answers the layer's handle and the task's.
    pub fn start(settings: AuditSettings) -> (Auditor, AuditWriter) {
        Auditor::start_sized(settings, QUEUE)
    }

    /// [`Auditor::start`] with a queue of `capacity` records.
    fn start_sized(settings: AuditSettings, capacity: usize) -> (Auditor, AuditWriter) {
        let (queue, received) = mpsc::channel(capacity);
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue,
            dropped: AtomicU64::new(0),
            warned: Mutex::new((None, 0)),
        });
        let task = tokio::spawn(run(settings, received, stopped, Arc::clone(&shared)));
        (Auditor { shared }, AuditWriter { stop, task })
    }

    /// Queues a change's record, waiting for room.
    pub(crate) async fn change(&self, record: AuditRecord) {
        if self.shared.queue.send(record).await.is_err() {
            tracing::warn!("An audit record came after the audit log was closed; it is lost");
        }
    }

    /// Queues a refused attempt's record, or drops it (counted) when the queue is full.
    pub(crate) fn refusal(&self, record: AuditRecord) {
        match self.shared.queue.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.report_dropped(false);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Shared {
    /// Warns of the records dropped since the last warning, at most once a minute unless
    /// `now` (shutdown).
    fn report_dropped(&self, now: bool) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, reported) = *warned;
        if !now && at.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            *warned = (Some(Instant::now()), dropped);
            tracing::warn!(
                "{} audit records of refused requests dropped: the audit queue was full",
                dropped - reported
            );
        }
    }
}

impl AuditWriter {
    /// Writes what is queued (for [`DRAIN`] at most), then ends the task. Call once nothing
    /// more will be queued, before the store closes.
    pub async fn close(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(DRAIN, &mut task).await {
            Ok(_) => {}
            Err(_) => {
                tracing::error!(
                    "The audit log could not be written within {} s at shutdown; records still \
                     queued are lost",
                    DRAIN.as_secs()
                );
                task.abort();
            }
        }
    }
}

/// The writer: batches until stopped, pruning hourly, then drains.
async fn run(
    settings: AuditSettings,
    mut received: mpsc::Receiver<AuditRecord>,
    mut stopped: oneshot::Receiver<()>,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    // The first sweep is the app's, at start.
    let mut prune =
        tokio::time::interval_at(tokio::time::Instant::now() + PRUNE_EVERY, PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            n = received.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                gather(&mut received, &mut batch).await;
                write(settings.log.as_ref(), &batch).await;
                batch.clear();
                shared.report_dropped(false);
            }
            _ = &mut stopped => break,
            _ = prune.tick() => prune_old(&settings).await,
        }
    }
    received.close();
    while received.recv_many(&mut batch, BATCH).await > 0 {
        write(settings.log.as_ref(), &batch).await;
        batch.clear();
    }
    shared.report_dropped(true);
}

/// Lets a batch that is not full gather what comes within [`LINGER`]: a steady trickle of
/// changes (a script creating jobs one after another) then costs the store one write per
/// [`LINGER`], not one per change, each of which would queue behind or hold up the changes'
/// own writes (on SQLite, one writer at a time).
async fn gather(received: &mut mpsc::Receiver<AuditRecord>, batch: &mut Vec<AuditRecord>) {
    if batch.len() >= BATCH {
        return;
    }
    tokio::time::sleep(LINGER).await;
    while batch.len() < BATCH {
        match received.try_recv() {
            Ok(record) => batch.push(record),
            Err(_) => return,
        }
    }
}

/// Appends a batch, retrying a failed one a few times; logs what could not be written.
async fn write(log: &dyn AuditLog, batch: &[AuditRecord]) {
    let mut waits = RETRIES.iter();
    loop {
        match log.append(batch).await {
            Ok(()) => return,
            Err(error) => match waits.next() {
                Some(wait) => {
                    tracing::warn!(
                        "Writing {} audit records failed ({error}); retrying",
                        batch.len()
                    );
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    tracing::error!(
                        "{} audit records could not be written and are lost: {error:#}",
                        batch.len()
                    );
                    return;
                }
            },
        }
    }
}

/// Deletes the records past their age.
async fn prune_old(settings: &AuditSettings) {
    let Some(max_age) = settings.max_age else {
        return;
    };
    let Ok(max_age) = chrono::TimeDelta::from_std(max_age) else {
        return;
    };
    let before = settings.clock.now() - max_age;
    match settings.log.prune_audit(before).await {
        Ok(0) => {}
        Ok(count) => tracing::info!("Deleted {count} audit records older than {before}"),
        Err(error) => tracing::error!("Audit log retention sweep failed: {error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use tokio::sync::Semaphore;

    use super::*;
    use crate::clock::SystemClock;
    use crate::store::{AuditEntry, AuditFilter, StoreError};

    /// An audit log that appends only while its gate has permits, failing the first
    /// `failures` appends.
    #[derive(Default)]
    struct Fake {
        records: Mutex<Vec<AuditRecord>>,
        gate: Option<Semaphore>,
        failures: AtomicUsize,
    }

    #[async_trait]
    impl AuditLog for Fake {
        async fn append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            if self
                .failures
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StoreError::Unavailable(anyhow::anyhow!("down")));
            }
            self.records.lock().unwrap().extend_from_slice(records);
            Ok(())
        }

        async fn audit(&self, _: &AuditFilter<'_>) -> Result<Vec<AuditRecord>, StoreError> {
            Ok(Vec::new())
        }

        async fn prune_audit(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn record(target: usize) -> AuditRecord {
        AuditRecord::now(AuditEntry {
            actor: None,
            credential: None,
            source: "127.0.0.1".to_owned(),
            method: "POST".to_owned(),
            route: "/scheduler/jobs".to_owned(),
            target: Some(target.to_string()),
            status: 401,
        })
    }

    fn start(log: &Arc<Fake>, capacity: usize) -> (Auditor, AuditWriter) {
        let log: Arc<dyn AuditLog> = log.clone();
        Auditor::start_sized(
            AuditSettings {
                log,
                clock: Arc::new(SystemClock),
                max_age: None,
            },
            capacity,
        )
    }

    fn targets(log: &Fake) -> Vec<usize> {
        let records = log.records.lock().unwrap();
        records
            .iter()
            .map(|r| r.target.as_deref().unwrap().parse().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn refusals_that_find_the_queue_full_are_dropped_and_counted() {
        let log = Arc::new(Fake {
            gate: Some(Semaphore::new(0)),
            ..Fake::default()
        });
        let (auditor, writer) = start(&log, 4);
        for n in 0..100 {
            auditor.refusal(record(n));
        }
        let dropped = auditor.shared.dropped.load(Ordering::Relaxed);
        assert!(
            dropped >= 90,
            "at most the queue and one batch are kept: {dropped}"
        );
        log.gate.as_ref().unwrap().add_permits(1000);
        writer.close().await;
        assert_eq!(targets(&log).len() as u64 + dropped, 100);
    }

    #[tokio::test]
    async fn changes_wait_for_room_and_shutdown_writes_them_all() {
        let log = Arc::new(Fake {
            gate: Some(Semaphore::new(0)),
            ..Fake::default()
        });
        let (auditor, writer) = start(&log, 2);
        let sending = {
            let auditor = auditor.clone();
            tokio::spawn(async move {
                for n in 0..20 {
                    auditor.change(record(n)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sending.is_finished(), "a full queue holds changes back");
        log.gate.as_ref().unwrap().add_permits(1000);
        sending.await.unwrap();
        writer.close().await;
        assert_eq!(
            targets(&log),
            (0..20).collect::<Vec<_>>(),
            "none lost, in order"
        );
        assert_eq!(auditor.shared.dropped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_is_retried() {
        let log = Arc::new(Fake {
            failures: AtomicUsize::new(2),
            ..Fake::default()
        });
        let (auditor, writer) = start(&log, 8);
        auditor.change(record(1)).await;
        writer.close().await;
        assert_eq!(targets(&log), [1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_stays_down_loses_the_batch_without_a_panic() {
        let log = Arc::new(Fake {
            failures: AtomicUsize::new(usize::MAX),
            ..Fake::default()
        });
        let (auditor, writer) = start(&log, 8);
        auditor.change(record(1)).await;
        auditor.change(record(2)).await;
        writer.close().await;
        assert!(targets(&log).is_empty());
    }
}
