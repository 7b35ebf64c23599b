//! The notification outbox of a [`RedisStore`]: a hash per delivery (`notif:<id>`, fields as
//! the SQL columns), `notif_due` (pending deliveries by their next attempt, µs) and
//! `notif_ids` (every id, for the listing in id order). Claims and outcomes are Lua scripts,
//! so that each is one atomic check-and-write, as the SQL stores' conditional updates are.

use std::collections::HashMap;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::RedisStore;
use crate::store::{Delivery, NotificationRecord, Outbox, StoreError, from_micros, to_micros};

/// ARGV: prefix, id, owner, until µs, now µs. 1 = claimed.
pub(super) const CLAIM: &str = r#"
local P = ARGV[1]
local key = P .. 'notif:' .. ARGV[2]
local f = redis.call('HMGET', key, 'status', 'claimed_until')
if f[1] ~= 'pending' then return 0 end
if f[2] and tonumber(f[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('HSET', key, 'claimed_by', ARGV[3], 'claimed_until', ARGV[4])
return 1
"#;

/// ARGV: prefix, id, owner, status, attempts, next µs (''), last error (''), delivered µs
/// (''). 1 = recorded (the owner held the claim).
pub(super) const RECORD: &str = r#"
local P = ARGV[1]
local id = ARGV[2]
local key = P .. 'notif:' .. id
if redis.call('HGET', key, 'claimed_by') ~= ARGV[3] then return 0 end
redis.call('HSET', key, 'status', ARGV[4], 'attempts', ARGV[5])
redis.call('HDEL', key, 'claimed_by', 'claimed_until')
local optional = { next_micros = ARGV[6], last_error = ARGV[7], delivered_micros = ARGV[8] }
for name, value in pairs(optional) do
  if value == '' then redis.call('HDEL', key, name) else redis.call('HSET', key, name, value) end
end
if ARGV[4] == 'pending' and ARGV[6] ~= '' then
  redis.call('ZADD', P .. 'notif_due', ARGV[6], id)
else
  redis.call('ZREM', P .. 'notif_due', id)
end
return 1
"#;

/// The scripts, loaded once per store.
#[derive(Debug, Clone)]
pub(super) struct OutboxScripts {
    claim: Script,
    record: Script,
}

impl OutboxScripts {
    pub fn new() -> OutboxScripts {
        OutboxScripts {
            claim: Script::new(CLAIM),
            record: Script::new(RECORD),
        }
    }
}

/// A delivery's hash fields (absent ones left out).
fn fields(record: &NotificationRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", record.id.clone()),
        ("created_micros", to_micros(record.created_at).to_string()),
        ("event", record.event.clone()),
        ("job_id", record.job_id.clone()),
        ("run_id", record.run_id.clone()),
        ("webhook", record.webhook.clone()),
        ("body", record.body.clone()),
        ("status", record.status.as_str().to_owned()),
        ("attempts", record.attempts.to_string()),
    ];
    if let Some(next) = record.next_attempt_at {
        fields.push(("next_micros", to_micros(next).to_string()));
    }
    if let Some(error) = &record.last_error {
        fields.push(("last_error", error.clone()));
    }
    if let Some(delivered) = record.delivered_at {
        fields.push(("delivered_micros", to_micros(delivered).to_string()));
    }
    fields
}

/// A delivery read back from its hash (`None`: gone); also its claim's end (µs).
fn from_hash(
    mut hash: HashMap<String, String>,
) -> Result<Option<(NotificationRecord, Option<i64>)>, StoreError> {
    if hash.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| StoreError::Backend(anyhow!("an unreadable notification: {what}"));
    let mut take = |name: &str| hash.remove(name);
    let micros = |value: Option<String>| value.and_then(|v| v.parse::<i64>().ok());
    let record = NotificationRecord {
        id: take("id").ok_or_else(|| bad("id"))?,
        created_at: micros(take("created_micros"))
            .and_then(from_micros)
            .ok_or_else(|| bad("created_micros"))?,
        event: take("event").ok_or_else(|| bad("event"))?,
        job_id: take("job_id").ok_or_else(|| bad("job_id"))?,
        run_id: take("run_id").ok_or_else(|| bad("run_id"))?,
        webhook: take("webhook").ok_or_else(|| bad("webhook"))?,
        body: take("body").unwrap_or_default(),
        status: take("status")
            .as_deref()
            .and_then(Delivery::parse)
            .ok_or_else(|| bad("status"))?,
        attempts: take("attempts")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("attempts"))?,
        next_attempt_at: micros(take("next_micros")).and_then(from_micros),
        last_error: take("last_error"),
        delivered_at: micros(take("delivered_micros")).and_then(from_micros),
    };
    Ok(Some((record, micros(take("claimed_until")))))
}

