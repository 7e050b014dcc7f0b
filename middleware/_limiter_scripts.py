"""The limiter's Lua scripts; each runs atomically in Redis, on Redis's own clock.

Keys of one limiter (one hash tag, so a cluster keeps them on one shard):

- ``done``  ZSET slot -> time the call *finished*, in µs. A finished call counts against
  the window until ``finished + window``. Counting from the finish rather than the start is
  what makes the limit exact at the server: a call reaches the server somewhere between its
  start and its finish, so a call admitted ``window`` after the previous one *finished* reaches
  the server at least ``window`` after the previous one did, however long either took.
- ``live``  ZSET slot -> start time of a call in flight. In-flight calls count against the
  window and the concurrency limit. A lease that runs out (its worker died) is moved to
  ``done`` as if it had finished at the end of its lease.
- ``tok``   HASH slot -> input tokens of every call still in ``done`` or ``live``: the estimate
  while in flight, the actual count once finished.
- ``line``  ZSET ticket -> promised time. Waiters are given distinct promised times, one per
  slot as it frees, so they wake in turn instead of all at once; a due waiter goes before a
  newcomer.
- ``state`` HASH ``pause_until`` (a shared pause set by an upstream 429), ``scale`` and
  ``scale_at`` (the share of the limit in force after a 429, restored step by step), and
  running averages of a call's duration and tokens.
- ``counters`` HASH of totals: ``calls``, ``waits``, ``upstream_limited``, ``tokens``.
"""

from __future__ import annotations

#: Shared prelude: the clock, key names and the state every script reads.
_PRELUDE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local done, live, tok, line, state, counters = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local RECOVERY_STEP = 0.25
local function effective_scale(window)
  local scale = tonumber(redis.call('HGET', state, 'scale')) or 1
  local scale_at = tonumber(redis.call('HGET', state, 'scale_at')) or 0
  if scale < 1 and now > scale_at then
    scale = math.min(1, scale + RECOVERY_STEP * math.floor((now - scale_at) / window))
  end
  return scale
end
local function keep(ttl)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""

#: ARGV: mode ("acquire" or "reserve"), slot, ticket, requests, window µs, concurrency (0: none),
#: token limit (0: none), default token estimate, lease µs.
#: Returns {0, "ok"} when admitted, else {wait µs, reason}; a waiter is put in line either way.
ACQUIRE = _PRELUDE + """
local mode, slot, ticket = ARGV[1], ARGV[2], ARGV[3]
local limit, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local concurrency, token_limit = tonumber(ARGV[6]), tonumber(ARGV[7])
local default_tokens, lease = tonumber(ARGV[8]), tonumber(ARGV[9])

for _, member in ipairs(redis.call('ZRANGEBYSCORE', live, '-inf', now - lease)) do
  local started = tonumber(redis.call('ZSCORE', live, member))
  redis.call('ZREM', live, member)
  redis.call('ZADD', done, started + lease, member)
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', done, '-inf', now - window)) do
  redis.call('HDEL', tok, member)
end
redis.call('ZREMRANGEBYSCORE', done, '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', line, '-inf', now - window)

local pause_until = tonumber(redis.call('HGET', state, 'pause_until')) or 0
local allowed = math.max(1, math.floor(limit * effective_scale(window)))
local avg_us = tonumber(redis.call('HGET', state, 'avg_us')) or 0
local estimate = tonumber(redis.call('HGET', state, 'avg_tokens')) or default_tokens
local in_flight = redis.call('ZCARD', live)
local in_window = redis.call('ZCARD', done) + in_flight
local tokens_used = 0
if token_limit > 0 then
  for _, value in ipairs(redis.call('HVALS', tok)) do tokens_used = tokens_used + tonumber(value) end
end
local my_score = tonumber(redis.call('ZSCORE', line, ticket))
-- Scores go back to Redis through string.format: Lua's `..` prints numbers with 14
-- significant digits, which rounds a µs timestamp and would count this ticket as ahead of itself.
local before_me = my_score and string.format('(%d', my_score)
local due_ahead
if my_score == nil then
  due_ahead = redis.call('ZCOUNT', line, '-inf', now)
elseif my_score <= now then
  due_ahead = redis.call('ZCOUNT', line, '-inf', before_me)
else
  due_ahead = redis.call('ZCOUNT', line, '-inf', now)
end
local tokens_fit = token_limit <= 0 or tokens_used == 0 or tokens_used + estimate <= token_limit
local ttl = math.ceil((lease + 2 * window + math.max(0, pause_until - now)) / 1000)

if mode == 'acquire' and pause_until <= now and due_ahead < allowed - in_window
    and (concurrency <= 0 or in_flight < concurrency) and tokens_fit then
  redis.call('ZADD', live, now, slot)
  redis.call('HSET', tok, slot, estimate)
  redis.call('ZREM', line, ticket)
  redis.call('HINCRBY', counters, 'calls', 1)
  keep(ttl)
  return {0, 'ok'}
end

-- Not now: promise the time this waiter's turn comes. The n-th waiter in line gets the n-th
-- slot to free after `start`; a slot admitted at time a frees again at a + window.
local start = math.max(now, pause_until)
local frees = {}
local entries = redis.call('ZRANGE', done, 0, -1, 'WITHSCORES')
for i = 2, #entries, 2 do
  local free = tonumber(entries[i]) + window
  if free > start then frees[#frees + 1] = free end
end
local flying = redis.call('ZRANGE', live, 0, -1, 'WITHSCORES')
for i = 2, #flying, 2 do
  frees[#frees + 1] = math.max(now, tonumber(flying[i]) + avg_us) + window
end
table.sort(frees)
local ahead = my_score and redis.call('ZCOUNT', line, '-inf', before_me) or redis.call('ZCARD', line)
local open = allowed - #frees
local slot_index, rounds = ahead % allowed, math.floor(ahead / allowed)
local at
if slot_index < open then at = start else at = frees[slot_index - open + 1] end
at = at + rounds * window
local reason = pause_until > now and 'paused' or 'rate'
if concurrency > 0 and in_flight >= concurrency then
  local busy_until = now + 1000
  if #flying > 0 then busy_until = math.max(busy_until, tonumber(flying[2]) + avg_us) end
  if busy_until > at then at, reason = busy_until, 'concurrency' end
end
if not tokens_fit then
  local need, freed, tokens_at = tokens_used + estimate - token_limit, 0, now + avg_us + window
  for i = 1, #entries, 2 do
    freed = freed + (tonumber(redis.call('HGET', tok, entries[i])) or 0)
    if freed >= need then tokens_at = tonumber(entries[i + 1]) + window; break end
  end
  if tokens_at > at then at, reason = tokens_at, 'tokens' end
end
at = math.max(at, now + 1000)
redis.call('ZADD', line, at, ticket)
if mode == 'acquire' then redis.call('HINCRBY', counters, 'waits', 1) end
keep(ttl)
return {at - now, reason}
"""

