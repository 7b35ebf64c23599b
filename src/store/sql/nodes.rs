//! [`Membership`] on SQL: the `tickd_nodes` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::dialect::{Dialect, Statement, upsert_tail};
use super::{SqlStore, rows};
use crate::store::{Membership, NodeRecord, StoreError, to_micros};

#[async_trait]
impl<D: Dialect> Membership for SqlStore<D> {
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        let write = Statement::built(format!(
            "INSERT INTO tickd_nodes ({}) VALUES (?, ?, ?, ?, ?){}",
            rows::NODE_COLUMNS,
            upsert_tail::<D>("tickd_nodes", &["heartbeat_micros"], false)
        ))
        .bind(&node.id)
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(to_micros(node.started_at))
        .bind(to_micros(node.heartbeat_at));
        self.execute(write).await?;
        Ok(())
    }

    async fn get_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {} FROM tickd_nodes ORDER BY heartbeat_micros DESC, id",
            rows::NODE_COLUMNS
        ));
        Ok(self
            .fetch_all(read)
            .await?
            .iter()
            .filter_map(rows::node::<D>)
            .collect())
    }

    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        let delete = Statement::new("DELETE FROM tickd_nodes WHERE id = ? OR heartbeat_micros < ?")
            .bind(id)
            .bind(to_micros(before));
        self.execute(delete).await?;
        Ok(())
    }
}