impl RedisStore {
    /// The deliveries of `ids`, in their order, with their claims' ends (those gone left out).
    async fn read_notifications(
        &self,
        ids: &[String],
    ) -> Result<Vec<(NotificationRecord, Option<i64>)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.key(&format!("notif:{id}")));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut self.con()).await?;
        let mut records = Vec::with_capacity(ids.len());
        for hash in hashes {
            if let Some(record) = from_hash(hash)? {
                records.push(record);
            }
        }
        Ok(records)
    }
}

#[async_trait]
impl Outbox for RedisStore {
    async fn enqueue_notifications(&self, batch: &[NotificationRecord]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for record in batch {
            pipe.hset_multiple(self.key(&format!("notif:{}", record.id)), &fields(record))
                .ignore()
                .zadd(self.key("notif_ids"), &record.id, 0)
                .ignore();
            if let Some(next) = record
                .next_attempt_at
                .filter(|_| record.status == Delivery::Pending)
            {
                pipe.zadd(self.key("notif_due"), &record.id, to_micros(next))
                    .ignore();
            }
        }
        let () = pipe.query_async(&mut self.con()).await?;
        Ok(())
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let ids = self.ids_due("notif_due", now, limit).await?;
        let now = to_micros(now);
        Ok(self
            .read_notifications(&ids)
            .await?
            .into_iter()
            .filter(|(record, until)| {
                record.status == Delivery::Pending && until.is_none_or(|until| until < now)
            })
            .map(|(record, _)| record)
            .collect())
    }

    async fn claim_notification(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let args = [
            id.to_owned(),
            owner.to_owned(),
            to_micros(until).to_string(),
            to_micros(now).to_string(),
        ];
        Ok(self.run_script(&self.outbox.claim, args).await? == 1)
    }

    async fn record_attempt(
        &self,
        record: &NotificationRecord,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let optional = |micros: Option<DateTime<Utc>>| {
            micros.map_or_else(String::new, |t| to_micros(t).to_string())
        };
        let args = [
            record.id.clone(),
            owner.to_owned(),
            record.status.as_str().to_owned(),
            record.attempts.to_string(),
            optional(record.next_attempt_at),
            record.last_error.clone().unwrap_or_default(),
            optional(record.delivered_at),
        ];
        Ok(self.run_script(&self.outbox.record, args).await? == 1)
    }

    async fn next_notification_at(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time_after("notif_due", after).await
    }

    async fn list_notifications(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let ids = self.ids_before("notif_ids", limit, before).await?;
        Ok(self
            .read_notifications(&ids)
            .await?
            .into_iter()
            .map(|(record, _)| record)
            .collect())
    }

    async fn prune_notifications(&self, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        let ids: Vec<String> = self.con().zrange(self.key("notif_ids"), 0, -1).await?;
        let mut count = 0;
        for chunk in ids.chunks(super::PRUNE_CHUNK) {
            let old: Vec<String> = self
                .read_notifications(chunk)
                .await?
                .into_iter()
                .filter(|(record, _)| {
                    record.status != Delivery::Pending && record.created_at < older_than
                })
                .map(|(record, _)| record.id)
                .collect();
            if old.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            pipe.atomic();
            for id in &old {
                pipe.del(self.key(&format!("notif:{id}")))
                    .ignore()
                    .zrem(self.key("notif_ids"), id)
                    .ignore()
                    .zrem(self.key("notif_due"), id)
                    .ignore();
            }
            let () = pipe.query_async(&mut self.con()).await?;
            count += old.len() as u64;
        }
        Ok(count)
    }
}
