//! The delivery task: sends what the outbox holds, each delivery claimed first (a lease of
//! the receiver's timeout and a margin, taken by compare-and-set), so that the daemons sharing
//! a store send each once; a delivery whose daemon died is taken again when its lease runs
//! out. A receiver's 2xx delivers; anything else is tried again after a delay that doubles
//! (`[notify] retry_delay`, at most 10 minutes), until the give-up age.
//!
//! It sleeps until the next delivery is due, or until the notifier writes one; it reads the
//! wall clock, not the scheduler's (deliveries are about the world outside).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use futures_util::stream;

use super::message::{body_signature, signature};
use super::settings::NotifySettings;
use crate::store::{Delivery, NotificationRecord, Store, StoreError};

/// Deliveries read at a time.
const BATCH: u32 = 32;
/// Webhooks delivered to at once (each one's deliveries go one after the other).
const IN_FLIGHT: usize = 8;
/// The longest wait between redeliveries.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);
/// The longest sleep on a store shared with other daemons: deliveries they write (or leave
/// behind) are found within this.
const SHARED_MAX_WAIT: Duration = Duration::from_secs(5);
/// The longest sleep on a store of this daemon's own, whose deliveries only it writes (and
/// wakes the task for).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The wait after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// The most of an error kept on a delivery.
const MAX_ERROR: usize = 500;

/// Sends the outbox's deliveries.
#[derive(Debug)]
pub struct Deliverer {
    settings: Arc<NotifySettings>,
    store: Arc<dyn Store>,
    /// This daemon's name in claims.
    owner: String,
    wake: Arc<tokio::sync::Notify>,
    client: reqwest::Client,
    /// Where attempts are counted, when metrics are on.
    metrics: Option<crate::metrics::Metrics>,
}

impl Deliverer {
    pub(super) fn new(
        settings: Arc<NotifySettings>,
        store: Arc<dyn Store>,
        owner: String,
        wake: Arc<tokio::sync::Notify>,
        metrics: Option<crate::metrics::Metrics>,
    ) -> Deliverer {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tickd/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Deliverer {
            settings,
            store,
            owner,
            wake,
            client,
            metrics,
        }
    }

