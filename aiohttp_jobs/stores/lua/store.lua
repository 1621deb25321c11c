-- The Redis task store: every operation on one partition is one call of this
-- script (EVALSHA), which reads, then writes only what its checks allow.
-- Every key it touches is in KEYS and carries the partition's hash tag.
--
-- KEYS: 1 rec   HASH key -> definition (JSON, read by the client only)
--       2 st    HASH key -> "enabled|max_running|revision|fire_ms|backlog"
--       3 due   ZSET "c:<key>" (a claimable cursor, at fire_ms)
--                    "r:<run id>" (a run: due at its due time, or at its
--                    lease expiry while leased); exactly what is claimable
--       4 run   HASH run id -> cmsgpack(key, fire, from_cursor, attempt,
--                    token, expires, due, payload)
--       5 held  HASH key -> run id holding its cursor
--       6 running HASH key -> cursor runs in progress (> 0)
--       7 kruns HASH key -> cmsgpack({run ids})
--       8 done  HASH commit id -> result (idempotent retries)
--       9 donez ZSET commit id -> server time (ms) it was applied
--      10 fence STRING the fencing counter of the partition
--      11 inst  HASH instance id -> InstanceInfo (JSON; partition 0 only)
--      12 instz ZSET instance id -> listed until (ms)
--      13...   LIST run log of one record key (newest first), when an
--              operation needs them
-- ARGV: 1 operation, 2 wake-up channel, 3 sender, then the operation's own.
-- Times are integer milliseconds; fire_ms -1 means "no next occurrence".

local K_REC, K_ST, K_DUE, K_RUN = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_HELD, K_RUNNING, K_KRUNS = KEYS[5], KEYS[6], KEYS[7]
local K_DONE, K_DONEZ, K_FENCE = KEYS[8], KEYS[9], KEYS[10]
local K_INST, K_INSTZ = KEYS[11], KEYS[12]
local LOG_SIZE = 100
local op, channel, sender = ARGV[1], ARGV[2], ARGV[3]

local DONE_KEEP_MS = 300000

local function fmt(n)
  return string.format('%d', n)
end

local function get_st(key)
  local s = redis.call('HGET', K_ST, key)
  if not s then
    return nil
  end
  local e, m, v, f, b = string.match(s, '^(%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%d+)$')
  return {e = tonumber(e), m = tonumber(m), v = v, f = tonumber(f), b = tonumber(b)}
end

local function put_st(key, st)
  redis.call('HSET', K_ST, key,
    fmt(st.e) .. '|' .. fmt(st.m) .. '|' .. st.v .. '|' .. fmt(st.f) .. '|' .. fmt(st.b))
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
  if st and st.e == 1 and st.f >= 0 and redis.call('HEXISTS', K_HELD, key) == 0
      and tonumber(redis.call('HGET', K_RUNNING, key) or '0') < st.m then
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
    end
  end
  redis.call('HDEL', K_KRUNS, key)
  redis.call('HDEL', K_REC, key)
  redis.call('HDEL', K_ST, key)
  redis.call('HDEL', K_HELD, key)
  redis.call('HDEL', K_RUNNING, key)
  redis.call('ZREM', K_DUE, 'c:' .. key)
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

local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function done_put(cid, result, now)
  redis.call('HSET', K_DONE, cid, result)
  redis.call('ZADD', K_DONEZ, fmt(now), cid)
end

local function done_trim(now)
  local old = redis.call('ZRANGEBYSCORE', K_DONEZ, '-inf', fmt(now - DONE_KEEP_MS),
    'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', K_DONE, unpack(old))
    redis.call('ZREM', K_DONEZ, unpack(old))
  end
end

-- tell other instances when the earliest due time moved earlier
local function publish_if_earlier(before)
  local after = head()
  if after and (not before or after < before) then
    redis.call('PUBLISH', channel, sender)
  end
end

if op == 'get' then
  local key = ARGV[4]
  return {redis.call('HGET', K_REC, key) or false, redis.call('HGET', K_ST, key) or false}

