//! The audit log of a [`RedisStore`]: its [`AuditLog`].
//!
//! | key | type | holds |
//! |---|---|---|
//! | `audit` | sorted set | record ids, all scored 0 so they sort by id (UUIDv7: by time) |
//! | `audit_records` | hash | record id → the record as JSON |
//! | `audit_actor:<actor>` | sorted set | the actor's record ids, as `audit` |
//! | `audit_target:<target>` | sorted set | the target's record ids, as `audit` |
//!
//! Appending and pruning are Lua scripts, so the index sets never disagree with the records;
//! an index set goes with its last record, so the keys are bounded by the records kept.

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::RedisStore;
use crate::store::{
    AuditFilter, AuditLog, AuditRecord, AuditRow, StoreError, audit_id_floor, to_micros,
};

/// ARGV: prefix, then per record: id, JSON, actor (`+name`, or `-` for none), target (the
/// same). Files each record and its index entries.
pub(super) const APPEND: &str = r#"
local P = ARGV[1]
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  redis.call('HSET', P .. 'audit_records', id, ARGV[i + 1])
  redis.call('ZADD', P .. 'audit', 0, id)
  if string.sub(ARGV[i + 2], 1, 1) == '+' then
    redis.call('ZADD', P .. 'audit_actor:' .. string.sub(ARGV[i + 2], 2), 0, id)
  end
  if string.sub(ARGV[i + 3], 1, 1) == '+' then
    redis.call('ZADD', P .. 'audit_target:' .. string.sub(ARGV[i + 3], 2), 0, id)
  end
end
return 1
"#;

/// ARGV: prefix, the first id kept, how many to delete at most. Deletes the oldest records
/// below that id and their index entries; answers how many went.
pub(super) const PRUNE: &str = r#"
local P = ARGV[1]
local ids = redis.call('ZRANGEBYLEX', P .. 'audit', '-', '(' .. ARGV[2], 'LIMIT', 0,
                       tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local text = redis.call('HGET', P .. 'audit_records', id)
  if text then
    local ok, record = pcall(cjson.decode, text)
    if ok and type(record) == 'table' then
      if type(record.actor) == 'string' then
        redis.call('ZREM', P .. 'audit_actor:' .. record.actor, id)
      end
      if type(record.target) == 'string' then
        redis.call('ZREM', P .. 'audit_target:' .. record.target, id)
      end
    end
  end
  redis.call('HDEL', P .. 'audit_records', id)
  redis.call('ZREM', P .. 'audit', id)
end
return #ids
"#;

/// Records deleted per pruning script call (each call holds Redis for its work only).
const PRUNE_CHUNK: usize = 500;

/// Ids read per step when a read filters by both actor and target.
const SCAN_PAGE: isize = 500;

/// A record's JSON in the `audit_records` hash.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    at_micros: i64,
    actor: Option<String>,
    credential: Option<String>,
    source: String,
    method: String,
    route: String,
    target: Option<String>,
    outcome: String,
    status: u16,
}

impl Entry {
    fn of(record: &AuditRecord) -> Entry {
        Entry {
            at_micros: to_micros(record.at),
            actor: record.actor.clone(),
            credential: record.credential.clone(),
            source: record.source.clone(),
            method: record.method.clone(),
            route: record.route.clone(),
            target: record.target.clone(),
            outcome: record.outcome.as_str().to_owned(),
            status: record.status,
        }
    }

    fn into_record(self, id: String) -> Result<AuditRecord, StoreError> {
        AuditRow {
            id,
            at_micros: self.at_micros,
            actor: self.actor,
            credential: self.credential,
            source: self.source,
            method: self.method,
            route: self.route,
            target: self.target,
            outcome: self.outcome,
            status: i64::from(self.status),
        }
        .into_record()
    }
}

/// `+text`, or `-` for none: how [`APPEND`] is told an optional value.
fn optional(value: Option<&String>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("+{value}"))
}

#[async_trait]
impl AuditLog for RedisStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        for chunk in records.chunks(PRUNE_CHUNK) {
            let mut args = Vec::with_capacity(chunk.len() * 4);
            for record in chunk {
                let json = serde_json::to_string(&Entry::of(record))
                    .map_err(|e| StoreError::Backend(anyhow!("encoding an audit record: {e}")))?;
                args.extend([
                    record.id.clone(),
                    json,
                    optional(record.actor.as_ref()),
                    optional(record.target.as_ref()),
                ]);
            }
            self.run_script(&self.scripts.audit_append, args).await?;
        }
        Ok(())
    }

    async fn audit(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRecord>, StoreError> {
        let want = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        if want == 0 {
            return Ok(Vec::new());
        }
        // The narrowest index the filter names; the other filter is checked on each record.
        let (index, other) = match (filter.target, filter.actor) {
            (Some(target), actor) => (self.key(&format!("audit_target:{target}")), actor),
            (None, Some(actor)) => (self.key(&format!("audit_actor:{actor}")), None),
            (None, None) => (self.key("audit"), None),
        };
        let page = if other.is_some() {
            SCAN_PAGE
        } else {
            isize::try_from(filter.limit).unwrap_or(isize::MAX)
        };
        let mut max = filter
            .before
            .map_or_else(|| "+".to_owned(), |before| format!("({before}"));
        let mut records = Vec::new();
        loop {
            let ids: Vec<String> = self
                .con()
                .zrevrangebylex_limit(&index, &max, "-", 0, page)
                .await?;
            let Some(last) = ids.last() else { break };
            max = format!("({last}");
            let texts: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.key("audit_records"))
                .arg(&ids)
                .query_async(&mut self.con())
                .await?;
            for (id, text) in ids.iter().zip(texts) {
                // A record pruned between the two reads is simply not listed.
                let Some(text) = text else { continue };
                let entry: Entry = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Backend(anyhow!("audit record {id}: unreadable: {e}"))
                })?;
                let record = entry.into_record(id.clone())?;
                if other.is_none_or(|actor| record.actor.as_deref() == Some(actor)) {
                    records.push(record);
                    if records.len() == want {
                        return Ok(records);
                    }
                }
            }
            if isize::try_from(ids.len()).unwrap_or(isize::MAX) < page {
                break;
            }
        }
        Ok(records)
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let floor = audit_id_floor(before);
        let mut count = 0;
        loop {
            let args = [floor.clone(), PRUNE_CHUNK.to_string()];
            let done = self.run_script(&self.scripts.audit_prune, args).await?;
            let done = u64::try_from(done).unwrap_or(0);
            count += done;
            if done < PRUNE_CHUNK as u64 {
                return Ok(count);
            }
        }
    }
}
