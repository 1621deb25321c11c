-- The Redis task store: every operation on one partition is one call of this
-- script (EVALSHA), which reads, then writes only what its checks allow.
-- Every key it touches is in KEYS and carries the partition's hash tag.
--
-- KEYS: 1 rec   HASH key -> definition (JSON, read by the client only)
--       2 st    HASH key -> "enabled|max_running|revision|fire_ms|backlog|
--                    running|held": the cursor, the cursor runs in progress
--                    and the run id holding the cursor ('' if none)
--       3 due   ZSET "c:<key>" (a claimable cursor, at fire_ms)
--                    "r:<run id>" (a run: due at its due time, or at its
--                    lease expiry while leased); exactly what is claimable
--       4 run   HASH run id -> cmsgpack(key, fire, from_cursor, attempt,
--                    token, expires, due, payload, fence, cancelled)
--       5 kruns HASH key -> cmsgpack({run ids of the key})
--       6 done  HASH call id -> its reply (a repeated call answers the same;
--                    an acquire's: the run ids and due times it claimed)
--       7 donez ZSET call id -> server time (ms) it was made; an acquire's:
--                    when its lease ends less DONE_KEEP_MS (forgotten then)
--       8 fence STRING the fencing counter of the partition
--       9 inst  HASH instance id -> InstanceInfo (JSON; partition 0 only)
--      10 instz ZSET instance id -> listed until (ms)
--      11 lease ZSET run id -> lease expiry (ms), for each leased run (an
--                    expired lease stays until the run is claimed again,
--                    retried or finished; "leases" skips it)
--      12...   LIST run logs of record keys (newest first), when an
--              operation needs them (ARGV says which is which)
-- ARGV: 1 operation, 2 wake-up channel, 3 sender, 4 call id ('' if the
-- operation is not repeated safely by its nature), then the operation's own.
-- Times are integer milliseconds; fire_ms -1 means "no next occurrence".
-- Replies with many values are one JSON text, numbers in strings.

local K_REC, K_ST, K_DUE, K_RUN, K_KRUNS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_DONE, K_DONEZ, K_FENCE = KEYS[6], KEYS[7], KEYS[8]
local K_INST, K_INSTZ, K_LEASE = KEYS[9], KEYS[10], KEYS[11]
local op, channel, sender, call = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local LOG_SIZE = 100
local DONE_KEEP_MS = 300000

-- A JSON array, also when empty (cjson encodes an empty table as an object).
local function json_list(out)
  if #out == 0 then
    return '[]'
  end
  return cjson.encode(out)
end

local function fmt(n)
  return string.format('%d', n)
end

local function get_st(key)
  local s = redis.call('HGET', K_ST, key)
  if not s then
    return nil
  end
  local e, m, v, f, b, r, h = string.match(s,
    '^(%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%d+)|(%d+)|(.*)$')
  return {e = tonumber(e), m = tonumber(m), v = v, f = tonumber(f), b = tonumber(b),
          r = tonumber(r), h = h}
end

local function put_st(key, st)
  local s = fmt(st.e) .. '|' .. fmt(st.m) .. '|' .. st.v .. '|' .. fmt(st.f) .. '|'
    .. fmt(st.b) .. '|' .. fmt(st.r) .. '|' .. st.h
  redis.call('HSET', K_ST, key, s)
  return s
end

local function get_run(id)
  local s = redis.call('HGET', K_RUN, id)
  if not s then
    return nil
  end
  local key, fire, fromc, attempt, token, expires, due, payload, fence, cancelled =
    cmsgpack.unpack(s)
  return {id = id, key = key, fire = fire, fromc = fromc, attempt = attempt,
          token = token, expires = expires, due = due, payload = payload,
          fence = fence, cancelled = cancelled}
end

local function put_run(r)
  redis.call('HSET', K_RUN, r.id, cmsgpack.pack(r.key, r.fire, r.fromc, r.attempt,
    r.token, r.expires, r.due, r.payload, r.fence, r.cancelled))
end

local function kruns_add(key, id)
  local s = redis.call('HGET', K_KRUNS, key)
  local t = {}
  if s then
    t = cmsgpack.unpack(s)
  end
  t[#t + 1] = id
  redis.call('HSET', K_KRUNS, key, cmsgpack.pack(t))
end

local function kruns_del(key, id)
  local s = redis.call('HGET', K_KRUNS, key)
  if not s then
    return
  end
  local kept = {}
  for _, x in ipairs(cmsgpack.unpack(s)) do
    if x ~= id then
      kept[#kept + 1] = x
    end
  end
  if #kept == 0 then
    redis.call('HDEL', K_KRUNS, key)
  else
    redis.call('HSET', K_KRUNS, key, cmsgpack.pack(kept))
  end
end

-- the cursor's entry in "due" exists exactly when the cursor is claimable
local function sync_cursor(key, st)
  local member = 'c:' .. key
  if st and st.e == 1 and st.f >= 0 and st.h == '' and st.r < st.m then
    redis.call('ZADD', K_DUE, fmt(st.f), member)
  else
    redis.call('ZREM', K_DUE, member)
  end
end

local function drop(key)
  local s = redis.call('HGET', K_KRUNS, key)
  if s then
    for _, id in ipairs(cmsgpack.unpack(s)) do
      redis.call('HDEL', K_RUN, id)
      redis.call('ZREM', K_DUE, 'r:' .. id)
      redis.call('ZREM', K_LEASE, id)
    end
    redis.call('HDEL', K_KRUNS, key)
  end
  redis.call('HDEL', K_REC, key)
  redis.call('HDEL', K_ST, key)
  redis.call('ZREM', K_DUE, 'c:' .. key)
end

-- a run id no run has: base, or base.2, base.3...
local function unique(base)
  if redis.call('HEXISTS', K_RUN, base) == 0 then
    return base
  end
  local n = 2
  while redis.call('HEXISTS', K_RUN, base .. '.' .. n) == 1 do
    n = n + 1
  end
  return base .. '.' .. n
end

local function owned(id, token)
  local run = get_run(id)
  if run and run.token == token then
    return run
  end
  return nil
end

local function head()
  local h = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
  if h[2] then
    return tonumber(h[2])
  end
  return nil
end

-- tell other instances when the earliest due time moved earlier
local function publish_if_earlier(before)
  local after = head()
  if after and (not before or after < before) then
    redis.call('PUBLISH', channel, sender)
  end
end

local function append_log(logkey, entry)
  redis.call('LPUSH', logkey, entry)
  redis.call('LTRIM', logkey, 0, LOG_SIZE - 1)
end

-- a call repeated after a lost reply answers what the first one did (an
-- acquire rebuilds its answer: see there)
local prev = false
if call ~= '' then
  prev = redis.call('HGET', K_DONE, call)
  if prev and op ~= 'acquire' then
    return prev
  end
end

-- keeps *kept* (default: *reply*) as the call's answer, for DONE_KEEP_MS
-- plus *extra_ms*; forgets the answers kept long enough
local function remember(reply, kept, extra_ms)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local old = redis.call('ZRANGEBYSCORE', K_DONEZ, '-inf', fmt(now - DONE_KEEP_MS),
    'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', K_DONE, unpack(old))
    redis.call('ZREM', K_DONEZ, unpack(old))
  end
  redis.call('HSET', K_DONE, call, kept or reply)
  redis.call('ZADD', K_DONEZ, fmt(now + (extra_ms or 0)), call)
  return reply
end

if op == 'get' then
  local key = ARGV[5]
  return {redis.call('HGET', K_REC, key) or false, redis.call('HGET', K_ST, key) or false}

elseif op == 'save' then
  -- ARGV: key, definition, enabled, max_running, revision, fire_ms, backlog
  local key = ARGV[5]
  local before = head()
  local old = get_st(key)
  local running, held = 0, ''
  if old and old.v ~= ARGV[9] then
    drop(key)  -- another definition: the old one, its runs and claims go
  elseif old then
    running, held = old.r, old.h
  end
  redis.call('HSET', K_REC, key, ARGV[6])
  local st = {e = tonumber(ARGV[7]), m = tonumber(ARGV[8]), v = ARGV[9],
              f = tonumber(ARGV[10]), b = tonumber(ARGV[11]), r = running, h = held}
  put_st(key, st)
  sync_cursor(key, st)
  publish_if_earlier(before)
  return 1

elseif op == 'delete' then
  -- ARGV: key; KEYS[12]: its run log
  local key = ARGV[5]
  if redis.call('HEXISTS', K_REC, key) == 0 then
    return 0
  end
  drop(key)
  redis.call('DEL', KEYS[12])
  return 1

elseif op == 'add_run' then
  -- ARGV: key, fire_ms, payload ('' for none, else 'j' .. JSON)
  local key, fire, payload = ARGV[5], ARGV[6], ARGV[7]
  if redis.call('HEXISTS', K_REC, key) == 0 then
    return ''
  end
  local before = head()
  local id = unique(key .. '@' .. fire)
  local f = tonumber(fire)
  put_run({id = id, key = key, fire = f, fromc = 0, attempt = 0, token = '',
           expires = 0, due = f, payload = payload, fence = 0, cancelled = 0})
  kruns_add(key, id)
  redis.call('ZADD', K_DUE, fire, 'r:' .. id)
  publish_if_earlier(before)
  return remember(id)

elseif op == 'acquire' then
  -- ARGV: now_ms, token prefix, lease_ms, limit
  -- reply: JSON [[run id, key, fire, attempt, token, from cursor, payload,
  --        definition, state, fence, cancelled, due], ...]
  local function claimed(run, state, due)
    return {run.id, run.key, fmt(run.fire), fmt(run.attempt), run.token,
            fmt(run.fromc), run.payload, redis.call('HGET', K_REC, run.key),
            state or redis.call('HGET', K_ST, run.key), fmt(run.fence),
            fmt(run.cancelled), due}
  end
  local out = {}
  if prev then
    -- repeated after a lost reply: the claims of the first call that still
    -- hold (none was committed: their tokens never reached the caller)
    for n, item in ipairs(cjson.decode(prev)) do
      local run = owned(item[1], ARGV[6] .. n)
      if run then
        out[#out + 1] = claimed(run, nil, item[2])
      end
    end
    return json_list(out)
  end
  local expires = tonumber(ARGV[5]) + tonumber(ARGV[7])
  local exp = fmt(expires)
  local items = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', ARGV[5], 'WITHSCORES',
    'LIMIT', 0, tonumber(ARGV[8]))
  local ids = {}
  for i = 1, #items, 2 do
    local n, member, due = (i + 1) / 2, items[i], items[i + 1]
    local kind, ident = string.sub(member, 1, 1), string.sub(member, 3)
    local run
    local state
    if kind == 'c' then
      local st = get_st(ident)
      local id = unique(ident .. '@' .. fmt(st.f))
      run = {id = id, key = ident, fire = st.f, fromc = 1, attempt = 0, due = st.f,
             payload = '', cancelled = 0}
      st.h = id
      st.r = st.r + 1
      state = put_st(ident, st)
      redis.call('ZREM', K_DUE, member)
      kruns_add(ident, id)
    else
      run = get_run(ident)
      if run.token ~= '' then
        run.attempt = run.attempt + 1  -- the previous holder lost its lease
      end
    end
    run.token = ARGV[6] .. n
    run.expires = expires
    run.fence = redis.call('INCR', K_FENCE)
    put_run(run)
    redis.call('ZADD', K_DUE, exp, 'r:' .. run.id)
    redis.call('ZADD', K_LEASE, exp, run.id)
    out[n] = claimed(run, state, due)
    ids[n] = {run.id, due}
  end
  if call == '' or #out == 0 then
    return json_list(out)
  end
  -- kept while the claims' lease lasts: a repeat after that finds none held
  return remember(cjson.encode(out), cjson.encode(ids),
    tonumber(ARGV[7]) - DONE_KEEP_MS)

elseif op == 'extend' then
  -- ARGV: JSON [[run id, token, until_ms], ...]
  -- reply: JSON list of 0 lost, 1 held, 2 cancelled
  local out = {}
  for n, item in ipairs(cjson.decode(ARGV[5])) do
    local run = owned(item[1], item[2])
    if run then
      run.expires = tonumber(item[3])
      put_run(run)
      redis.call('ZADD', K_DUE, item[3], 'r:' .. run.id)
      redis.call('ZADD', K_LEASE, item[3], run.id)
      out[n] = 1 + run.cancelled
    else
      out[n] = 0
    end
  end
  return cjson.encode(out)

elseif op == 'commit' then
  -- ARGV: JSON [[run id, token, cursor fire_ms ('' keeps the cursor),
  --        backlog, retry_ms ('' for none), keep_lease '1'/'0', index of the
  --        key's run log in KEYS ('0': none), log entry], ...]
  -- reply: JSON list of 0 lost, 1 held, 2 cancelled
  local before = head()
  local out = {}
  for n, item in ipairs(cjson.decode(ARGV[5])) do
    local run = owned(item[1], item[2])
    if not run then
      out[n] = 0
    else
      local key, id = run.key, run.id
      local st = get_st(key)
      local retry, keep = item[5], item[6]
      if run.cancelled == 1 then  -- a cancelled run finishes
        retry, keep = '', '0'
      end
      if item[3] ~= '' then
        if st.h == id then
          st.h = ''
        end
        st.f = tonumber(item[3])
        st.b = tonumber(item[4])
      end
      if retry ~= '' then
        run.token = ''
        run.attempt = run.attempt + 1
        run.due = tonumber(retry)
        put_run(run)
        redis.call('ZADD', K_DUE, retry, 'r:' .. id)
        redis.call('ZREM', K_LEASE, id)
      elseif keep ~= '1' then
        redis.call('HDEL', K_RUN, id)
        redis.call('ZREM', K_DUE, 'r:' .. id)
        redis.call('ZREM', K_LEASE, id)
        kruns_del(key, id)
        if run.fromc == 1 then
          st.r = math.max(st.r - 1, 0)
          if st.h == id then
            st.h = ''
          end
        end
      end
      put_st(key, st)
      sync_cursor(key, st)
      local logkey = tonumber(item[7])
      if logkey > 0 then
        append_log(KEYS[logkey], item[8])
      end
      out[n] = 1 + run.cancelled
    end
  end
  publish_if_earlier(before)
  return remember(cjson.encode(out))

elseif op == 'cdelete' then
  -- a once-off run finishing: delete its record if the claim still holds.
  -- ARGV: JSON [[key, run id, token, index of the key's run log in KEYS], ...]
  local out = {}
  for n, item in ipairs(cjson.decode(ARGV[5])) do
    local key = item[1]
    local run = owned(item[2], item[3])  -- a run exists only with its record
    if not run or run.key ~= key then
      out[n] = 0
    else
      drop(key)
      local logkey = tonumber(item[4])
      if logkey > 0 then
        redis.call('DEL', KEYS[logkey])
      end
      out[n] = 1
    end
  end
  return remember(cjson.encode(out))

elseif op == 'cancel' then
  -- ARGV: run id, now_ms
  local run = get_run(ARGV[5])
  if not run then
    return 0
  end
  local before = head()
  if run.cancelled ~= 1 then
    run.cancelled = 1
    local now = tonumber(ARGV[6])
    if run.token == '' and now < run.due then
      run.due = now
      redis.call('ZADD', K_DUE, ARGV[6], 'r:' .. run.id)
    end
    put_run(run)
  end
  publish_if_earlier(before)
  return 1

elseif op == 'log' then
  -- ARGV: key, entry; KEYS[12]: its run log
  if redis.call('HEXISTS', K_REC, ARGV[5]) == 1 then
    append_log(KEYS[12], ARGV[6])
  end
  return 1

elseif op == 'leases' then
  -- ARGV: now_ms. Reads only.
  -- reply: JSON [[run id, key, task, token, attempt, fire, expires,
  --        cancelled], ...]
  local out = {}
  local tasks = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_LEASE, '(' .. ARGV[5], '+inf')) do
    local run = get_run(id)
    if run and run.token ~= '' then
      local task = tasks[run.key]
      if not task then
        local definition = redis.call('HGET', K_REC, run.key)
        task = definition and cjson.decode(definition).t or ''
        tasks[run.key] = task
      end
      out[#out + 1] = {run.id, run.key, task, run.token, fmt(run.attempt),
                       fmt(run.fire), fmt(run.expires), fmt(run.cancelled)}
    end
  end
  return json_list(out)

elseif op == 'register' then
  -- ARGV: instance id, info, listed until (ms)
  redis.call('HSET', K_INST, ARGV[5], ARGV[6])
  redis.call('ZADD', K_INSTZ, ARGV[7], ARGV[5])
  return 1

elseif op == 'deregister' then
  redis.call('HDEL', K_INST, ARGV[5])
  redis.call('ZREM', K_INSTZ, ARGV[5])
  return 1

elseif op == 'instances' then
  -- ARGV: now_ms. Forgets the instances not seen in time; lists the others.
  local gone = redis.call('ZRANGEBYSCORE', K_INSTZ, '-inf', ARGV[5])
  for _, ident in ipairs(gone) do
    redis.call('HDEL', K_INST, ident)
    redis.call('ZREM', K_INSTZ, ident)
  end
  return redis.call('HVALS', K_INST)
end

return redis.error_reply('unknown store operation ' .. tostring(op))
