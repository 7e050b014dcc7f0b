"""The shared limiter's Lua rules, against the private Redis and its clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
import redis

from middleware import Decision, RateLimit, SharedLimiter

T = TypeVar("T")


@pytest.fixture
def limiter(redis_client: redis.Redis) -> SharedLimiter:
    """A limiter on the flushed private Redis."""
    return SharedLimiter(redis_client, namespace="limiter-test")


def redis_now_s(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds + micros / 1e6)


def poll(condition: Callable[[], T | None], *, timeout_s: float = 3.0, what: str = "condition") -> T:
    """Return the first truthy result of ``condition``, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout_s} s")
        time.sleep(0.005)


def admitted(limiter: SharedLimiter, limit: RateLimit, slot: str) -> Callable[[], Decision | None]:
    def attempt() -> Decision | None:
        decision = limiter.acquire(limit, slot=slot, ticket=slot)
        return decision if decision.admitted else None
    return attempt


def test_calls_up_to_the_limit_go_at_once_and_the_next_waits_a_window(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=3, window_ms=1_000)

    first = [limiter.acquire(limit, slot=f"s{number}", ticket=f"m{number}") for number in range(3)]
    fourth = limiter.acquire(limit, slot="s3", ticket="m3")

    assert [decision.admitted for decision in first] == [True, True, True]
    assert (fourth.admitted, fourth.reason) == (False, "rate")
    # The wait is a window minus the time since the first call: Redis round trips only shorten it.
    assert 800 <= fourth.wait_ms <= 1_000


def test_a_call_holds_its_slot_while_in_flight_and_for_a_window_after_it_finishes(
    limiter: SharedLimiter, redis_client: redis.Redis
) -> None:
    limit = RateLimit(key="k", requests=1, window_ms=300)
    assert limiter.acquire(limit, slot="a", ticket="a").admitted
    held_until = time.monotonic() + 0.5
    while time.monotonic() < held_until:
        assert not limiter.acquire(limit, slot="b", ticket="b").admitted

    # Read before the release: read after it, the clock was a round trip late and the wait read short (0.2986 s).
    finished = redis_now_s(redis_client)
    limiter.release(limit, slot="a")
    poll(admitted(limiter, limit, "b"), what="slot b")

    waited = redis_now_s(redis_client) - finished
    assert waited >= 0.3


def test_waiters_are_promised_one_slot_each_in_the_order_they_free(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=2, window_ms=1_000)
    for slot in ("a", "b"):
        limiter.acquire(limit, slot=slot, ticket=slot)
        limiter.release(limit, slot=slot)

    waits = [limiter.acquire(limit, slot=f"w{number}", ticket=f"w{number}").wait_ms for number in range(5)]

    assert [round(wait / 1_000) for wait in waits] == [1, 1, 2, 2, 3]


def test_a_due_waiter_goes_before_a_newcomer(limiter: SharedLimiter, redis_client: redis.Redis) -> None:
    limit = RateLimit(key="k", requests=1, window_ms=200)
    limiter.acquire(limit, slot="a", ticket="a")
    limiter.release(limit, slot="a")
    wait_s = limiter.acquire(limit, slot="w", ticket="w").wait_ms / 1000
    promised = redis_now_s(redis_client) + wait_s
    poll(lambda: redis_now_s(redis_client) >= promised, what="the promised time")

    newcomer = limiter.acquire(limit, slot="n", ticket="n")
    waiter = limiter.acquire(limit, slot="w", ticket="w")

    assert (newcomer.admitted, waiter.admitted) == (False, True)


def test_concurrency_caps_calls_in_flight(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=100, window_ms=1_000, concurrency=2)
    limiter.acquire(limit, slot="a", ticket="a")
    limiter.acquire(limit, slot="b", ticket="b")

    blocked = limiter.acquire(limit, slot="c", ticket="c")
    limiter.release(limit, slot="a")
    freed = limiter.acquire(limit, slot="c", ticket="c")

    assert (blocked.admitted, blocked.reason, freed.admitted) == (False, "concurrency", True)


def test_tokens_are_estimated_in_flight_and_counted_exactly_once_reported(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=100, window_ms=1_000, tokens=1_000, tokens_per_call=600)
    limiter.acquire(limit, slot="a", ticket="a")

    blocked = limiter.acquire(limit, slot="b", ticket="b")
    limiter.release(limit, slot="a", tokens=100)
    fits = limiter.acquire(limit, slot="b", ticket="b")

    assert (blocked.admitted, blocked.reason, fits.admitted) == (False, "tokens", True)
    assert limiter.counters("k").tokens == 100


def test_an_upstream_pause_holds_everyone_then_halves_the_limit(
    limiter: SharedLimiter, redis_client: redis.Redis
) -> None:
    limit = RateLimit(key="k", requests=4, window_ms=2_000)

    until_s = limiter.pause(limit, retry_after_ms=300)
    during = limiter.acquire(limit, slot="a", ticket="a")
    limiter.pause(limit, retry_after_ms=100)  # A second 429 inside the pause neither shortens nor halves again.
    poll(admitted(limiter, limit, "a"), what="the end of the pause")
    after = [limiter.acquire(limit, slot=slot, ticket=slot) for slot in ("b", "c")]

    assert (during.admitted, during.reason) == (False, "paused")
    assert 150 <= during.wait_ms <= 300
    assert redis_now_s(redis_client) >= until_s
    assert [decision.admitted for decision in after] == [True, False], "half of 4 per window after a 429"
    assert limiter.state(limit).scale == 0.5
    assert limiter.counters("k").upstream_limited == 2


def test_a_vanished_workers_slot_frees_when_its_lease_runs_out(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=100, window_ms=1_000, concurrency=1, lease_ms=200)
    limiter.acquire(limit, slot="crashed", ticket="crashed")
    started = time.monotonic()

    poll(admitted(limiter, limit, "next"), what="the lease to run out")

    assert time.monotonic() - started >= 0.19


def test_reserving_puts_a_ticket_in_line_without_taking_a_slot(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=1, window_ms=1_000)

    reserved = limiter.reserve(limit, ticket="r")
    state = limiter.state(limit)

    assert (reserved.admitted, state.in_flight, state.in_window) == (False, 0, 0)
    assert limiter.acquire(limit, slot="r", ticket="r").admitted


def test_counters_total_calls_waits_and_tokens(limiter: SharedLimiter) -> None:
    limit = RateLimit(key="k", requests=1, window_ms=1_000)
    limiter.acquire(limit, slot="a", ticket="a")
    limiter.release(limit, slot="a", tokens=42)

    limiter.acquire(limit, slot="b", ticket="b")

    counters = limiter.counters("k")
    assert (counters.calls, counters.waits, counters.upstream_limited, counters.tokens) == (1, 1, 0, 42)
