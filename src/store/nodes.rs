//! Cluster membership: the daemons sharing a store, each with a heartbeat row, so a survivor
//! can tell which runs lost their daemon.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// A daemon sharing the store, as its heartbeat row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Unique per daemon process (a UUIDv7), so several daemons on one host differ.
    pub id: String,
    /// The host name, lower-case.
    pub host: String,
    /// The daemon's process id.
    pub pid: u32,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

/// The daemons that share a store.
#[async_trait]
pub trait Membership: Send + Sync {
    /// Writes this daemon's heartbeat row (insert or update).
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError>;
    /// Every daemon that has a heartbeat row, most recent heartbeat first.
    async fn get_nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Deletes a daemon's heartbeat row (clean shutdown), and rows silent since `before`.
    async fn remove_nodes(&self, id: &str, before: DateTime<Utc>) -> Result<(), StoreError>;
}