    /// Delivers until `closed` turns true.
    pub async fn run(self, mut closed: tokio::sync::watch::Receiver<bool>) {
        let max_wait = if self.store.shared() {
            SHARED_MAX_WAIT
        } else {
            MAX_WAIT
        };
        loop {
            if *closed.borrow() {
                break;
            }
            let wait = match self.pass().await {
                Ok(next) => next
                    .and_then(|next| (next - Utc::now()).to_std().ok())
                    .map_or(max_wait, |wait| wait.min(max_wait)),
                Err(error) => {
                    tracing::warn!("Notifications: cannot read the outbox: {error:#}; retrying");
                    STORE_RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                changed = closed.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Sends every delivery due now; answers when the next is due.
    async fn pass(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        loop {
            let due = self.store.due_notifications(Utc::now(), BATCH).await?;
            let full = due.len() == BATCH as usize;
            // A receiver gets its deliveries in the order of their events (the outbox's:
            // due time, then id), one after the other; different receivers at once.
            let mut by_webhook: Vec<(String, Vec<NotificationRecord>)> = Vec::new();
            for record in due {
                match by_webhook
                    .iter_mut()
                    .find(|(name, _)| *name == record.webhook)
                {
                    Some((_, records)) => records.push(record),
                    None => by_webhook.push((record.webhook.clone(), vec![record])),
                }
            }
            stream::iter(by_webhook)
                .for_each_concurrent(IN_FLIGHT, |(_, records)| async move {
                    for record in records {
                        self.deliver(record).await;
                    }
                })
                .await;
            if !full {
                break;
            }
        }
        self.store.next_notification_at(Utc::now()).await
    }

    /// Claims one delivery, sends it, records the outcome.
    async fn deliver(&self, mut record: NotificationRecord) {
        let now = Utc::now();
        let lease = TimeDelta::from_std(self.settings.timeout + Duration::from_secs(30))
            .unwrap_or(TimeDelta::MAX);
        match self
            .store
            .claim_notification(&record.id, &self.owner, now + lease, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return, // another daemon took it
            Err(error) => {
                tracing::warn!(notification = %record.id, "Notifications: cannot claim a delivery: {error:#}");
                return;
            }
        }
        record.attempts += 1;
        let outcome = match self.target(&record).await {
            Ok((url, secret)) => self.send(&url, secret.as_deref(), &record).await,
            Err(why) => Err(why),
        };
        let now = Utc::now();
        match outcome {
            Ok(()) => {
                record.status = Delivery::Delivered;
                record.delivered_at = Some(now);
                record.next_attempt_at = None;
                record.last_error = None;
                tracing::info!(
                    notification = %record.id,
                    run_id = %record.run_id,
                    "Notification {} ({}) delivered to webhook {} (attempt {})",
                    record.id, record.event, record.webhook, record.attempts
                );
            }
            Err(error) => {
                let next = now + self.retry_delay(record.attempts);
                let give_up =
                    TimeDelta::from_std(self.settings.give_up_after).unwrap_or(TimeDelta::MAX);
                if next - record.created_at > give_up {
                    record.status = Delivery::GaveUp;
                    record.next_attempt_at = None;
                    tracing::error!(
                        notification = %record.id,
                        run_id = %record.run_id,
                        "Notification {} ({}) to webhook {} given up after {} attempts: {error}",
                        record.id, record.event, record.webhook, record.attempts
                    );
                } else {
                    record.next_attempt_at = Some(next);
                    tracing::warn!(
                        notification = %record.id,
                        run_id = %record.run_id,
                        "Notification {} ({}) to webhook {} not delivered (attempt {}): {error}; next attempt at {next}",
                        record.id, record.event, record.webhook, record.attempts
                    );
                }
                record.last_error = Some(error);
            }
        }
        if let Some(metrics) = &self.metrics {
            let webhook = if record.webhook.starts_with(super::OWN_TARGET) {
                "job"
            } else {
                record.webhook.as_str()
            };
            let outcome = match record.status {
                Delivery::Delivered => "delivered",
                Delivery::GaveUp => "gave_up",
                Delivery::Pending => "failed",
            };
            metrics.delivery(webhook, outcome);
        }
        if let Err(error) = self.store.record_attempt(&record, &self.owner).await {
            // The claim runs out and the delivery is tried again: at least once, never lost.
            tracing::warn!(notification = %record.id, "Notifications: cannot record a delivery: {error:#}");
        }
    }

    /// Where a delivery goes and what signs it: a configured webhook's, or (`job:<id>`) the
    /// job's own `notify.url` and `notify.secret` as the job has them now.
    async fn target(
        &self,
        record: &NotificationRecord,
    ) -> Result<(String, Option<String>), String> {
        if !record.webhook.starts_with(super::OWN_TARGET) {
            return self
                .settings
                .webhook(&record.webhook)
                .map(|webhook| (webhook.url.clone(), Some(webhook.secret.clone())))
                .ok_or_else(|| {
                    format!(
                        "no webhook is called {:?} in [[notify.webhooks]] any more",
                        record.webhook
                    )
                });
        }
        let job = self
            .store
            .lookup_job(&record.job_id)
            .await
            .map_err(|error| format!("cannot read the job's notify.url: {error}"))?;
        job.and_then(|job| job.policies.notify)
            .and_then(|rule| rule.url.map(|url| (url, rule.secret)))
            .ok_or_else(|| "the job has no notify.url any more".to_owned())
    }

    /// The wait after attempt `attempts` failed: `retry_delay`, doubled each time, at most
    /// [`MAX_RETRY_DELAY`].
    fn retry_delay(&self, attempts: u32) -> TimeDelta {
        let doubled = self
            .settings
            .retry_delay
            .saturating_mul(1 << attempts.saturating_sub(1).min(20))
            .min(MAX_RETRY_DELAY);
        TimeDelta::from_std(doubled).unwrap_or(TimeDelta::MAX)
    }

    /// One POST of the delivery's body, signed; `Err` with the reason in words (never the
    /// URL, which for a chat's webhook is its credential).
    async fn send(
        &self,
        url: &str,
        secret: Option<&str>,
        record: &NotificationRecord,
    ) -> Result<(), String> {
        let timestamp = Utc::now().timestamp();
        let mut post = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Tickd-Event", record.event.as_str())
            .header("X-Tickd-Delivery", record.id.as_str())
            .header("X-Tickd-Timestamp", timestamp.to_string());
        if let Some(secret) = secret {
            let body = record.body.as_bytes();
            post = post
                .header(
                    "X-Tickd-Signature",
                    signature(secret.as_bytes(), timestamp, body),
                )
                .header(
                    "X-Hub-Signature-256",
                    body_signature(secret.as_bytes(), body),
                );
        }
        let sent = post.body(record.body.clone()).send().await;
        match sent {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(format!("the receiver answered {}", answer.status())),
            Err(error) => {
                let error = error.without_url();
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text.truncate(text.floor_char_boundary(MAX_ERROR));
                Err(text)
            }
        }
    }
}