#: ARGV: slot, input tokens (-1: unknown, keep the estimate), window µs, lease µs.
#: The call counts against the window until a window after now.
RELEASE = _PRELUDE + """
local slot, tokens = ARGV[1], tonumber(ARGV[2])
local window, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local started = tonumber(redis.call('ZSCORE', live, slot))
redis.call('ZREM', live, slot)
redis.call('ZADD', done, now, slot)
if started then
  local avg = tonumber(redis.call('HGET', state, 'avg_us'))
  local took = now - started
  redis.call('HSET', state, 'avg_us', avg and math.floor(0.8 * avg + 0.2 * took) or took)
end
if tokens >= 0 then
  redis.call('HSET', tok, slot, tokens)
  local avg = tonumber(redis.call('HGET', state, 'avg_tokens'))
  redis.call('HSET', state, 'avg_tokens', avg and math.floor(0.8 * avg + 0.2 * tokens) or tokens)
  redis.call('HINCRBY', counters, 'tokens', tokens)
end
-- Keep a shared pause alive: expiring the state early would end it for every worker.
local pause_until = tonumber(redis.call('HGET', state, 'pause_until')) or 0
keep(math.ceil((lease + 2 * window + math.max(0, pause_until - now)) / 1000))
return 1
"""

#: ARGV: retry-after µs, window µs, lease µs, minimum scale.
#: Pauses every worker until now + retry-after (never shortening a pause). The first 429 of
#: a pause also halves the share of the limit in force; it grows back a quarter per window
#: after the pause ends. Returns the pause's end in µs.
PAUSE = _PRELUDE + """
local retry, window, lease, min_scale = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local paused_until = tonumber(redis.call('HGET', state, 'pause_until')) or 0
local until_us = math.max(paused_until, now + retry)
if paused_until <= now then
  local scale = math.max(min_scale, effective_scale(window) / 2)
  redis.call('HSET', state, 'scale', scale)
end
redis.call('HSET', state, 'pause_until', until_us, 'scale_at', until_us)
redis.call('HINCRBY', counters, 'upstream_limited', 1)
keep(math.ceil((lease + 2 * window + (until_us - now)) / 1000))
return until_us
"""
