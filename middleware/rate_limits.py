"""Rate limits: an exact limit per actor, shared through Redis by every worker.

Before a limited message runs, the middleware takes a slot from ``SharedLimiter``. When
none is free it never sleeps out a long wait and never fails the message: a wait of up to
``max_park_ms`` is slept in the worker thread (the slot is imminent and nothing else on this
limit could use the thread), and a longer one re-enqueues the message, with the same id and
the same ``retries``, to wake ``max_park_ms`` before its turn, then raises ``SkipMessage``.
A skip is acknowledged, not failed, so ``Retries`` never counts it and ``StatusWrites``
(added after this middleware, so its ``before`` hook has not run yet) records no start and
no failure, only the message queued again.

An upstream 429 (``UpstreamRateLimited``) raised by the work the actor runs through
:meth:`RateLimits.run` is handled the same way: the pause the server asked for is shared in
Redis, so every worker holds off, the limit in force is halved and then restored, and the
message is re-enqueued for after the pause, its retry budget intact. The attempt that got
the 429 keeps its "started" event and records no failure. (Letting the exception leave the
actor would not do: ``Retries`` counts every exception, ``dramatiq.Retry`` included.)

A call admitted just before another worker's 429 is held back as well: :meth:`RateLimits.run`
installs a check (``autolog.upstream_gate``) that the client runs right before each request,
and a pause in force then re-enqueues the message for after it, the same way.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn, ParamSpec, TypeVar

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from autolog.errors import UpstreamRateLimited
from autolog.upstream_gate import gated
from middleware._limiter import Decision, LimiterCounters, LimiterState, RateLimit, SharedLimiter

#: Message option set on a message re-enqueued to wait for its limit: how many times it
#: waited, why ("paused", "rate", "concurrency", "tokens") and how long until its turn.
WAIT_OPTION = "rate_limit_wait"

P = ParamSpec("P")
R = TypeVar("R")


def wait_again(broker: dramatiq.Broker, message: MessageProxy, wait: dict[str, Any], *, delay_ms: int | None,
               reason: str) -> NoReturn:
    """Put ``message`` back to run after ``delay_ms`` with its ``wait`` marker, then skip this delivery.

    Same message id, same ``retries``: a wait is not an attempt. ``SkipMessage`` is
    acknowledged, not failed, so ``Retries`` never counts it; ``StatusWrites`` records the
    re-enqueue as ``deferred`` from the marker (``WAIT_OPTION``: ``waits``, ``reason``, ``wait_ms``).
    """
    broker.enqueue(message.copy(options={WAIT_OPTION: wait}), delay=delay_ms)
    raise SkipMessage(reason)


#: Key of the result field that reports the input tokens a call used.
TOKENS_RESULT_KEY = "input_tokens"


@dataclass(frozen=True)
class _Held:
    """The slot the message on this thread holds."""

    broker: dramatiq.Broker
    message: MessageProxy
    limit: RateLimit
    slot: str


class RateLimits(dramatiq.Middleware):
    """Holds actors with a ``rate_limit`` option to their limit, across all workers.

    Args:
        client: the Redis every worker shares (the broker's client is fine).
        namespace: prefix of the limiter's keys.
        max_park_ms: longest wait slept in the worker thread rather than re-enqueued. It is
            also how early a re-enqueued message wakes: moved to its queue when due, it may
            still wait there behind other messages, and is then parked until its turn.
        default: the limit of actors that set none; None leaves them unlimited.
    """

    def __init__(self, *, client: redis.Redis, namespace: str, max_park_ms: int = 2_000,
                 default: RateLimit | None = None) -> None:
        self.logger = logging.getLogger(__name__)
        self.limiter = SharedLimiter(client, namespace=namespace)
        self.max_park_ms = max_park_ms
        self.default = default
        self._local = threading.local()

    @property
    def actor_options(self) -> set[str]:
        return {"rate_limit"}

    def limit_for(self, broker: dramatiq.Broker, message: dramatiq.Message[Any] | MessageProxy) -> RateLimit | None:
        """Resolve the message's limit: message option, then actor option, then the default."""
        option = message.options.get("rate_limit")
        if option is not None:
            return option if isinstance(option, RateLimit) else RateLimit.from_dict(option)
        actor_option = broker.get_actor(message.actor_name).options.get("rate_limit")
        return actor_option if isinstance(actor_option, RateLimit) else self.default

    def counters(self, key: str) -> LimiterCounters:
        """Return the shared running totals (calls, waits, 429s, tokens) of limit ``key``."""
        return self.limiter.counters(key)

    def state(self, limit: RateLimit) -> LimiterState:
        """Return what ``limit`` is doing now: calls in flight and in the window, pause, scale."""
        return self.limiter.state(limit)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        limit = self.limit_for(broker, message)
        if limit is None:
            return
        slot = f"{message.message_id}:{uuid.uuid4().hex[:12]}"
        parked_ms = 0.0
        # A parked waiter is promised a slot by estimate; when the call ahead runs long it is
        # told to wait a little more. It keeps its thread for that, up to a hard cap, rather
        # than go back through the delay queue and the end of its queue, and miss its turn.
        while True:
            try:
                decision = self.limiter.acquire(limit, slot=slot, ticket=message.message_id)
            except redis.RedisError:
                # Fail open: the message cannot be re-enqueued without Redis either, and an
                # upstream 429 still pauses the step once Redis is back.
                self.logger.exception("Rate limiter unavailable; running %r unlimited.", message.message_id)
                return
            if decision.admitted:
                # Only a deferral's own enqueue may carry the option, so the timeline can tell
                # a wait from a retry of this message.
                message.options.pop(WAIT_OPTION, None)
                self._local.held = _Held(broker=broker, message=message, limit=limit, slot=slot)
                return
            if decision.wait_ms > self.max_park_ms or parked_ms + decision.wait_ms > 2 * self.max_park_ms:
                self._defer(broker, message, limit, decision)
            time.sleep(decision.wait_ms / 1000)
            parked_ms += decision.wait_ms

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        tokens = result.get(TOKENS_RESULT_KEY) if isinstance(result, dict) else None
        self._release(message, tokens if isinstance(tokens, int) else None)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._release(message, None)

    def run(self, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the limited call in ``work`` and free its slot the moment it returns.

        Freeing here rather than after the message starts the window a little earlier: the
        status write that follows is not part of the call. A result dict's ``input_tokens``
        replaces the token estimate. An ``UpstreamRateLimited`` from ``work`` becomes a
        shared pause and a free retry (see :meth:`pausing_on_upstream_limits`).
        """
        held: _Held | None = getattr(self._local, "held", None)
        with self.pausing_on_upstream_limits(), gated(partial(self._hold_back_if_paused, held)):
            result = work(*args, **kwargs)
        tokens = result.get(TOKENS_RESULT_KEY) if isinstance(result, dict) else None
        if held is not None:
            self._release(held.message, tokens if isinstance(tokens, int) else None)
        return result

    def _hold_back_if_paused(self, held: _Held | None) -> None:
        """Before a request leaves: if a shared pause began since admission, wait it out by re-enqueueing."""
        if held is None:
            return
        try:
            if self.limiter.paused_ms(held.limit) <= 0:
                return
            decision = self.limiter.reserve(held.limit, ticket=held.message.message_id)
        except redis.RedisError:  # Fail open, as at admission; a 429 still pauses the step.
            self.logger.exception("Rate limiter unavailable; %r calls without checking the pause.",
                                  held.message.message_id)
            return
        self._defer(held.broker, held.message, held.limit, decision)

    @contextmanager
    def pausing_on_upstream_limits(self) -> Iterator[None]:
        """Turn an ``UpstreamRateLimited`` raised inside into a shared pause and a free retry.

        Outside a limited message (a direct call, or an actor without a limit) the error
        passes through unchanged, to be retried by ``Retries`` like any transient error.
        """
        try:
            yield
        except UpstreamRateLimited as ex:
            held: _Held | None = getattr(self._local, "held", None)
            if held is None:
                raise
            try:
                until_s = self.limiter.pause(held.limit, retry_after_ms=ex.retry_after_s * 1000)
                decision = self.limiter.reserve(held.limit, ticket=held.message.message_id)
            except redis.RedisError:
                self.logger.exception("Could not share the upstream pause of %r.", held.limit.key)
                raise ex from None
            self.logger.warning("Upstream rate limit on %r: every worker paused until %.3f.",
                                held.limit.key, until_s)
            self._defer(held.broker, held.message, held.limit, decision)

    def _defer(self, broker: dramatiq.Broker, message: MessageProxy, limit: RateLimit, decision: Decision) -> NoReturn:
        """Re-enqueue ``message`` to wake ``max_park_ms`` before its turn, then skip this delivery."""
        delay_ms = int(decision.wait_ms) - self.max_park_ms
        previous = message.options.get(WAIT_OPTION) or {}
        wait = {"waits": int(previous.get("waits", 0)) + 1, "reason": decision.reason,
                "wait_ms": int(decision.wait_ms)}
        self.logger.debug("Message %r waits %d ms for %r (%s).", message.message_id, decision.wait_ms,
                          limit.key, decision.reason)
        wait_again(broker, message, wait, delay_ms=delay_ms if delay_ms > 0 else None,
                   reason=f"rate limit {limit.key!r}: {decision.reason}, next turn in {decision.wait_ms:.0f} ms")

    def _release(self, message: MessageProxy, tokens: int | None) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.message.message_id != message.message_id:
            return
        self._local.held = None
        try:
            self.limiter.release(held.limit, slot=held.slot, tokens=tokens)
        except redis.RedisError:  # Logged: the slot's lease runs out and frees it.
            self.logger.exception("Could not release slot %r of %r.", held.slot, held.limit.key)
