"""Item progress through Redis: publish a stage and percent, keep the latest, stream them.

Every event is published on the item's channel and stored as the item's latest state in one
atomic step, with a per-item sequence number. A subscriber subscribes first, then reads the
latest state and yields it, then yields live events it has not seen: it gets the current
state at once, however late it comes, and never misses or repeats an event.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

import redis

from autolog.processes import current_pid
from autolog.statuses import STEPS, Status, Step, step_for_status

#: How long an item's latest state is kept after its last event, in seconds.
PROGRESS_TTL_S = 7 * 86_400

#: Stores and publishes events, in order, each as the publish of one event would. KEYS: per
#: event, its latest-state key and its sequence key. ARGV: TTL s, then per event: its JSON
#: without ``seq``, its guard message id ("" for none), its channel, its time in ms. Returns
#: each event's sequence number, 0 for one dropped. With a guard, an event is dropped unless the
#: latest state is about that message and not final: news of a delivery the item has moved past
#: must not replace it, nor news of a redelivered duplicate of its last step (skipped) its final
#: state. One exception: a step's "running" is kept when the latest state is the success (not
#: final) of a step no further along (its percent no higher): the "queued" of the next step, sent
#: by the process that ran the step before, may still be in that process's publisher
#: (``BackgroundPublisher``) when another process starts the step; its "queued" then arrives
#: after its "running" and is dropped, as below. Without a guard (a step queued), it is dropped
#: when the latest state happened after it: a worker process sends its events up to 50 ms late,
#: and meanwhile another process may have run that very step. One call for many events: a worker's batch
#: costs one command to pack and parse, not one per event.
_PUBLISH_SCRIPT = """
local ttl, sent = ARGV[1], {}
for i = 0, #KEYS / 2 - 1 do
  local state_key, seq_key = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local payload, guard, channel, at_ms = ARGV[4 * i + 2], ARGV[4 * i + 3], ARGV[4 * i + 4], ARGV[4 * i + 5]
  local keep = true
  local current = redis.call('GET', state_key)
  if current then
    local ok, doc = pcall(cjson.decode, current)
    if ok then
      if guard ~= '' and (doc['message_id'] ~= guard or doc['final']) then keep = false end
      if not keep and doc['state'] == 'succeeded' and not doc['final'] then
        local event = cjson.decode(payload)
        if event['state'] == 'running' and tonumber(event['percent']) >= tonumber(doc['percent'] or 0) then
          keep = true
        end
      end
      if guard == '' and tonumber(doc['at_ms'] or 0) > tonumber(at_ms) then keep = false end
    end
  end
  local seq = 0
  if keep then
    seq = redis.call('INCR', seq_key)
    redis.call('EXPIRE', seq_key, ttl)
    local stored = '{"seq":' .. seq .. ',' .. string.sub(payload, 2)
    redis.call('SET', state_key, stored, 'EX', ttl)
    redis.call('PUBLISH', channel, stored)
  end
  sent[i + 1] = seq
