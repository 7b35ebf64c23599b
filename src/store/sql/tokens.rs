//! [`TokenStore`] on SQL: the `tickd_tokens` table. A revoked token's row is deleted, so
//! every daemon sharing the database stops accepting it with its next read.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::dialect::{Dialect, Statement};
use super::rows::Columns;
use super::{SqlStore, is_unique_violation};
use crate::store::{StoreError, TokenRecord, TokenStore, from_micros, to_micros};

/// The columns a token is written and read as.
const TOKEN_COLUMNS: &str =
    "id, name, role, secret_hash, created_micros, expires_micros, last_used_micros";

/// A token row ([`TOKEN_COLUMNS`]) decoded, or a message naming what is unreadable.
fn token<D: Dialect>(row: &D::Row) -> Result<TokenRecord, StoreError> {
    let read = || {
        let mut c = Columns::<D>::of(row);
        let mut text = |what: &str| {
            c.text()?
                .ok_or_else(|| sqlx::Error::Decode(format!("{what} is NULL").into()))
        };
        let id = text("id")?;
        let name = text("name")?;
        let role = text("role")?;
        let secret_hash = text("secret_hash")?;
        Ok::<_, sqlx::Error>((id, name, role, secret_hash, c.int()?, c.int()?, c.int()?))
    };
    let (id, name, role, secret_hash, created, expires, last_used) =
        read().map_err(|e| StoreError::Backend(anyhow::anyhow!("unreadable token row: {e}")))?;
    let time = |micros: Option<i64>| micros.and_then(from_micros);
    Ok(TokenRecord {
        created_at: time(created).ok_or_else(|| {
            StoreError::Backend(anyhow::anyhow!("token {id}: unreadable created_micros"))
        })?,
        expires_at: time(expires),
        last_used_at: time(last_used),
        id,
        name,
        role,
        secret_hash,
    })
}

#[async_trait]
impl<D: Dialect> TokenStore for SqlStore<D> {
    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let insert = Statement::built(format!(
            "INSERT INTO tickd_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&token.id)
        .bind(D::text(&token.name))
        .bind(&token.role)
        .bind(&token.secret_hash)
        .bind(to_micros(token.created_at))
        .bind(token.expires_at.map(to_micros))
        .bind(token.last_used_at.map(to_micros));
        let mut conn = self.conn().await?;
        match D::execute(&mut *conn, insert).await {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::Conflict(token.id.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {TOKEN_COLUMNS} FROM tickd_tokens ORDER BY created_micros, id"
        ));
        self.fetch_all(read).await?.iter().map(token::<D>).collect()
    }

    async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let read = Statement::built(format!(
            "SELECT {TOKEN_COLUMNS} FROM tickd_tokens WHERE id = ?"
        ))
        .bind(id);
        self.fetch_optional(read)
            .await?
            .as_ref()
            .map(token::<D>)
            .transpose()
    }

    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let delete = Statement::new("DELETE FROM tickd_tokens WHERE id = ?").bind(id);
        Ok(self.execute(delete).await? > 0)
    }

    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let update = Statement::new("UPDATE tickd_tokens SET last_used_micros = ? WHERE id = ?")
            .bind(to_micros(at))
            .bind(id);
        self.execute(update).await?;
        Ok(())
    }
}
