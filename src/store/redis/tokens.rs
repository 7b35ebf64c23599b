//! The API tokens of a [`RedisStore`]: its [`TokenStore`].
//!
//! | key | type | holds |
//! |---|---|---|
//! | `token:<id>` | hash | `name`, `role`, `secret_hash`, `created_micros`, `expires_micros` and `last_used_micros` (absent = none) |
//! | `tokens` | sorted set | token ids, scored by creation µs |
//!
//! Creating and touching are Lua scripts, so a token is never half-written and a touch after
//! a revocation does not bring the token back.

use std::collections::HashMap;
use std::sync::LazyLock;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::RedisStore;
use crate::store::{StoreError, TokenRecord, TokenStore, from_micros, to_micros};

/// `ARGV`: prefix, id, created µs, then field/value pairs. 1 = created, 0 = the id is taken.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = ARGV[1] .. 'token:' .. ARGV[2]
if redis.call('EXISTS', key) == 1 then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', ARGV[1] .. 'tokens', ARGV[3], ARGV[2])
return 1",
    )
});

/// `ARGV`: prefix, id, last used µs. Writes only a token that exists.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = ARGV[1] .. 'token:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'last_used_micros', ARGV[3])
return 1",
    )
});

/// A token's hash decoded.
fn record(id: &str, mut hash: HashMap<String, String>) -> Result<TokenRecord, StoreError> {
    let bad = |what: &str| StoreError::Backend(anyhow!("token {id}: unreadable {what}"));
    let mut text = |field: &str| hash.remove(field).ok_or_else(|| bad(field));
    let name = text("name")?;
    let role = text("role")?;
    let secret_hash = text("secret_hash")?;
    let created = text("created_micros")?;
    let time = |field: &str, value: Option<String>| match value {
        None => Ok(None),
        Some(value) => value
            .parse::<i64>()
            .ok()
            .and_then(from_micros)
            .map(Some)
            .ok_or_else(|| bad(field)),
    };
    Ok(TokenRecord {
        id: id.to_owned(),
        name,
        role,
        secret_hash,
        created_at: time("created_micros", Some(created))?.ok_or_else(|| bad("created"))?,
        expires_at: time("expires_micros", hash.remove("expires_micros"))?,
        last_used_at: time("last_used_micros", hash.remove("last_used_micros"))?,
    })
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let created = to_micros(token.created_at).to_string();
        let mut invocation = CREATE.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(&token.id)
            .arg(&created)
            .arg("name")
            .arg(&token.name)
            .arg("role")
            .arg(&token.role)
            .arg("secret_hash")
            .arg(&token.secret_hash)
            .arg("created_micros")
            .arg(&created);
        if let Some(expires) = token.expires_at {
            invocation
                .arg("expires_micros")
                .arg(to_micros(expires).to_string());
        }
        if let Some(used) = token.last_used_at {
            invocation
                .arg("last_used_micros")
                .arg(to_micros(used).to_string());
        }
        let created: i64 = invocation.invoke_async(&mut self.con()).await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(token.id.clone()))
        }
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let ids: Vec<String> = self.con().zrange(self.key("tokens"), 0, -1).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.key(&format!("token:{id}")));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.con()).await?;
        ids.iter()
            .zip(hashes)
            // Revoked between the two reads: gone.
            .filter(|(_, hash)| !hash.is_empty())
            .map(|(id, hash)| record(id, hash))
            .collect()
    }

    async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let hash: HashMap<String, String> =
            self.con().hgetall(self.key(&format!("token:{id}"))).await?;
        if hash.is_empty() {
            return Ok(None);
        }
        record(id, hash).map(Some)
    }

    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let (deleted, _): (i64, i64) = redis::pipe()
            .atomic()
            .del(self.key(&format!("token:{id}")))
            .zrem(self.key("tokens"), id)
            .query_async(&mut self.con())
            .await?;
        Ok(deleted > 0)
    }

    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut invocation = TOUCH.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(id)
            .arg(to_micros(at).to_string());
        let _: i64 = invocation.invoke_async(&mut self.con()).await?;
        Ok(())
    }
}