end
return sent
"""

#: How many events one script call takes at most: Redis runs nothing else while a script runs.
MAX_EVENTS_PER_CALL = 256

#: Encodes events without spaces. Made once: ``json.dumps`` with ``separators`` makes an encoder per call,
#: a quarter of an event's encoding (3.2 against 2.3 µs; issue #13).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class ProgressEvent:
    """Where an item's processing stands: its stage (step), the step's state and a percent."""

    item_id: str
    #: The step's name, such as ``assess``.
    stage: str
    #: queued, waiting, running, succeeded, failed, retrying, held (until a paused queue resumes),
    #: skipped (dropped: the item was cancelled or had moved on) or dead_lettered.
    state: str
    #: Share of the pipeline done, 0-100.
    percent: int
    #: The item's status after this event, when known.
    status: str | None = None
    message_id: str | None = None
    attempt: int | None = None
    at_ms: int = 0
    #: Nothing more will happen without a user: the item is done or dead-lettered.
    final: bool = False
    #: Position in the item's event sequence; set when published.
    seq: int = 0

    def to_json(self) -> str:
        """Encode as a JSON object."""
        return _COMPACT_JSON.encode(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> ProgressEvent:
        """Decode what ``to_json`` (or the publish script) wrote."""
        data: dict[str, Any] = json.loads(text)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


#: The fields an event is published with; ``seq`` is the publish script's to add.
_DOCUMENT_FIELDS = tuple(field.name for field in fields(ProgressEvent) if field.name != "seq")


def percent_done(status: Status) -> int:
    """Return the share of the pipeline an item at ``status`` has done, 0-100."""
    if status.is_terminal:
        return 100
    if status is Status.AWAITING_USER_INPUT:
        done = 3
    else:
        step = step_for_status(status)
        done = step.number - 1 if step is not None else 0
    return round(100 * done / len(STEPS))


def percent_before(step: Step) -> int:
    """Return the share done when ``step`` starts."""
    return percent_done(step.from_status)


def progress_keys(namespace: str, item_id: str) -> tuple[str, str, str]:
    """Return the latest-state key, the sequence key and the channel of an item."""
    base = f"{namespace}:progress:{item_id}"
    return base, f"{base}:seq", base


class _Pipelining(threading.local):
    """A thread's pipeline inside ``ProgressChannel.pipelined``, None outside.

    A class default, not ``getattr(local, "pipe", None)``: that raised and caught an
    ``AttributeError`` in every thread that never pipelined, three times a step message (issue #13).
    """

    pipe: redis.client.Pipeline | None = None


class ProgressChannel:
    """Publishes and streams the progress of items through one Redis.

    Args:
        client: Redis; streaming needs a client without a socket timeout shorter than ``idle_s``.
        namespace: the key prefix.
    """

    def __init__(self, client: redis.Redis, *, namespace: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._namespace = namespace
        self._clock = clock
        self._publish = client.register_script(_PUBLISH_SCRIPT)
        self._local = _Pipelining()

    def is_pipelined(self) -> bool:
        """Tell whether this thread is inside ``pipelined``."""
        return self._local.pipe is not None

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Send this thread's ``publish`` calls in one Redis round trip at the end of the block.

        Inside the block ``publish`` returns 0 (the sequence numbers come back with the batch).

        Raises:
            redis.RedisError: Redis could not be reached when the batch was sent.
        """
        if self._local.pipe is not None:
            yield
            return
        with self._client.pipeline(transaction=False) as pipe:
            self._local.pipe = pipe
            try:
                yield
            finally:
                self._local.pipe = None
            pipe.execute()

    def publish(self, event: ProgressEvent, *, guard_message_id: str | None = None) -> int:
        """Store ``event`` as the item's latest state and publish it; return its sequence number.

        Returns:
            0 when ``guard_message_id`` is given and the latest state is about another message,
            or when it is not and the latest state happened after ``event`` (its ``at_ms``);
            0 inside ``pipelined`` (the sequence numbers come back with the batch).

        Raises:
            redis.RedisError: Redis could not be reached.
        """
        return self.publish_many([(event, guard_message_id)])[0]

    def publish_many(self, events: Sequence[tuple[ProgressEvent, str | None]]) -> list[int]:
        """Publish ``(event, guard_message_id)`` pairs in order, as ``publish`` would each; return their numbers.

        One script call per ``MAX_EVENTS_PER_CALL`` events.

        Raises:
            redis.RedisError: Redis could not be reached (events of calls sent before stay published).
        """
        pipe = self._local.pipe
        found: list[int] = []
        for start in range(0, len(events), MAX_EVENTS_PER_CALL):
            keys: list[str] = []
            args: list[str | int] = [PROGRESS_TTL_S]
            for event, guard in events[start:start + MAX_EVENTS_PER_CALL]:
                state_key, seq_key, channel = progress_keys(self._namespace, event.item_id)
                # Every field is a scalar: a shallow read, where ``asdict``'s deep copy cost more than the JSON.
                document = {name: getattr(event, name) for name in _DOCUMENT_FIELDS}
                document["at_ms"] = at_ms = event.at_ms or int(self._clock() * 1000)
                keys += (state_key, seq_key)
                args += (_COMPACT_JSON.encode(document), guard or "", channel, at_ms)
            sent = self._publish(keys=keys, args=args, client=pipe)
            found += [0] * (len(keys) // 2) if pipe is not None else [int(seq) for seq in sent]
        return found

    def latest(self, item_id: str) -> ProgressEvent | None:
        """Return the item's latest state, or None if it has none (or it expired)."""
        raw = self._client.get(progress_keys(self._namespace, item_id)[0])
        return ProgressEvent.from_json(raw) if raw else None

    def stream(
        self, item_id: str, *, after_seq: int = 0, idle_s: float = 15.0, stop_at_final: bool = True,
        max_duration_s: float | None = None,
    ) -> Iterator[ProgressEvent | None]:
        """Yield the item's latest state, then each new event; ``None`` after ``idle_s`` of quiet.

        The ``None`` lets a server send a keep-alive (and notice a client that left).

        Args:
            after_seq: skip events up to this sequence number (an SSE ``Last-Event-ID``).
            stop_at_final: end after an event marked final.
            max_duration_s: end after this long, whatever happens.
        """
        return self._follow([item_id], seen={item_id: after_seq}, idle_s=idle_s, stop_at_final=stop_at_final,
                            max_duration_s=max_duration_s)

    def watch(
        self, item_ids: Sequence[str], *, idle_s: float = 15.0, max_duration_s: float | None = None,
    ) -> Generator[ProgressEvent | None, None, None]:
        """Yield the latest state of each of ``item_ids``, then each new event of any of them.

        One stream for a page that shows many items (a browser opens only six connections to a
        host). ``None`` after ``idle_s`` of quiet; a final event does not end it, only
        ``max_duration_s`` does.
        """
        return self._follow(item_ids, seen={}, idle_s=idle_s, stop_at_final=False, max_duration_s=max_duration_s)

    def _follow(
        self, item_ids: Sequence[str], *, seen: dict[str, int], idle_s: float, stop_at_final: bool,
        max_duration_s: float | None,
    ) -> Generator[ProgressEvent | None, None, None]:
        """Subscribe, yield the latest states not yet ``seen`` (item id to sequence), then live events.

        Ends at the deadline, at a final event when ``stop_at_final``, or once :func:`close_streams` is called.
        """
        channels = [progress_keys(self._namespace, item_id)[2] for item_id in item_ids]
        deadline = None if max_duration_s is None else time.monotonic() + max_duration_s
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(*channels)
            latest = self._client.mget([progress_keys(self._namespace, item_id)[0] for item_id in item_ids])
            for raw in latest:
                current = ProgressEvent.from_json(raw) if raw else None
                if current is not None and current.seq > seen.get(current.item_id, 0):
                    seen[current.item_id] = current.seq
                    yield current
                    if current.final and stop_at_final:
                        return
            quiet_since = time.monotonic()
            while (deadline is None or time.monotonic() < deadline) and not _closing.is_set():
                wait_s = min(idle_s - (time.monotonic() - quiet_since), _CLOSING_CHECK_S)
                if deadline is not None:
                    wait_s = min(wait_s, deadline - time.monotonic())
                message = pubsub.get_message(timeout=max(0.0, wait_s))
                if message is None:
                    if time.monotonic() - quiet_since >= idle_s:
                        quiet_since = time.monotonic()
                        yield None
                    continue
                event = ProgressEvent.from_json(message["data"])
                if event.seq <= seen.get(event.item_id, 0):
                    continue
                seen[event.item_id] = event.seq
                quiet_since = time.monotonic()
                yield event
                if event.final and stop_at_final:
                    return
        finally:
            pubsub.close()


#: Set once this process is stopping (gunicorn's worker got SIGTERM): every open stream ends
#: within ``_CLOSING_CHECK_S``, so a stop never waits out the graceful timeout for a page left open.
_closing = threading.Event()

#: How often a quiet stream looks whether the process is stopping, in seconds.
_CLOSING_CHECK_S = 1.0


def close_streams() -> None:
    """End every progress stream of this process, now and from now on (called as the process stops)."""
    _closing.set()


def stream_progress(
    client: redis.Redis, namespace: str, item_id: str, **options: Any,
) -> Iterator[ProgressEvent | None]:
    """Stream an item's progress: see ``ProgressChannel.stream``."""
    return ProgressChannel(client, namespace=namespace).stream(item_id, **options)


def format_sse(event: ProgressEvent | None) -> bytes:
    """Format one Server-Sent Event: a ``progress`` event with its sequence as id, or a keep-alive."""
    if event is None:
        return b": keep-alive\n\n"
    return f"id: {event.seq}\nevent: progress\ndata: {event.to_json()}\n\n".encode()


def sse_stream(events: Iterator[ProgressEvent | None]) -> Iterator[bytes]:
    """Turn a progress stream into the body of a ``text/event-stream`` response."""
    yield b"retry: 2000\n\n"
    for event in events:
        yield format_sse(event)


#: How long the background publisher lets events gather before it sends them, in s.
GATHER_S = 0.005

#: The shortest time from one send of the background publisher to the next, in s: under load a
#: send goes out every ``SEND_INTERVAL_S`` with every event queued meanwhile (an event after a quiet
#: spell still goes out ``GATHER_S`` after it). Each send costs the worker a wake of the publisher's
#: thread, its turns of the GIL and a script call: sent every 5 ms, in a no-op drain at 1,600-2,000
#: msg/s that was 0.12 of the 0.68 ms of CPU a message; every 50 ms it was 0.03 ms, and the drain ran
#: as fast as without ``Progress`` (issue #13). A progress bar does not show 50 ms.
SEND_INTERVAL_S = 0.05


class BackgroundPublisher:
    """Publishes progress events from a thread of its own, all that are waiting in one round trip.

    A worker thread that published synchronously waited on two Redis round trips per step
    message (running, succeeded), and under a worker's threads each wait cost more in the
    GIL hand-over than the round trip itself: about 40 % of the no-op drain rate
    (``bench/orchestration_bench.py``). Here ``publish`` only queues the event; the thread
    sends everything queued in one script call (``publish_many``), in order, so an item's events keep
    their order: ``GATHER_S`` after the first event queued, and at most once every ``interval_s``.

    Progress is advisory: a batch Redis refuses is logged and dropped, as a synchronous
    publish's failure was. A process that forks gets a thread of its own on first use.
    ``flush`` waits until what is queued has gone, for a step that hands its item to another
    process: that process's events must come after this one's.

    Args:
        channel: where the events go.
        interval_s: the shortest time from one send to the next, in s (``SEND_INTERVAL_S``); a
            ``flush`` sends at once.
    """

    def __init__(self, channel: ProgressChannel, *, interval_s: float = SEND_INTERVAL_S) -> None:
        self.logger = logging.getLogger(__name__)
        self._channel = channel
        self._interval_s = interval_s
        self._start()

    def _start(self) -> None:
        self._pid = current_pid()
        self._changed = threading.Condition()
        self._waiting: list[tuple[ProgressEvent, str | None]] = []
        #: How many events were queued, and how many of them the thread has sent (or dropped).
        self._queued = self._done = 0
        #: Set by ``flush``: the thread sends at once, without letting a burst gather.
        self._hurry = False
        #: Set by a ``flush`` that timed out (Redis hung), cleared when the thread's send returns:
        #: until then a flush does not wait, so a hung Redis costs one wait, not one per step hand-over.
        self._stalled = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="progress-publisher", daemon=True)
        self._thread.start()

    def publish(self, event: ProgressEvent, *, guard_message_id: str | None = None) -> None:
        """Queue ``event`` to be published as ``ProgressChannel.publish`` would (after those queued before it)."""
        if self._pid != current_pid():
            self._start()
        if not event.at_ms:  # when it happened, not when it is sent
            event = dataclasses.replace(event, at_ms=int(time.time() * 1000))
        with self._changed:
            self._waiting.append((event, guard_message_id))
            self._queued += 1
            if len(self._waiting) == 1:
                self._changed.notify_all()

    def flush(self, *, timeout_s: float = 1.0) -> None:
        """Wait until every event queued before this call has been sent or dropped, at most ``timeout_s``.

        The thread sends at once, without the gather pause: about one Redis round trip. If
        a send is still hanging since an earlier flush timed out (Redis hung, not refusing),
        this returns at once: progress is advisory, and a step must not wait on it each time.
        """
        if self._pid != current_pid():
            self._start()
        with self._changed:
            target = self._queued
            if self._done >= target or self._stalled:
                return
            self._hurry = True
            self._changed.notify_all()
            if not self._changed.wait_for(lambda: self._done >= target or self._closed, timeout_s):
                self._stalled = True
                self.logger.warning("Progress events did not go out within %.1f s; steps hand over without"
                                    " waiting for them until Redis answers again.", timeout_s)

    def close(self, *, timeout_s: float = 5.0) -> None:
        """Send what is queued, then stop the thread (waiting at most ``timeout_s``)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._pid == current_pid():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        sent_at = -math.inf  # time.monotonic() of the last send
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._waiting) or self._closed)
                # Let a burst gather, and under load what comes until the interval since the last
                # send is over: one wake and one round trip for them all, not for each (each wake is
                # one more thread the step threads take turns with). A flush cuts it short.
                pause_s = max(GATHER_S, sent_at + self._interval_s - time.monotonic())
                self._changed.wait_for(lambda: self._hurry or self._closed, pause_s)
                self._hurry = False
                batch, self._waiting = self._waiting, []
            if not batch:
                return  # closed, and nothing left
            sent_at = time.monotonic()
            try:
                self._channel.publish_many(batch)
            except redis.RedisError as ex:
                # Advisory: the status and timeline in the store remain the record.
                self.logger.warning("Could not publish %d progress events: %s", len(batch), ex)
            except Exception:  # The thread's boundary: one bad batch must not end progress for the process.
                self.logger.exception("Could not publish %d progress events.", len(batch))
            with self._changed:
                self._done += len(batch)
                self._stalled = False
                self._changed.notify_all()
