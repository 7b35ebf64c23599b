//! The notification outbox: every webhook delivery tickd owes, written in the same store as
//! the runs it is about, and delivered from there (`crate::notify`). A delivery survives a
//! restart, and the daemons sharing a store deliver each one once: a daemon *claims* a due
//! delivery for a while (a lease, compare-and-set) before it sends, and records the outcome
//! only while it holds the claim.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not delivered yet: due at its `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Not delivered by the give-up age (`[notify] give_up_after`); no more attempts.
    GaveUp,
}

impl Delivery {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::GaveUp => "gave_up",
        }
    }

    /// Reads [`Delivery::as_str`]'s form back.
    pub fn parse(text: &str) -> Option<Delivery> {
        [Delivery::Pending, Delivery::Delivered, Delivery::GaveUp]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One delivery of one event to one webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRecord {
    /// A UUIDv7: ids sort by creation, which pages the listing.
    pub id: String,
    /// When the event happened (the wall clock).
    pub created_at: DateTime<Utc>,
    /// `failed`, `timed_out`, `missed`, `recovered`, `long_running`.
    pub event: String,
    /// The job.
    pub job_id: String,
    /// The run the event is about.
    pub run_id: String,
    /// The webhook's name (its URL and secret stay in the config: neither is stored).
    pub webhook: String,
    /// The JSON body sent, as text.
    pub body: String,
    /// Where it stands.
    pub status: Delivery,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// When the next attempt is due (`None` once delivered or given up).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, in words (never the URL).
    pub last_error: Option<String>,
    /// When the receiver took it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Where deliveries wait and are claimed.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Writes new deliveries, `pending`, due at their `next_attempt_at`.
    async fn enqueue_notifications(&self, batch: &[NotificationRecord]) -> Result<(), StoreError>;
    /// Pending deliveries due by `now` that no daemon holds a claim on, earliest due first,
    /// at most `limit`.
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;
    /// Claims a pending delivery for `owner` until `until`, if it is unclaimed or its claim
    /// ran out by `now`: answers whether this call took it.
    async fn claim_notification(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records an attempt's outcome (status, attempts, next attempt, error, delivery time)
    /// and lets the claim go, if `owner` still holds it: answers whether it did.
    async fn record_attempt(
        &self,
        record: &NotificationRecord,
        owner: &str,
    ) -> Result<bool, StoreError>;
    /// The earliest `next_attempt_at` of a pending delivery after `after`.
    async fn next_notification_at(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Deliveries newest first, at most `limit`, only those older than `before` when given.
    async fn list_notifications(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<NotificationRecord>, StoreError>;
    /// Deletes deliveries that ended (delivered or given up) before `older_than`; answers how
    /// many went.
    async fn prune_notifications(&self, older_than: DateTime<Utc>) -> Result<u64, StoreError>;
}
