"""An exact rate limiter shared through Redis by every worker process and host.

The rules live in Lua (``middleware._limiter_scripts``) so each decision is one atomic step
on one clock, Redis's. This module is the typed Python face of those scripts; it knows
nothing of dramatiq, so the benchmark and the unit tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from middleware import _limiter_scripts

#: After an upstream 429 the limit in force is halved, but never below this share of it.
MIN_SCALE = 1 / 16


@dataclass(frozen=True)
class RateLimit:
    """One limit shared by every worker: calls and tokens per window, and calls at once.

    Args:
        key: names the limit in Redis; actors with the same key share it.
        requests: most calls whose time at the server falls in any window of ``window_ms``.
        window_ms: the window's length.
        tokens: most input tokens in any window (checked on estimates until calls report).
        concurrency: most calls in flight at once.
        tokens_per_call: the token estimate used until finished calls give an average.
        lease_ms: a call in flight this long is taken as finished (its worker died).
    """

    key: str
    requests: int
    window_ms: int = 60_000
    tokens: int | None = None
    concurrency: int | None = None
    tokens_per_call: int = 0
    lease_ms: int = 300_000

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateLimit:
        """Build a limit from a message option (a JSON object with the same fields)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True)
class Decision:
    """The limiter's answer: go now, or wait ``wait_ms`` (then ask again) because of ``reason``."""

    admitted: bool
    wait_ms: float
    #: "ok", or what holds the call back: "paused", "rate", "concurrency" or "tokens".
    reason: str


@dataclass(frozen=True)
class LimiterCounters:
    """Running totals of one limit, across every worker, for the metrics exporter."""

    calls: int = 0
    waits: int = 0
    upstream_limited: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class LimiterState:
    """What a limit is doing right now."""

    in_flight: int
    in_window: int
    #: Unix time in seconds until which an upstream 429 pauses every worker; 0 if never.
    paused_until_s: float
    #: Share of the limit in force (1.0 normally; halved by a 429, then restored).
    scale: float


class SharedLimiter:
    """Admits, releases and pauses calls against ``RateLimit`` s kept in Redis.

    Args:
        client: the Redis every worker shares.
        namespace: prefix of every key, as for the broker.
    """

    def __init__(self, client: redis.Redis, *, namespace: str) -> None:
        self._client = client
        self._namespace = namespace
        self._acquire = client.register_script(_limiter_scripts.ACQUIRE)
        self._release = client.register_script(_limiter_scripts.RELEASE)
        self._pause = client.register_script(_limiter_scripts.PAUSE)

    def keys(self, key: str) -> list[str]:
        """Return the Redis keys of limit ``key``: done, live, tok, line, state, counters."""
        base = f"{self._namespace}:rate-limits:{{{key}}}"
        return [f"{base}:{part}" for part in ("done", "live", "tok", "line", "state", "counters")]

    def acquire(self, limit: RateLimit, *, slot: str, ticket: str) -> Decision:
        """Take a slot for one call now, or get in line and learn how long to wait.

        ``slot`` names this call until ``release``; ``ticket`` (the message id) keeps the
        caller's place in line across waits.
        """
        return self._decide("acquire", limit, slot=slot, ticket=ticket)

    def reserve(self, limit: RateLimit, *, ticket: str) -> Decision:
        """Get in line without taking a slot: when could ``ticket`` go next?"""
        return self._decide("reserve", limit, slot="", ticket=ticket)

    def release(self, limit: RateLimit, *, slot: str, tokens: int | None = None) -> None:
        """Mark the call in ``slot`` finished; ``tokens`` (input tokens) replaces the estimate."""
        self._release(keys=self.keys(limit.key), args=[
            slot, -1 if tokens is None else max(0, tokens), limit.window_ms * 1000, limit.lease_ms * 1000,
        ])

    def pause(self, limit: RateLimit, *, retry_after_ms: float) -> float:
        """Pause every caller of ``limit`` for ``retry_after_ms``; return the pause's end (Unix s)."""
        until_us = self._pause(keys=self.keys(limit.key), args=[
            max(0, int(retry_after_ms * 1000)), limit.window_ms * 1000, limit.lease_ms * 1000, MIN_SCALE,
        ])
        return int(until_us) / 1e6

    def paused_ms(self, limit: RateLimit) -> float:
        """Return how long the shared pause of ``limit`` still holds callers back (ms; 0 if none)."""
        state = self.keys(limit.key)[4]
        with self._client.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.hget(state, "pause_until")
            (seconds, micros), pause_until = pipe.execute()
        return max(0.0, (int(pause_until or 0) - (int(seconds) * 1_000_000 + int(micros))) / 1000)

    def counters(self, key: str) -> LimiterCounters:
        """Return the running totals of limit ``key``."""
        raw = self._client.hgetall(self.keys(key)[5])
        values = {_text(name): int(value) for name, value in raw.items()}
        return LimiterCounters(**{name: values.get(name, 0) for name in LimiterCounters.__dataclass_fields__})

    def state(self, limit: RateLimit) -> LimiterState:
        """Return the calls in flight and in the current window, the pause and the scale."""
        done, live, _, _, state, _ = self.keys(limit.key)
        seconds, micros = self._client.time()
        now_us = seconds * 1_000_000 + micros
        with self._client.pipeline(transaction=True) as pipe:
            pipe.zcard(live)
            pipe.zcount(done, f"({now_us - limit.window_ms * 1000}", "+inf")
            pipe.hmget(state, "pause_until", "scale")
            in_flight, in_done, (pause_until, scale) = pipe.execute()
        return LimiterState(in_flight=in_flight, in_window=in_flight + in_done,
                            paused_until_s=int(pause_until or 0) / 1e6, scale=float(scale or 1))

    def reset(self, key: str) -> None:
        """Forget everything about limit ``key``, counters included."""
        self._client.delete(*self.keys(key))

    def _decide(self, mode: str, limit: RateLimit, *, slot: str, ticket: str) -> Decision:
        wait_us, reason = self._acquire(keys=self.keys(limit.key), args=[
            mode, slot, ticket, limit.requests, limit.window_ms * 1000, limit.concurrency or 0,
            limit.tokens or 0, limit.tokens_per_call, limit.lease_ms * 1000,
        ])
        text = _text(reason)
        return Decision(admitted=text == "ok", wait_ms=int(wait_us) / 1000, reason=text)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