elseif op == 'save' then
  local key = ARGV[4]
  local before = head()
  local old = get_st(key)
  if old and old.v ~= ARGV[8] then
    drop(key)  -- another definition: the old one, its runs and claims go
  end
  redis.call('HSET', K_REC, key, ARGV[5])
  local st = {e = tonumber(ARGV[6]), m = tonumber(ARGV[7]), v = ARGV[8],
              f = tonumber(ARGV[9]), b = tonumber(ARGV[10])}
  put_st(key, st)
  sync_cursor(key, st)
  publish_if_earlier(before)
  return 1

elseif op == 'delete' then
  -- ARGV: key, run id ('' without a claim), token, commit id
  local key, id, token, cid = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local now = nil
  if id ~= '' then
    local prev = redis.call('HGET', K_DONE, cid)
    if prev then
      return tonumber(prev)
    end
    local run = owned(id, token)
    if not run or run.key ~= key then
      return 0
    end
    now = server_now()
  end
  if redis.call('HEXISTS', K_REC, key) == 0 then
    return 0
  end
  drop(key)
  if KEYS[13] then
    redis.call('DEL', KEYS[13])  -- the record's run log
  end
  if now then
    done_put(cid, 1, now)
  end
  return 1

elseif op == 'add_run' then
  -- ARGV: key, fire_ms, payload ('' for none, else 'j' .. JSON), request id
  local key, fire, payload, rid = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local prev = redis.call('HGET', K_DONE, rid)
  if prev then
    return prev
  end
  if redis.call('HEXISTS', K_REC, key) == 0 then
    return ''
  end
  local before = head()
  local base = key .. '@' .. fire
  local id = base
  local n = 1
  while redis.call('HEXISTS', K_RUN, id) == 1 do
    n = n + 1
    id = base .. '.' .. n
  end
  local f = tonumber(fire)
  put_run({id = id, key = key, fire = f, fromc = 0, attempt = 0, token = '',
           expires = 0, due = f, payload = payload, fence = 0, cancelled = 0})
  kruns_add(key, id)
  redis.call('ZADD', K_DUE, fire, 'r:' .. id)
  local now = server_now()
  done_trim(now)
  done_put(rid, id, now)
  publish_if_earlier(before)
  return id

elseif op == 'acquire' then
  -- ARGV: now_ms, token prefix, lease_ms, limit
  local now = tonumber(ARGV[4])
  local expires = now + tonumber(ARGV[6])
  local items = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[7]))
  local out = {}
  for n, member in ipairs(items) do
    local kind, ident = string.sub(member, 1, 1), string.sub(member, 3)
    local run
    if kind == 'c' then
      local st = get_st(ident)
      local id = ident .. '@' .. fmt(st.f)
      run = {id = id, key = ident, fire = st.f, fromc = 1, attempt = 0, due = st.f,
             payload = '', cancelled = 0}
      redis.call('HSET', K_HELD, ident, id)
      redis.call('HINCRBY', K_RUNNING, ident, 1)
      redis.call('ZREM', K_DUE, member)
      kruns_add(ident, id)
    else
      run = get_run(ident)
      if run.token ~= '' then
        run.attempt = run.attempt + 1  -- the previous holder lost its lease
      end
    end
    run.token = ARGV[5] .. n
    run.expires = expires
    run.fence = redis.call('INCR', K_FENCE)
    put_run(run)
    redis.call('ZADD', K_DUE, fmt(expires), 'r:' .. run.id)
    local o = #out
    out[o + 1] = run.id
    out[o + 2] = run.key
    out[o + 3] = fmt(run.fire)
    out[o + 4] = run.attempt
    out[o + 5] = run.token
    out[o + 6] = fmt(expires)
    out[o + 7] = run.fromc
    out[o + 8] = run.payload
    out[o + 9] = redis.call('HGET', K_REC, run.key)
    out[o + 10] = redis.call('HGET', K_ST, run.key)
    out[o + 11] = run.fence
    out[o + 12] = run.cancelled
  end
  return out

