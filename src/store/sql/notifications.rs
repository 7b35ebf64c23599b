//! [`Outbox`] on SQL: the `tickd_notifications` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlStore;
use super::dialect::{Dialect, Statement, Val, placeholders};
use super::rows::Columns;
use crate::store::{Delivery, NotificationRecord, Outbox, StoreError, from_micros, to_micros};

/// The columns a delivery is written and read as.
const COLUMNS: &str = "id, created_micros, event, job_id, run_id, webhook, body, status, \
    attempts, next_micros, last_error, delivered_micros";

/// How many columns [`COLUMNS`] names.
const WIDTH: usize = 12;

/// Deliveries per `INSERT`: well under every database's limit of bound values.
const PER_INSERT: usize = 100;

#[async_trait]
impl<D: Dialect> Outbox for SqlStore<D> {
    async fn enqueue_notifications(&self, batch: &[NotificationRecord]) -> Result<(), StoreError> {
        for chunk in batch.chunks(PER_INSERT) {
            let row = format!("({})", placeholders(WIDTH));
            let rows = vec![row; chunk.len()].join(", ");
            let insert = Statement::built(format!(
                "INSERT INTO tickd_notifications ({COLUMNS}) VALUES {rows}"
            ))
            .bind_all(chunk.iter().flat_map(values::<D>))
            .uncached();
            self.execute(insert).await?;
        }
        Ok(())
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {COLUMNS} FROM tickd_notifications WHERE status = ? AND next_micros <= ? \
             AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_micros, id LIMIT ?"
        ))
        .bind(Delivery::Pending.as_str())
        .bind(to_micros(now))
        .bind(to_micros(now))
        .bind(i64::from(limit));
        self.fetch_all(read)
            .await?
            .iter()
            .map(record::<D>)
            .collect()
    }

    async fn claim_notification(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claim = Statement::new(
            "UPDATE tickd_notifications SET claimed_by = ?, claimed_until = ? WHERE id = ? \
             AND status = ? AND (claimed_until IS NULL OR claimed_until < ?)",
        )
        .bind(owner)
        .bind(to_micros(until))
        .bind(id)
        .bind(Delivery::Pending.as_str())
        .bind(to_micros(now));
        Ok(self.execute(claim).await? == 1)
    }

    async fn record_attempt(
        &self,
        record: &NotificationRecord,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let update = Statement::new(
            "UPDATE tickd_notifications SET status = ?, attempts = ?, next_micros = ?, \
             last_error = ?, delivered_micros = ?, claimed_by = NULL, claimed_until = NULL \
             WHERE id = ? AND claimed_by = ?",
        )
        .bind(record.status.as_str())
        .bind(i32::try_from(record.attempts).ok())
        .bind(record.next_attempt_at.map(to_micros))
        .bind(Val::Text(record.last_error.as_deref().map(D::text)))
        .bind(record.delivered_at.map(to_micros))
        .bind(record.id.as_str())
        .bind(owner);
        Ok(self.execute(update).await? == 1)
    }

    async fn next_notification_at(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let read = Statement::new(
            "SELECT MIN(next_micros) FROM tickd_notifications WHERE status = ? AND next_micros > ?",
        )
        .bind(Delivery::Pending.as_str())
        .bind(to_micros(after));
        let micros = match self.fetch_optional(read).await? {
            Some(row) => D::int(&row, 0)?,
            None => None,
        };
        Ok(micros.and_then(from_micros))
    }

    async fn list_notifications(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let older = if before.is_some() {
            " WHERE id < ?"
        } else {
            ""
        };
        let read = Statement::built(format!(
            "SELECT {COLUMNS} FROM tickd_notifications{older} ORDER BY id DESC LIMIT ?"
        ))
        .bind_all(before)
        .bind(i64::from(limit));
        self.fetch_all(read)
            .await?
            .iter()
            .map(record::<D>)
            .collect()
    }

    async fn prune_notifications(&self, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        let delete = Statement::new(
            "DELETE FROM tickd_notifications WHERE created_micros < ? AND status <> ?",
        )
        .bind(to_micros(older_than))
        .bind(Delivery::Pending.as_str());
        self.execute(delete).await
    }
}

/// A delivery's values, in [`COLUMNS`]' order.
fn values<D: Dialect>(record: &NotificationRecord) -> [Val<'_>; WIDTH] {
    [
        Val::from(record.id.as_str()),
        Val::from(to_micros(record.created_at)),
        Val::from(record.event.as_str()),
        Val::from(D::text(&record.job_id)),
        Val::from(record.run_id.as_str()),
        Val::from(D::text(&record.webhook)),
        Val::from(D::text(&record.body)),
        Val::from(record.status.as_str()),
        Val::from(i32::try_from(record.attempts).ok()),
        Val::from(record.next_attempt_at.map(to_micros)),
        Val::Text(record.last_error.as_deref().map(D::text)),
        Val::from(record.delivered_at.map(to_micros)),
    ]
}

/// A row ([`COLUMNS`]) decoded, or a message naming the unreadable column.
fn record<D: Dialect>(row: &D::Row) -> Result<NotificationRecord, StoreError> {
    let bad =
        |what: &str| StoreError::Backend(anyhow::anyhow!("an unreadable notification: {what}"));
    let mut c = Columns::<D>::of(row);
    let text = |c: &mut Columns<'_, D>, what: &str| {
        c.text()
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad(&format!("{what} is NULL")))
    };
    let int = |c: &mut Columns<'_, D>| c.int().map_err(|e| bad(&e.to_string()));
    let id = text(&mut c, "id")?;
    let created = int(&mut c)?
        .and_then(from_micros)
        .ok_or_else(|| bad("created_micros"))?;
    let event = text(&mut c, "event")?;
    let job_id = text(&mut c, "job_id")?;
    let run_id = text(&mut c, "run_id")?;
    let webhook = text(&mut c, "webhook")?;
    let body = text(&mut c, "body")?;
    let status = Delivery::parse(&text(&mut c, "status")?).ok_or_else(|| bad("status"))?;
    let attempts = c
        .small()
        .map_err(|e| bad(&e.to_string()))?
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad("attempts"))?;
    let next_attempt_at = int(&mut c)?.and_then(from_micros);
    let last_error = c.text().map_err(|e| bad(&e.to_string()))?;
    let delivered_at = int(&mut c)?.and_then(from_micros);
    Ok(NotificationRecord {
        id,
        created_at: created,
        event,
        job_id,
        run_id,
        webhook,
        body,
        status,
        attempts,
        next_attempt_at,
        last_error,
        delivered_at,
    })
}
