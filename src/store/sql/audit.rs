//! [`AuditLog`] on SQL: the `tickd_audit` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlStore;
use super::dialect::{Dialect, Statement, Val, placeholders};
use super::rows::Columns;
use crate::store::{AuditFilter, AuditLog, AuditRecord, AuditRow, StoreError, to_micros};

/// The columns a record is written and read as.
const COLUMNS: &str = "id, at_micros, actor, credential, source, method, route, target, \
    outcome, status";

/// How many columns [`COLUMNS`] names.
const WIDTH: usize = 10;

/// Records per `INSERT`: well under every database's limit of bound values.
const PER_INSERT: usize = 200;

#[async_trait]
impl<D: Dialect> AuditLog for SqlStore<D> {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        for chunk in records.chunks(PER_INSERT) {
            let row = format!("({})", placeholders(WIDTH));
            let rows = vec![row; chunk.len()].join(", ");
            let insert =
                Statement::built(format!("INSERT INTO tickd_audit ({COLUMNS}) VALUES {rows}"))
                    .bind_all(chunk.iter().flat_map(values::<D>))
                    // One text per batch size: caching up to 200 wide variants per
                    // connection cost more memory than preparing each batch does time.
                    .uncached();
            self.execute(insert).await?;
        }
        Ok(())
    }

    async fn audit(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<&str> = Vec::new();
        for (column, value) in [
            ("id < ?", filter.before),
            ("actor = ?", filter.actor),
            ("target = ?", filter.target),
        ] {
            if let Some(value) = value {
                conditions.push(column);
                values.push(value);
            }
        }
        let filter_text = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let read = Statement::built(format!(
            "SELECT {COLUMNS} FROM tickd_audit{filter_text} ORDER BY id DESC LIMIT ?"
        ))
        .bind_all(values.into_iter().map(D::text))
        .bind(i64::from(filter.limit));
        self.fetch_all(read)
            .await?
            .iter()
            .map(record::<D>)
            .collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let delete =
            Statement::new("DELETE FROM tickd_audit WHERE at_micros < ?").bind(to_micros(before));
        self.execute(delete).await
    }
}

/// A record's values, in [`COLUMNS`]' order.
fn values<D: Dialect>(record: &AuditRecord) -> [Val<'_>; WIDTH] {
    fn text<D: Dialect>(value: &Option<String>) -> Val<'_> {
        Val::Text(value.as_deref().map(D::text))
    }
    [
        Val::from(&record.id),
        Val::from(to_micros(record.at)),
        text::<D>(&record.actor),
        text::<D>(&record.credential),
        Val::from(D::text(&record.source)),
        Val::from(D::text(&record.method)),
        Val::from(D::text(&record.route)),
        text::<D>(&record.target),
        Val::from(record.outcome.as_str()),
        Val::Small(Some(i32::from(record.status))),
    ]
}

/// A row ([`COLUMNS`]) decoded, or a message naming the unreadable column.
fn record<D: Dialect>(row: &D::Row) -> Result<AuditRecord, StoreError> {
    let read = || {
        let mut c = Columns::<D>::of(row);
        let null = |what: &str| sqlx::Error::Decode(format!("{what} is NULL").into());
        Ok::<_, sqlx::Error>(AuditRow {
            id: c.text()?.ok_or_else(|| null("id"))?,
            at_micros: c.int()?.ok_or_else(|| null("at_micros"))?,
            actor: c.text()?,
            credential: c.text()?,
            source: c.text()?.ok_or_else(|| null("source"))?,
            method: c.text()?.ok_or_else(|| null("method"))?,
            route: c.text()?.ok_or_else(|| null("route"))?,
            target: c.text()?,
            outcome: c.text()?.ok_or_else(|| null("outcome"))?,
            status: i64::from(c.small()?.ok_or_else(|| null("status"))?),
        })
    };
    read()
        .map_err(|e| StoreError::Backend(anyhow::anyhow!("an unreadable audit record: {e}")))?
        .into_record()
}