elseif op == 'extend' then
  -- ARGV: (run id, token, until_ms) ...
  local out = {}
  for i = 4, #ARGV, 3 do
    local run = owned(ARGV[i], ARGV[i + 1])
    if run then
      run.expires = tonumber(ARGV[i + 2])
      put_run(run)
      redis.call('ZADD', K_DUE, ARGV[i + 2], 'r:' .. run.id)
      out[#out + 1] = 1 + run.cancelled
    else
      out[#out + 1] = 0
    end
  end
  return out

elseif op == 'commit' then
  -- ARGV: (commit id, run id, token, cursor fire_ms ('' keeps the cursor),
  --        backlog, retry_ms ('' for none), keep_lease '1'/'0',
  --        index of its run log key in KEYS ('0': none), log entry) ...
  local before = head()
  local now = server_now()
  done_trim(now)
  local out = {}
  for i = 4, #ARGV, 9 do
    local cid = ARGV[i]
    local prev = redis.call('HGET', K_DONE, cid)
    local run = nil
    if not prev then
      run = owned(ARGV[i + 1], ARGV[i + 2])
    end
    if prev then
      out[#out + 1] = tonumber(prev)
    elseif not run then
      out[#out + 1] = 0
    else
      local key, id = run.key, run.id
      local st = get_st(key)
      local retry, keep = ARGV[i + 5], ARGV[i + 6]
      if run.cancelled == 1 then  -- a cancelled run finishes
        retry, keep = '', '0'
      end
      if ARGV[i + 3] ~= '' then
        if redis.call('HGET', K_HELD, key) == id then
          redis.call('HDEL', K_HELD, key)
        end
        st.f = tonumber(ARGV[i + 3])
        st.b = tonumber(ARGV[i + 4])
        put_st(key, st)
      end
      if retry ~= '' then
        run.token = ''
        run.attempt = run.attempt + 1
        run.due = tonumber(retry)
        put_run(run)
        redis.call('ZADD', K_DUE, retry, 'r:' .. id)
      elseif keep ~= '1' then
        redis.call('HDEL', K_RUN, id)
        redis.call('ZREM', K_DUE, 'r:' .. id)
        kruns_del(key, id)
        if run.fromc == 1 then
          if redis.call('HINCRBY', K_RUNNING, key, -1) <= 0 then
            redis.call('HDEL', K_RUNNING, key)
          end
          if redis.call('HGET', K_HELD, key) == id then
            redis.call('HDEL', K_HELD, key)
          end
        end
      end
      sync_cursor(key, st)
      local logkey = tonumber(ARGV[i + 7])
      if logkey > 0 then
        redis.call('LPUSH', KEYS[logkey], ARGV[i + 8])
        redis.call('LTRIM', KEYS[logkey], 0, LOG_SIZE - 1)
      end
      local result = 1 + run.cancelled
      done_put(cid, result, now)
      out[#out + 1] = result
    end
  end
  publish_if_earlier(before)
  return out

elseif op == 'cancel' then
  -- ARGV: run id, now_ms
  local run = get_run(ARGV[4])
  if not run then
    return 0
  end
  local before = head()
  if run.cancelled ~= 1 then
    run.cancelled = 1
    local now = tonumber(ARGV[5])
    if run.token == '' and now < run.due then
      run.due = now
      redis.call('ZADD', K_DUE, ARGV[5], 'r:' .. run.id)
    end
    put_run(run)
  end
  publish_if_earlier(before)
  return 1

elseif op == 'log' then
  -- ARGV: key, entry; KEYS[13]: its run log
  if redis.call('HEXISTS', K_REC, ARGV[4]) == 1 then
    redis.call('LPUSH', KEYS[13], ARGV[5])
    redis.call('LTRIM', KEYS[13], 0, LOG_SIZE - 1)
  end
  return 1

elseif op == 'register' then
  -- ARGV: instance id, info, listed until (ms)
  redis.call('HSET', K_INST, ARGV[4], ARGV[5])
  redis.call('ZADD', K_INSTZ, ARGV[6], ARGV[4])
  return 1

elseif op == 'deregister' then
  redis.call('HDEL', K_INST, ARGV[4])
  redis.call('ZREM', K_INSTZ, ARGV[4])
  return 1

elseif op == 'instances' then
  -- ARGV: now_ms. Forgets the instances not seen in time; lists the others.
  local gone = redis.call('ZRANGEBYSCORE', K_INSTZ, '-inf', ARGV[4])
  for _, ident in ipairs(gone) do
    redis.call('HDEL', K_INST, ident)
    redis.call('ZREM', K_INSTZ, ident)
  end
  return redis.call('HVALS', K_INST)
end

return redis.error_reply('unknown store operation ' .. tostring(op))
