//! API tokens: what the store keeps of each (its public id, name, role, times and the SHA-256
//! of its secret, never the secret), so that every daemon sharing the store checks a token
//! against the same record and a revocation (the record deleted) holds everywhere at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// One API token as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The public id: the visible part of the token text, unique.
    pub id: String,
    /// Who the token is for; the actor's name in requests made with it.
    pub name: String,
    /// The role's name (`viewer`, `operator`, `admin`): the API reads it.
    pub role: String,
    /// SHA-256 of the secret, lower-case hex.
    pub secret_hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last used (written at most about once a minute); `None`: never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Where API tokens are kept.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Inserts a token; `Conflict` when its id is taken.
    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// Every token, oldest first (ties by id).
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// One token by its id, or `None`.
    async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Deletes a token; answers whether there was one.
    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;
    /// Sets a token's `last_used_at` (a revoked token stays revoked: nothing is created).
    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}
