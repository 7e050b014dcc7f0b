"""The one module that knows dramatiq's and autolog's Redis keys: depths, pauses, purges, dead letters, ack sets.

Key names follow ``dramatiq/brokers/redis/dispatch.lua``: the list ``ns:q`` holds ready
message ids (``rpush`` to enqueue, ``lpop`` to fetch), the hash ``ns:q.msgs`` every unacked
message (ready, or fetched by a worker) by its ``redis_message_id``, ``ns:q.DQ`` and
``ns:q.DQ.msgs`` the delayed ones, and the sorted set ``ns:q.XQ`` with the hash
``ns:q.XQ.msgs`` the dead letters; the set ``ns:__acks__.<worker>.<q>`` what a worker fetched and
has not acknowledged, and the sorted set ``ns:__heartbeats__`` each worker's last fetch. autolog
adds the set ``ns:__paused__`` of paused queues and, per queue, the list ``ns:q.HQ`` of held
messages (whole encoded messages, oldest first) that a pause keeps out of the ready list, so no
worker fetches them until the queue resumes, and the list ``ns:q.wake`` of wake tokens an idle
consumer blocks on (``actors._waking_broker``).

Messages are JSON under dramatiq's default encoder, so nothing here imports dramatiq.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

import redis

from autolog.statuses import step_named
from autolog.store import NewEvent

#: The set of paused queue names, under the broker's namespace.
PAUSED_KEY = "__paused__"

#: The suffix of a queue's list of held messages.
HELD_SUFFIX = ".HQ"

#: Wake tokens kept per queue (``actors._waking_broker``): enough to wake every idle consumer
#: of a burst, never a backlog.
WAKE_TOKENS = 16


def wake_key(namespace: str, queue_name: str) -> str:
    """Return the Redis list an idle consumer of ``queue_name`` blocks on, and every enqueue pushes to."""
    return f"{namespace}:{queue_name}.wake"

#: Per queue: ready, unacked, delayed, dead-lettered, held, and the message at the head of the queue.
_QUEUES_SCRIPT = """
local out = {}
for i = 2, #ARGV do
  local key = ARGV[1] .. ':' .. ARGV[i]
  local head = redis.call('LINDEX', key, 0)
  local data = false
  if head then data = redis.call('HGET', key .. '.msgs', head) end
  out[#out + 1] = redis.call('LLEN', key)
  out[#out + 1] = redis.call('HLEN', key .. '.msgs')
  out[#out + 1] = redis.call('HLEN', key .. '.DQ.msgs')
  out[#out + 1] = redis.call('ZCARD', key .. '.XQ')
  out[#out + 1] = redis.call('LLEN', key .. '.HQ')
  out[#out + 1] = data or ''
end
return out
"""

#: Pause: flag the queue, then move its ready messages, in order, from the list to the held list.
#: KEYS: paused set, queue list, queue hash, held list. ARGV: queue name. Returns how many moved.
_PAUSE_SCRIPT = """
redis.call('SADD', KEYS[1], ARGV[1])
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
local moved = 0
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[3], id)
  if data then
    redis.call('RPUSH', KEYS[4], data)
    redis.call('HDEL', KEYS[3], id)
    moved = moved + 1
  end
end
redis.call('DEL', KEYS[2])
return moved
"""

#: Resume: clear the flag, put every held message back at the tail of the ready list, oldest
#: first, and wake the queue's idle consumers.
#: KEYS: paused set, queue list, queue hash, held list, wake list. ARGV: queue name, wake tokens.
#: Returns how many were released.
_RESUME_SCRIPT = """
redis.call('SREM', KEYS[1], ARGV[1])
local released = 0
while true do
  local data = redis.call('LPOP', KEYS[4])
  if not data then break end
  local id = cjson.decode(data)['options']['redis_message_id']
  redis.call('HSET', KEYS[3], id, data)
  redis.call('RPUSH', KEYS[2], id)
  released = released + 1
end
if released > 0 then
  for i = 1, math.min(released, tonumber(ARGV[2])) do redis.call('LPUSH', KEYS[5], '1') end
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[2]) - 1)
end
return released
"""

#: Hold one fetched message if its queue is (still) paused and it was not purged meanwhile.
#: KEYS: paused set, queue hash, held list, purge time, the holding worker's ack set. ARGV: queue,
#: redis id, data, message timestamp. Returns 1 held, 0 not paused (run it), -1 purged (drop it).
#: Held or dropped, the message leaves the worker's ack set here: the worker's ack may reach Redis
#: later (``actors._waking_broker`` sends acks with its next fetch), after a resume put the message
#: back under the same id, and must not delete it then.
_HOLD_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[5], ARGV[2])
local purged_at = tonumber(redis.call('GET', KEYS[4]) or '0')
if tonumber(ARGV[4]) <= purged_at then
  redis.call('HDEL', KEYS[2], ARGV[2])
  return -1
end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
"""

#: Purge: drop the ready, delayed and held messages, note the time, and return every dropped message.
#: KEYS: queue list, queue hash, delay list, delay hash, held list, purge time, paused set. ARGV: now
#: (ms), the queue's name. Returns whether the queue is paused ('1' or '0'), the dropped messages'
#: data, then a marker '', then the data of messages workers still hold.
_PURGE_SCRIPT = """
local out = {tostring(redis.call('SISMEMBER', KEYS[7], ARGV[2]))}
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[2], id)
  if data then out[#out + 1] = data; redis.call('HDEL', KEYS[2], id) end
end
redis.call('DEL', KEYS[1])
for _, data in ipairs(redis.call('HVALS', KEYS[4])) do out[#out + 1] = data end
redis.call('DEL', KEYS[3], KEYS[4])
for _, data in ipairs(redis.call('LRANGE', KEYS[5], 0, -1)) do out[#out + 1] = data end
redis.call('DEL', KEYS[5])
redis.call('SET', KEYS[6], ARGV[1])
out[#out + 1] = ''
for _, data in ipairs(redis.call('HVALS', KEYS[2])) do out[#out + 1] = data end
return out
"""


@dataclass(frozen=True)
class QueueStats:
    """One queue's messages by state, and how long its next message has waited."""

    ready: int
    delayed: int
    in_flight: int
    dead: int
    #: Seconds since the message at the head of the queue became due; 0 when it is empty.
    oldest_age_s: float
    #: Messages a pause holds back.
    held: int = 0

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class StoredMessage:
    """A message as Redis holds it: enough to tell which item and step it is for."""

    message_id: str
    queue: str
    actor: str
    args: tuple[Any, ...]
    options: dict[str, Any]
    timestamp_ms: int

    @property
    def item_id(self) -> str | None:
        """The item the message works on: a step's first argument, or a callback's result's ``item_id``."""
        if self.args and isinstance(self.args[0], str):
            return self.args[0]
        if len(self.args) > 1 and isinstance(self.args[1], dict) and isinstance(self.args[1].get("item_id"), str):
            item: str = self.args[1]["item_id"]
            return item
        return None


def decode_message(data: str | bytes) -> StoredMessage | None:
    """Return a stored message's facts, or None when the data is not a dramatiq message."""
    try:
        return stored_message(json.loads(data))
    except ValueError:
        return None


def stored_message(message: Any) -> StoredMessage | None:
    """Return the facts of a message decoded from dramatiq's JSON (``Message.asdict``), or None when it is not one."""
    try:
        return StoredMessage(message_id=str(message["message_id"]), queue=str(message["queue_name"]),
                             actor=str(message["actor_name"]), args=tuple(message.get("args") or ()),
                             options=dict(message.get("options") or {}),
                             timestamp_ms=int(message.get("message_timestamp") or 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def put_back_event(message: StoredMessage | None, event: str, *, detail: dict[str, Any],
                   worker: str | None = None, at: datetime | None = None) -> NewEvent | None:
    """Return the timeline ``event`` (``requeued``, ``redelivered``) of a step message put back on its queue.

    The event names the message's step, id and attempt; its detail is the message's queue,
    then ``detail``. None when a timeline has nothing to tell: no message (gone, or not
    dramatiq's), a message of a delay queue (its step has not started), one naming no item, or
    a callback's rather than a step's.
    """
    if message is None or message.item_id is None or message.queue.endswith(".DQ"):
        return None
    try:
        step = step_named(message.actor)
    except KeyError:  # A callback, not a step.
        return None
    return NewEvent(item_id=message.item_id, event=event, step=step.name, message_id=message.message_id,
                    attempt=int(message.options.get("retries", 0)) + 1, worker=worker,
                    detail={"queue": message.queue, **detail}, at=at)


def _due_ms(payload: str | bytes) -> int | None:
    message = decode_message(payload)
    if message is None:
        return None
    return int(message.options.get("eta") or message.timestamp_ms)


def _key(namespace: str, queue: str, suffix: str = "") -> str:
    return f"{namespace}:{queue}{suffix}"


def ack_set_key(namespace: str, worker_id: str, queue: str) -> str:
    """Return the key of the set of ``queue``'s messages worker ``worker_id`` (its broker's id) fetched, unacked."""
    return f"{namespace}:__acks__.{worker_id}.{queue}"


#: Acknowledges messages of one queue that one worker fetched, each as dramatiq's ``ack`` command
#: does (its dispatch script): the id leaves the worker's ack set and, if it was there, its data
#: leaves the queue's hash (a message a hold took from the set, and a resume put back, stays).
#: KEYS: ``ack_set_key``, the queue's ``.msgs`` hash; ARGV: the messages' Redis ids.
ACK_SCRIPT = """
for _, id in ipairs(ARGV) do
  if redis.call('SREM', KEYS[1], id) > 0 then redis.call('HDEL', KEYS[2], id) end
end
return #ARGV
"""


def ack_keys(namespace: str, worker_id: str, queue: str) -> tuple[str, str]:
    """Return ``ACK_SCRIPT``'s keys for ``queue``'s messages worker ``worker_id`` fetched."""
    return ack_set_key(namespace, worker_id, queue), _key(namespace, queue, ".msgs")


def read_queue_stats(
    client: redis.Redis, namespace: str, queues: Sequence[str], *, now_ms: int | None = None,
) -> dict[str, QueueStats]:
    """Read each queue's depth and the age of its oldest ready message, in one atomic call.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    if not queues:
        return {}
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    raw = client.eval(_QUEUES_SCRIPT, 0, namespace, *queues)
    stats = {}
    for index, queue in enumerate(queues):
        ready, unacked, delayed, dead, held, head = raw[index * 6:index * 6 + 6]
        due = _due_ms(head) if head else None
        stats[queue] = QueueStats(
            ready=int(ready), delayed=int(delayed), in_flight=max(0, int(unacked) - int(ready)), dead=int(dead),
            oldest_age_s=max(0.0, (now_ms - due) / 1000) if due is not None else 0.0, held=int(held),
        )
    return stats


def paused_queues(client: redis.Redis, namespace: str) -> frozenset[str]:
    """Return the names of the paused queues.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    members: set[bytes] = client.smembers(_key(namespace, PAUSED_KEY))  # type: ignore[assignment]
    return frozenset(member.decode() for member in members)


def pause(client: redis.Redis, namespace: str, queue: str) -> int:
    """Flag ``queue`` paused and hold its ready messages, in order; return how many were held."""
    keys = (_key(namespace, PAUSED_KEY), _key(namespace, queue), _key(namespace, queue, ".msgs"),
            _key(namespace, queue, HELD_SUFFIX))
    return int(client.eval(_PAUSE_SCRIPT, len(keys), *keys, queue))  # type: ignore[arg-type]


def resume(client: redis.Redis, namespace: str, queue: str) -> int:
    """Clear ``queue``'s pause and put its held messages back on it, oldest first; return how many."""
    keys = (_key(namespace, PAUSED_KEY), _key(namespace, queue), _key(namespace, queue, ".msgs"),
            _key(namespace, queue, HELD_SUFFIX), wake_key(namespace, queue))
    return int(client.eval(_RESUME_SCRIPT, len(keys), *keys, queue, WAKE_TOKENS))  # type: ignore[arg-type]


def hold(client: redis.Redis, namespace: str, queue: str, redis_message_id: str, data: bytes,
         timestamp_ms: int, *, worker_id: str) -> int:
    """Hold a message worker ``worker_id`` (its broker's id) fetched from a paused queue.

    Returns:
        1 when it is held (the worker acknowledges and skips it), 0 when the queue is no
        longer paused (the worker runs it), -1 when a purge since its enqueue dropped it.
    """
    keys = (_key(namespace, PAUSED_KEY), _key(namespace, queue, ".msgs"), _key(namespace, queue, HELD_SUFFIX),
            purge_time_key(namespace, queue), ack_set_key(namespace, worker_id, queue))
    return int(client.eval(_HOLD_SCRIPT, len(keys), *keys, queue, redis_message_id, data,  # type: ignore[arg-type]
                           timestamp_ms))


@dataclass(frozen=True)
class Purge:
    """What a purge dropped, what workers of the queue still hold, and whether the queue was paused then.

    Workers' messages are running or prefetched; in a paused queue their pause check drops them.
    """

    dropped: tuple[StoredMessage, ...]
    held_by_workers: tuple[StoredMessage, ...]
    paused: bool = False


def purge(client: redis.Redis, namespace: str, queue: str) -> Purge:
    """Drop ``queue``'s ready, delayed and held messages in one atomic call.

    Messages a worker already fetched are not dropped here; one it fetched but has not run
    is dropped when it reaches ``hold`` while the queue is paused.
    """
    keys = (_key(namespace, queue), _key(namespace, queue, ".msgs"), _key(namespace, queue, ".DQ"),
            _key(namespace, queue, ".DQ.msgs"), _key(namespace, queue, HELD_SUFFIX), purge_time_key(namespace, queue),
            _key(namespace, PAUSED_KEY))
    paused, *raw = client.eval(_PURGE_SCRIPT, len(keys), *keys, int(time.time() * 1000),  # type: ignore[misc]
                               queue)
    marker = raw.index(b"")
    return Purge(dropped=tuple(m for m in map(decode_message, raw[:marker]) if m is not None),
                 held_by_workers=tuple(m for m in map(decode_message, raw[marker + 1:]) if m is not None),
                 paused=paused == b"1")


def purged_while_fetched(client: redis.Redis, namespace: str, queue: str, redis_message_id: str,
                         timestamp_ms: int) -> bool:
    """Tell whether a purge dropped a message a worker had fetched, so it must not go back on ``queue``.

    A worker holds a delayed message it fetched until it is due, then puts it on its queue
    (``queue``, without ``.DQ``). A purge meanwhile deleted it from the delay queue's hash,
    counted it and marked its item: the message is dropped if Redis no longer holds its id
    (``redis_message_id``, in ``queue``'s hash, its delay queue's or its dead letters': a dead
    letter being retried still holds its own) and the queue was purged at or after the message
    was made (``timestamp_ms``). An id gone without a purge (Redis lost its data) is sent again:
    losing it would strand its item.

    ``client`` may be a pipeline watching keys (its commands then run at once, one round trip each).

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    if any(client.hexists(_key(namespace, queue, suffix), redis_message_id) for suffix in (".msgs", ".DQ.msgs",
                                                                                           ".XQ.msgs")):
        return False
    purged_at = client.get(purge_time_key(namespace, queue))
    return purged_at is not None and timestamp_ms <= int(purged_at)  # type: ignore[arg-type]


def purge_time_key(namespace: str, queue: str) -> str:
    """Return the key holding when ``queue`` was last purged (Unix ms): every purge sets it."""
    return _key(namespace, queue, ".PT")


def messages_in_flight(client: redis.Redis, namespace: str, queues: Iterable[str]) -> Iterator[StoredMessage]:
    """Yield every message queued, delayed, held by a pause or being processed, queue by queue.

    Every message the Redis broker has not acknowledged is in its queue's ``.msgs`` hash,
    whether it waits in the list or a worker holds it; delayed ones are in the delay queue's.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    for queue in queues:
        for name in (queue, f"{queue}.DQ"):
            for _, data in client.hscan_iter(_key(namespace, name, ".msgs"), count=1000):
                message = decode_message(data)
                if message is not None:
                    yield message
        for data in client.lrange(_key(namespace, queue, HELD_SUFFIX), 0, -1):  # type: ignore[union-attr]
            message = decode_message(data)
            if message is not None:
                yield message


#: Which of the given message ids one page of a queue's key holds: up to ``ARGV[3]`` messages of
#: a hash (``HSCAN`` from cursor ``ARGV[2]``) or of a list (from index ``ARGV[2]``), by
#: ``ARGV[1]`` ("hash" or "list"). A message's own id is the last key of dramatiq's JSON
#: (``Message.asdict`` order, compact separators); an encoding that does not end so, or whose id
#: JSON escapes (a backslash, a non-ASCII character), is decoded whole. Nested messages (a
#: pipeline's later steps in ``options``) have ids of their own, which must not count.
#: KEYS: the key; ARGV[4...]: the message ids. Returns the next cursor ("0": the key is read
#: through), then the ids found.
_HELD_IDS_PAGE_SCRIPT = """
local wanted = {}
for i = 4, #ARGV do wanted[ARGV[i]] = true end
local out = {'0'}
local function look(data)
  local id = string.match(data, '"message_id":"([^"]*)","message_timestamp":%d+}$')
  if not id or string.find(id, '\\92', 1, true) then  -- none, or JSON-escaped: decoded whole
    local ok, message = pcall(cjson.decode, data)
    if ok and type(message) == 'table' then id = message['message_id'] end
  end
  if id and wanted[id] then
    out[#out + 1] = id
    wanted[id] = nil
  end
end
local size = tonumber(ARGV[3])
if ARGV[1] == 'hash' then
  local page = redis.call('HSCAN', KEYS[1], ARGV[2], 'COUNT', size)
  out[1] = page[1]
  for i = 2, #page[2], 2 do look(page[2][i]) end
else
  local start = tonumber(ARGV[2])
  local page = redis.call('LRANGE', KEYS[1], start, start + size - 1)
  for _, data in ipairs(page) do look(data) end
  if #page == size then out[1] = tostring(start + size) end
end
return out
"""

#: Messages read per script call: Redis is busy for one page at a time, whatever the backlog.
HELD_IDS_PAGE = 500

#: Where a queue's messages are, in the order messages move between them: a delayed one comes due
#: (``.DQ.msgs`` to ``.msgs``), a pause holds (``.msgs`` to ``.HQ``), a resume puts back (``.HQ``
#: to ``.msgs``, read again last); dead letters (``.XQ.msgs``) stay.
_HELD_KEYS = ((".DQ.msgs", "hash"), (".msgs", "hash"), (HELD_SUFFIX, "list"), (".XQ.msgs", "hash"), (".msgs", "hash"))


def held_message_ids(client: redis.Redis, namespace: str, queue: str, message_ids: Sequence[str]) -> set[str]:
    """Return which of ``message_ids`` (dramatiq message ids) ``queue`` still holds, in any state.

    Queued, being processed (``.msgs``), delayed, held by a pause or dead-lettered: the keys
    are read page by page (``HELD_IDS_PAGE`` messages a call, so Redis is never busy for long
    and a large backlog never outlasts the client's socket timeout), until every id is found.
    The keys are read in the order messages move between them, the queue's again after a
    resume's, so a message that moves while they are read is read where it went. Meant for
    rare calls (the outbox relay's, for rows whose writer's lease ran out): it reads every
    message the queue holds when an id is not there.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    wanted = set(message_ids)
    found: set[str] = set()
    for suffix, kind in _HELD_KEYS:
        cursor = "0"
        while wanted:
            reply: list[bytes] = client.eval(  # type: ignore[assignment]
                _HELD_IDS_PAGE_SCRIPT, 1, _key(namespace, queue, suffix), kind, cursor, HELD_IDS_PAGE, *wanted)
            cursor, page_found = _text(reply[0]), {_text(message_id) for message_id in reply[1:]}
            found |= page_found
            wanted -= page_found
            if cursor == "0":
                break
    return found


#: Gives back what dead workers fetched and never acknowledged: dramatiq's maintenance
#: (``dispatch.lua``, ``do_maintenance``) on the given queues, returning what it moved.
#: ARGV: namespace, cutoff (ms: a worker whose last heartbeat is older is dead), wake tokens,
#: then the queue names (work and delay queues). Returns worker, last beat, queue, data per message.
_REDELIVER_SCRIPT = """
local ns = ARGV[1]
local dead = redis.call('ZRANGEBYSCORE', ns .. ':__heartbeats__', 0, tonumber(ARGV[2]), 'WITHSCORES')
local out = {}
for d = 1, #dead, 2 do
  local worker, beat = dead[d], dead[d + 1]
  for i = 4, #ARGV do
    local queue = ARGV[i]
    local acks = ns .. ':__acks__.' .. worker .. '.' .. queue
    local ids = redis.call('SMEMBERS', acks)
    local moved = 0
    for _, id in ipairs(ids) do
      local data = redis.call('HGET', ns .. ':' .. queue .. '.msgs', id)
      if data then
        redis.call('RPUSH', ns .. ':' .. queue, id)
        out[#out + 1] = worker; out[#out + 1] = beat; out[#out + 1] = queue; out[#out + 1] = data
        moved = moved + 1
      end
    end
    if #ids > 0 then redis.call('DEL', acks) end
    if moved > 0 then
      local wake = ns .. ':' .. queue .. '.wake'
      for w = 1, math.min(moved, tonumber(ARGV[3])) do redis.call('LPUSH', wake, '1') end
      redis.call('LTRIM', wake, 0, tonumber(ARGV[3]) - 1)
    end
  end
end
return out
"""


@dataclass(frozen=True)
class Redelivery:
    """A message a dead worker had fetched, put back on its queue."""

    #: The dead worker's dramatiq broker id.
    worker_id: str
    #: Its last heartbeat, in ms since the epoch.
    last_beat_ms: int
    message: StoredMessage


def redeliver_from_dead_workers(client: redis.Redis, namespace: str, queues: Iterable[str], *, now_ms: int,
                                heartbeat_timeout_ms: int) -> list[Redelivery]:
    """Put back on their queues the messages of workers whose heartbeat is older than ``heartbeat_timeout_ms``.

    This is dramatiq's own maintenance (``dispatch.lua``: a dead worker's ack set is moved
    back to its queue), which dramatiq runs only on one broker command in
    ``maintenance_chance`` and only for that command's queue, so a lost or frozen worker's
    messages came back anywhere from the timeout to many seconds after it. ``queues`` names
    work queues; their delay queues are included. A worker that was only frozen and
    resumes finds its ack set gone: its late acknowledgement removes nothing, and its run
    is refused by the fenced writes (``autolog.store.fencing``).

    Nothing is moved while Redis has been up for less than the timeout: after a Redis
    restart every heartbeat is as old as the outage until the live workers reconnect (a
    dramatiq consumer retries every 3 s), and their running steps are not lost.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    names = [name for queue in queues for name in (queue, f"{queue}.DQ")]
    uptime_s = int(client.info("server")["uptime_in_seconds"])  # type: ignore[index]
    if not names or uptime_s * 1000 < heartbeat_timeout_ms:
        return []
    raw = client.eval(_REDELIVER_SCRIPT, 0, namespace, now_ms - heartbeat_timeout_ms,  # type: ignore[arg-type]
                      WAKE_TOKENS, *names)
    moved = []
    for index in range(0, len(raw), 4):  # type: ignore[arg-type]
        worker, beat, _queue, data = raw[index:index + 4]  # type: ignore[index]
        message = decode_message(data)
        if message is not None:
            moved.append(Redelivery(worker_id=worker.decode(), last_beat_ms=int(float(beat)), message=message))
    return moved


def enqueue_many(broker: Any, messages: Sequence[tuple[str, str, bytes]]) -> None:
    """Put encoded messages on their queues in one Redis round trip, as the broker's ``enqueue`` would one by one.

    Each entry is ``(queue_name, redis_message_id, encoded message)``. The broker's own
    ``dispatch`` script does the work (``enqueue`` command), so the keys are the broker's;
    its hooks are the caller's to emit. The arguments follow ``RedisBroker._dispatch`` of
    dramatiq 2.x: command, timestamp, queue, broker id, heartbeat timeout, dead-letter TTL,
    maintenance flag (never here), largest unpack size, then the command's own.

    Raises:
        redis.RedisError: Redis could not be reached; none or some of the messages were put.
    """
    dispatch = broker.scripts["dispatch"]
    now_ms = int(time.time() * 1000)
    with broker.client.pipeline(transaction=False) as pipe:
        for queue_name, redis_message_id, data in messages:
            dispatch(keys=[broker.namespace],
                     args=["enqueue", now_ms, queue_name, broker.broker_id, broker.heartbeat_timeout,
                           broker.dead_message_ttl, "0", broker._max_unpack_size(), redis_message_id, data],
                     client=pipe)
        # Wake the queues' idle consumers, as each ``WakingRedisBroker.enqueue`` does.
        for queue_name, count in Counter(queue_name for queue_name, _, _ in messages).items():
            pipe.lpush(wake_key(broker.namespace, queue_name), *[b"1"] * min(count, WAKE_TOKENS))
            pipe.ltrim(wake_key(broker.namespace, queue_name), 0, WAKE_TOKENS - 1)
        pipe.execute()


@dataclass(frozen=True)
class DeadLetterEntry:
    """One dead letter as Redis keeps it: its Redis id, when it died (ms) and the message."""

    queue: str
    redis_id: str
    dead_at_ms: float
    data: bytes


def dead_letters(client: redis.Redis, namespace: str, queue: str, *, limit: int) -> list[DeadLetterEntry]:
    """Return up to ``limit`` of ``queue``'s dead letters, newest first."""
    key = _key(namespace, queue, ".XQ")
    entries: list[tuple[bytes, float]] = client.zrevrange(key, 0, limit - 1, withscores=True)  # type: ignore[assignment]
    if not entries:
        return []
    datas: list[bytes | None] = client.hmget(f"{key}.msgs", [redis_id for redis_id, _ in entries])  # type: ignore[assignment]
    return [DeadLetterEntry(queue=queue, redis_id=redis_id.decode(), dead_at_ms=score, data=data)
            for (redis_id, score), data in zip(entries, datas, strict=True) if data is not None]


def find_dead_letter(client: redis.Redis, namespace: str, queues: Iterable[str],
                     message_id: str) -> DeadLetterEntry | None:
    """Find a dead letter by its Redis id or its dramatiq message id (the job id)."""
    for queue in queues:
        key = _key(namespace, queue, ".XQ.msgs")
        data: bytes | None = client.hget(key, message_id)  # type: ignore[assignment]
        if data is not None:
            return DeadLetterEntry(queue=queue, redis_id=message_id, dead_at_ms=0.0, data=data)
        for redis_id, raw in client.hscan_iter(key, count=500):
            message = decode_message(raw)
            if message is not None and message.message_id == message_id:
                return DeadLetterEntry(queue=queue, redis_id=redis_id.decode(), dead_at_ms=0.0, data=raw)
    return None


def drop_dead_letter(client: redis.Redis, namespace: str, queue: str, redis_id: str) -> None:
    """Remove one dead letter."""
    drop_dead_letters(client, namespace, queue, [redis_id])


def drop_dead_letters_of(client: redis.Redis, namespace: str, queues: Iterable[str],
                         item_ids: Collection[str]) -> int:
    """Remove every dead letter of ``item_ids`` from ``queues``' dead-letter queues; return how many went.

    For an item queued again by another way than its dead letter (a rerun, a retry of the item,
    the sweep's retry of a source that changed): the dead letter is then no failure to act on.
    Each queue's dead letters are read 500 at a time.
    """
    dropped = 0
    for queue in queues:
        mine = [redis_id for redis_id, raw in held_dead_letters(client, namespace, queue).items()
                if (message := decode_message(raw)) is not None and message.item_id in item_ids]
        drop_dead_letters(client, namespace, queue, mine)
        dropped += len(mine)
    return dropped


def held_dead_letters(client: redis.Redis, namespace: str, queue: str) -> dict[str, bytes]:
    """Return ``queue``'s dead letters: Redis id → the message as stored (read 500 at a time)."""
    return {redis_id.decode(): raw for redis_id, raw in
            client.hscan_iter(_key(namespace, queue, ".XQ.msgs"), count=500)}


def drop_dead_letters(client: redis.Redis, namespace: str, queue: str, redis_ids: Sequence[str]) -> None:
    """Remove the dead letters ``redis_ids`` of ``queue`` (1,000 to a transaction)."""
    key = _key(namespace, queue, ".XQ")
    for start in range(0, len(redis_ids), 1000):
        chunk = redis_ids[start:start + 1000]
        with client.pipeline(transaction=True) as pipe:
            pipe.zrem(key, *chunk)
            pipe.hdel(f"{key}.msgs", *chunk)
            pipe.execute()


#: A delayed message still held this long after its eta is stranded, in ms (see ``requeue_stranded``).
STRANDED_AFTER_MS = 10_000


#: Moves one delayed message from a worker's ack set back to its delay queue, if still there, and
#: wakes the delay queue's idle consumers. KEYS: ack set, delay queue's hash, delay queue, its wake
#: list; ARGV: the Redis id, wake tokens kept.
_REQUEUE_STRANDED = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('LPUSH', KEYS[4], '1')
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[2]) - 1)
  return 1
end
return 0
"""


def requeue_stranded(client: redis.Redis, namespace: str, queues: Iterable[str], *, now_ms: int,
                     overdue_ms: int = STRANDED_AFTER_MS) -> list[str]:
    """Put back delayed messages a worker fetched but no longer holds; return their (dramatiq) message ids.

    A dramatiq consumer keeps the delayed messages it fetched in memory until they are due,
    with their ids in its ack set (``__acks__.<worker>.<queue>.DQ``). When its Redis
    connection drops, the consumer starts afresh with an empty delay queue, but its ack set
    stays and its heartbeats go on, so dramatiq's maintenance never gives the messages back
    (dramatiq#527). A delayed message still in an ack set ``overdue_ms`` after its eta is one
    of those: a consumer that holds it moves it to its queue at its eta. Redelivering one a
    slow consumer still holds is harmless: the step guard refuses the second run of a step
    whose item has moved on.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    moved: list[str] = []
    for queue in queues:
        delayed = f"{queue}.DQ"
        for key, redis_id, data in _held_in_ack_sets(client, namespace, delayed):
            message = decode_message(data)
            eta = message.options.get("eta") if message is not None else None
            if message is None or not isinstance(eta, int | float) or eta + overdue_ms > now_ms:
                continue
            if client.eval(_REQUEUE_STRANDED, 4, key, _key(namespace, delayed, ".msgs"), _key(namespace, delayed),
                           wake_key(namespace, delayed), redis_id, WAKE_TOKENS):
                moved.append(message.message_id)
    return moved


def _held_in_ack_sets(client: redis.Redis, namespace: str, queue: str) -> Iterator[tuple[str, str, bytes]]:
    """Yield (ack set key, Redis id, stored message) of every message a worker holds on ``queue``.

    One ``SMEMBERS`` and one ``HMGET`` per worker's ack set; ids no longer stored are skipped.
    """
    for key in client.scan_iter(match=f"{namespace}:__acks__.*.{queue}", count=500):
        redis_ids = [_text(member) for member in client.smembers(key)]  # type: ignore[union-attr]
        for redis_id, data in zip(redis_ids, stored_messages(client, namespace, queue, redis_ids), strict=True):
            if data is not None:
                yield _text(key), redis_id, data


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def held_by_worker(client: redis.Redis, namespace: str, worker_id: str) -> dict[str, list[str]]:
    """Return the Redis ids of what broker ``worker_id`` fetched and has not acknowledged, by queue.

    dramatiq keeps them in ``__acks__.<worker>.<queue>``; a delay queue's name ends in ``.DQ``.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    prefix = f"{namespace}:__acks__.{worker_id}."
    held: dict[str, list[str]] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        redis_ids = [_text(member) for member in client.smembers(key)]  # type: ignore[union-attr]
        if redis_ids:
            held[_text(key)[len(prefix):]] = redis_ids
    return held


def held_by_worker_on(client: redis.Redis, namespace: str, worker_id: str, queue: str) -> set[str]:
    """Return the Redis ids of what broker ``worker_id`` fetched from ``queue`` and has not acknowledged.

    One ``SMEMBERS`` of its ack set (``ack_set_key``).

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    members = client.smembers(ack_set_key(namespace, worker_id, queue))
    return {_text(member) for member in members}  # type: ignore[union-attr]


def held_by_workers(client: redis.Redis, namespace: str, queue: str) -> dict[str, bytes]:
    """Return what any worker holds on ``queue`` now (fetched, not acknowledged): Redis id -> stored message.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    return {redis_id: data for _, redis_id, data in _held_in_ack_sets(client, namespace, queue)}


def stored_messages(client: redis.Redis, namespace: str, queue: str, redis_ids: Sequence[str]) -> list[bytes | None]:
    """Return the stored message of each of ``redis_ids`` on ``queue``, None for one acknowledged since.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    if not redis_ids:
        return []
    return client.hmget(_key(namespace, queue, ".msgs"), list(redis_ids))  # type: ignore[return-value]


def worker_heartbeats(client: redis.Redis, namespace: str) -> list[tuple[str, float, int]]:
    """Return each broker's id, its last heartbeat (Unix ms) and how many messages it holds unacknowledged.

    dramatiq scores worker ids by their last fetch in ``__heartbeats__``.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    entries = cast(list[tuple[bytes, float]], client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True))
    prefix = f"{namespace}:__acks__."
    ack_sets = [_text(key) for key in client.scan_iter(match=f"{prefix}*", count=500)]
    with client.pipeline(transaction=False) as pipe:
        for key in ack_sets:
            pipe.scard(key)
        sizes = pipe.execute()
    held: Counter[str] = Counter()
    for key, size in zip(ack_sets, sizes, strict=True):
        # ``__acks__.<worker>.<queue>``: a worker id (a UUID) has no dot; a queue name may.
        held[key[len(prefix):].split(".", 1)[0]] += int(size)
    beats = [(_text(worker_id), float(score), held[_text(worker_id)]) for worker_id, score in entries]
    return beats
