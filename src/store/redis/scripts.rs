//! The Lua scripts that make every multi-key change atomic. Each script gets the key prefix as
//! `ARGV[1]` and builds its key names from it (a standalone Redis or a Sentinel-managed
//! primary; Redis Cluster is not supported, since keys are not declared up front).

use redis::Script;

/// Helpers every script may use.
const LIB: &str = r#"
local P = ARGV[1]

-- A job's version as stored text, '0' for a job written without one, false when it is gone.
local function version_of(id)
  local v = redis.call('HGET', P .. 'versions', id)
  if v then return v end
  if redis.call('HEXISTS', P .. 'jobs', id) == 1 then return '0' end
  return false
end

-- Overwrites a job's state, bumps its version and files it under its next fire time ('' =
-- paused: out of the sorted set).
local function write_job(id, state, micros)
  redis.call('HSET', P .. 'jobs', id, state)
  redis.call('HINCRBY', P .. 'versions', id, 1)
  if micros == '' then
    redis.call('ZREM', P .. 'run_times', id)
  else
    redis.call('ZADD', P .. 'run_times', micros, id)
  end
end

local function delete_job(id)
  redis.call('HDEL', P .. 'jobs', id)
  redis.call('HDEL', P .. 'versions', id)
  redis.call('ZREM', P .. 'run_times', id)
end

-- Files a queued run under its due time in `queued` (read from its hash: 0 when it has none).
local function file_queued(id)
  local due = redis.call('HGET', P .. 'runs:' .. id, 'due_micros') or '0'
  redis.call('ZADD', P .. 'queued', due, id)
end

-- Reads `count` run records from ARGV starting at `at`; each is: id, job id, slot ('' =
-- none), created µs, status, the number of hash fields, then the field/value pairs.
local function read_runs(at, count)
  local runs = {}
  local i = at
  for _ = 1, count do
    local run = { id = ARGV[i], job = ARGV[i + 1], slot = ARGV[i + 2],
                  created = ARGV[i + 3], status = ARGV[i + 4], fields = {} }
    local n = tonumber(ARGV[i + 5])
    i = i + 6
    for f = 0, 2 * n - 1 do run.fields[f + 1] = ARGV[i + f] end
    i = i + 2 * n
    runs[#runs + 1] = run
  end
  return runs
end

-- Whether any of the runs' ids or (job, fire time) slots is taken (the SQL stores' primary
-- key and UNIQUE(job_id, scheduled_micros)), counting the batch itself.
local function any_taken(runs)
  local ids, slots = {}, {}
  for _, run in ipairs(runs) do
    if ids[run.id] or redis.call('EXISTS', P .. 'runs:' .. run.id) == 1 then return true end
    ids[run.id] = true
    if run.slot ~= '' then
      if slots[run.slot] or redis.call('HEXISTS', P .. 'run_slots', run.slot) == 1 then
        return true
      end
      slots[run.slot] = true
    end
  end
  return false
end

local function put_run(run)
  redis.call('HSET', P .. 'runs:' .. run.id, unpack(run.fields))
  redis.call('ZADD', P .. 'job_runs:' .. run.job, 0, run.id)
  redis.call('ZADD', P .. 'runs_created', run.created, run.id)
  redis.call('ZADD', P .. 'run_ids', 0, run.id)
  redis.call('SADD', P .. 'run_jobs', run.job)
  if run.status == 'running' then redis.call('SADD', P .. 'running', run.id) end
  if run.status == 'queued' then file_queued(run.id) end
  if run.slot ~= '' then redis.call('HSET', P .. 'run_slots', run.slot, run.id) end
end
"#;

/// ARGV: prefix, id, state, next µs (''). 1 = added, 0 = the id is taken.
const ADD_JOB: &str = r#"
local id, state, micros = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HSETNX', P .. 'jobs', id, state) == 0 then return 0 end
redis.call('HSET', P .. 'versions', id, 0)
if micros ~= '' then redis.call('ZADD', P .. 'run_times', micros, id) end
return 1
"#;

/// ARGV: prefix, id, expected version, state, next µs (''). 1 = written, 0 = stale,
/// -1 = gone.
const UPDATE_JOB: &str = r#"
local id = ARGV[2]
local v = version_of(id)
if not v then return -1 end
if v ~= ARGV[3] then return 0 end
write_job(id, ARGV[4], ARGV[5])
return 1
"#;

/// ARGV: prefix, id, state, next µs (''). Inserts at version 0 or overwrites (+1).
const REPLACE_JOB: &str = r#"
local id, state, micros = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', P .. 'jobs', id) == 1 then
  write_job(id, state, micros)
else
  redis.call('HSET', P .. 'jobs', id, state)
  redis.call('HSET', P .. 'versions', id, 0)
  if micros ~= '' then redis.call('ZADD', P .. 'run_times', micros, id) end
end
return 1
"#;

/// ARGV: prefix, id. 1 = deleted, 0 = not there.
const REMOVE_JOB: &str = r#"
local id = ARGV[2]
redis.call('ZREM', P .. 'run_times', id)
if redis.call('HDEL', P .. 'jobs', id) == 0 then return 0 end
redis.call('HDEL', P .. 'versions', id)
return 1
"#;

/// ARGV: prefix, now µs, limit. The due jobs, earliest first (ties by id), as a flat list of
/// id, state (nil when the hash has none), version.
const DUE_JOBS: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', P .. 'run_times', '-inf', ARGV[2],
                       'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', P .. 'jobs', id)
  out[#out + 1] = version_of(id)
end
return out
"#;

/// ARGV: prefix, id, the state read ('' = none). Takes the job out of the sorted set (its
/// state stays) if its state is still the one read. 1 = parked.
const PARK_JOB: &str = r#"
local id = ARGV[2]
local state = redis.call('HGET', P .. 'jobs', id) or ''
if state ~= ARGV[3] then return 0 end
redis.call('ZREM', P .. 'run_times', id)
return 1
"#;

/// ARGV: prefix, job id, version read, keep ('1') or remove ('0'), next state, next µs (''),
/// the number of runs, the runs (see `read_runs`). 1 = claimed, 0 = a run id or slot is
/// taken (no run is recorded, but the job still advances: it must not stay due), -1 = the
/// job is gone, -2 = the job changed since it was read.
const CLAIM: &str = r#"
local id = ARGV[2]
local v = version_of(id)
if not v then return -1 end
if v ~= ARGV[3] then return -2 end
local runs = read_runs(8, tonumber(ARGV[7]))
local fresh = not any_taken(runs)
if fresh then
  for _, run in ipairs(runs) do put_run(run) end
end
if ARGV[4] == '1' then write_job(id, ARGV[5], ARGV[6]) else delete_job(id) end
if fresh then return 1 end
return 0
"#;

/// ARGV: prefix, one run (see `read_runs`). 1 = inserted, 0 = its id or slot is taken.
const INSERT_RUN: &str = r#"
local runs = read_runs(2, 1)
if any_taken(runs) then return 0 end
put_run(runs[1])
return 1
"#;

/// ARGV: prefix, run id, status, the status it must have now ('' = any), the number of
/// fields to set, their pairs, then the names of the fields to delete. 1 = updated, 0 = no
/// such run, or not in the status expected.
const UPDATE_RUN: &str = r#"
local id, status, expected = ARGV[2], ARGV[3], ARGV[4]
local key = P .. 'runs:' .. id
if redis.call('EXISTS', key) == 0 then return 0 end
if expected ~= '' and redis.call('HGET', key, 'status') ~= expected then return 0 end
local n = tonumber(ARGV[5])
local set = {}
for i = 1, 2 * n do set[i] = ARGV[5 + i] end
if n > 0 then redis.call('HSET', key, unpack(set)) end
for i = 6 + 2 * n, #ARGV do redis.call('HDEL', key, ARGV[i]) end
if status == 'running' then
  redis.call('SADD', P .. 'running', id)
else
  redis.call('SREM', P .. 'running', id)
end
if status == 'queued' then
  file_queued(id)
else
  redis.call('ZREM', P .. 'queued', id)
end
return 1
"#;

/// ARGV: prefix, me, alive since µs, reason, at µs. Marks `interrupted` every running run
/// owned by another daemon without a heartbeat since then; answers how many.
const INTERRUPT_ORPHANS: &str = r#"
local me, since, reason, at = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', P .. 'running')) do
  local key = P .. 'runs:' .. id
  local f = redis.call('HMGET', key, 'status', 'owner')
  if f[1] ~= 'running' then
    redis.call('SREM', P .. 'running', id)
  elseif f[2] ~= me then
    local beat = redis.call('ZSCORE', P .. 'node_beats', f[2])
    if (not beat) or tonumber(beat) < since then
      redis.call('HSET', key, 'status', 'interrupted', 'reason', reason, 'finished_micros', at)
      redis.call('SREM', P .. 'running', id)
      count = count + 1
    end
  end
end
return count
"#;

/// ARGV: prefix, then pairs of run id and its job id ('' = unknown). Deletes each run that is
/// not running, with its index entries (and drops index entries of runs already gone);
/// answers how many runs went.
const DELETE_FINISHED_RUNS: &str = r#"
local count = 0
for i = 2, #ARGV, 2 do
  local id, hint = ARGV[i], ARGV[i + 1]
  local key = P .. 'runs:' .. id
  local f = redis.call('HMGET', key, 'status', 'job_id', 'scheduled_micros')
  if not f[1] then
    redis.call('ZREM', P .. 'runs_created', id)
    redis.call('ZREM', P .. 'run_ids', id)
    if hint ~= '' then redis.call('ZREM', P .. 'job_runs:' .. hint, id) end
  elseif f[1] ~= 'running' and f[1] ~= 'queued' then
    local job = f[2] or hint
    redis.call('DEL', key)
    redis.call('ZREM', P .. 'runs_created', id)
    redis.call('ZREM', P .. 'run_ids', id)
    redis.call('SREM', P .. 'running', id)
    redis.call('ZREM', P .. 'job_runs:' .. job, id)
    if redis.call('EXISTS', P .. 'job_runs:' .. job) == 0 then
      redis.call('SREM', P .. 'run_jobs', job)
    end
    if f[3] then
      local slot = f[3] .. ':' .. job
      if redis.call('HGET', P .. 'run_slots', slot) == id then
        redis.call('HDEL', P .. 'run_slots', slot)
      end
    end
    count = count + 1
  end
end
return count
"#;

/// ARGV: prefix, node id, heartbeat-before µs. Deletes the node and every node silent since.
const REMOVE_NODES: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', P .. 'node_beats', '-inf', '(' .. ARGV[3])
ids[#ids + 1] = ARGV[2]
for _, id in ipairs(ids) do
  redis.call('HDEL', P .. 'nodes', id)
  redis.call('ZREM', P .. 'node_beats', id)
end
return #ids
"#;

/// KEYS: the lock. ARGV: token, ttl ms. 1 = refreshed, 2 = it had expired and is taken
/// again, 0 = another daemon holds it.
const REFRESH_LOCK: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"#;

/// KEYS: the lock. ARGV: token. Deletes the lock if this daemon holds it.
const RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Every script, loaded once per store (`EVALSHA`, falling back to `SCRIPT LOAD`).
#[derive(Debug, Clone)]
pub(super) struct Scripts {
    pub add_job: Script,
    pub update_job: Script,
    pub replace_job: Script,
    pub remove_job: Script,
    pub due_jobs: Script,
    pub park_job: Script,
    pub claim: Script,
    pub insert_run: Script,
    pub update_run: Script,
    pub interrupt_orphans: Script,
    pub delete_finished_runs: Script,
    pub remove_nodes: Script,
    pub refresh_lock: Script,
    pub release_lock: Script,
    pub audit_append: Script,
    pub audit_prune: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let with_lib = |body: &str| Script::new(&format!("{LIB}\n{body}"));
        Scripts {
            add_job: with_lib(ADD_JOB),
            update_job: with_lib(UPDATE_JOB),
            replace_job: with_lib(REPLACE_JOB),
            remove_job: with_lib(REMOVE_JOB),
            due_jobs: with_lib(DUE_JOBS),
            park_job: with_lib(PARK_JOB),
            claim: with_lib(CLAIM),
            insert_run: with_lib(INSERT_RUN),
            update_run: with_lib(UPDATE_RUN),
            interrupt_orphans: with_lib(INTERRUPT_ORPHANS),
            delete_finished_runs: with_lib(DELETE_FINISHED_RUNS),
            remove_nodes: with_lib(REMOVE_NODES),
            refresh_lock: Script::new(REFRESH_LOCK),
            release_lock: Script::new(RELEASE_LOCK),
            audit_append: Script::new(super::audit::APPEND),
            audit_prune: Script::new(super::audit::PRUNE),
        }
    }
}
