"""Our shared rate limiter beside dramatiq's ``WindowRateLimiter``, one run.

Usage: .venv/bin/python bench/rate_limit_bench.py [--messages M] [--limit N] [--window-s W]
       [--threads T] [--budget-s B]

Both limiters guard the same stand-in upstream call (it records its time and takes
``--call-ms``) in real dramatiq workers on a real Redis (``REDIS_URL``, else a private
redis-server). Two worker processes are simulated by two ``Worker`` s on two brokers.

- **autolog**: ``middleware.RateLimits`` with ``RateLimit(requests=N, window_ms=W)``.
- **dramatiq**: ``with WindowRateLimiter(limit=N, window=W).acquire():`` inside the actor,
  with dramatiq's default ``Retries`` (20 retries, 15 s minimum backoff), as its cookbook shows.

For each it prints the calls made, the most calls seen in any sliding window of W seconds
(the limit is N), the achieved rate against the allowed one, and the retries spent on
waiting. The achieved rate is calls / (span of call times + one window): a limiter that
keeps every window full scores 1.00. A run stops when all M calls are made or at B seconds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import RateLimitExceeded, WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from autolog.local_redis import LocalRedis
from middleware import RateLimit, RateLimits


class Upstream:
    """The guarded call: records when each call arrives and takes ``call_s``."""

    def __init__(self, call_s: float) -> None:
        self.call_s = call_s
        self.arrivals: list[float] = []
        self.limited = 0
        self._lock = threading.Lock()

    def call(self) -> None:
        with self._lock:
            self.arrivals.append(time.time())
        time.sleep(self.call_s)

    def count_limited(self) -> None:
        with self._lock:
            self.limited += 1


@dataclass(frozen=True)
class Figures:
    """What one limiter achieved."""

    name: str
    calls: int
    seconds: float
    most_in_window: int
    achieved_over_allowed: float
    retries_spent: int
    finished: bool


def most_in_window(times: list[float], window_s: float) -> int:
    """Return the most calls in any half-open window ``[t, t + window_s)``."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def run(name: str, brokers: list[RedisBroker], send: Callable[[int], object], upstream: Upstream,
        args: argparse.Namespace) -> Figures:
    """Start one worker per broker, send the messages, wait for every call or the budget."""
    workers = [dramatiq.Worker(broker, worker_threads=args.threads) for broker in brokers]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    for number in range(args.messages):
        send(number)
    while len(upstream.arrivals) < args.messages and time.monotonic() - started < args.budget_s:
        time.sleep(0.05)
    seconds = time.monotonic() - started
    for worker in workers:
        worker.stop(timeout=5_000)
    arrivals = list(upstream.arrivals)
    span = max(arrivals) - min(arrivals) if arrivals else 0.0
    allowed = args.limit / args.window_s
    return Figures(
        name=name, calls=len(arrivals), seconds=seconds, most_in_window=most_in_window(arrivals, args.window_s),
        achieved_over_allowed=len(arrivals) / (span + args.window_s) / allowed if arrivals else 0.0,
        retries_spent=upstream.limited, finished=len(arrivals) >= args.messages,
    )


def bench_autolog(url: str, namespace: str, args: argparse.Namespace) -> Figures:
    """Two brokers sharing ``RateLimits`` state in Redis, one limited actor."""
    upstream = Upstream(args.call_ms / 1000)
    limit = RateLimit(key="bench", requests=args.limit, window_ms=int(args.window_s * 1000))
    brokers = []
    for _ in range(2):
        broker = RedisBroker(url=url, namespace=namespace)
        broker.add_middleware(RateLimits(client=broker.client, namespace=namespace))
        actor = dramatiq.actor(broker=broker, actor_name="bench.call", queue_name="bench", rate_limit=limit)
        actor(lambda number: upstream.call())
        brokers.append(broker)
    return run("autolog RateLimits", brokers, lambda number: brokers[0].get_actor("bench.call").send(number),
               upstream, args)


def bench_dramatiq(url: str, namespace: str, args: argparse.Namespace) -> Figures:
    """Two brokers with dramatiq's default middleware; the actor takes a WindowRateLimiter slot."""
    upstream = Upstream(args.call_ms / 1000)
    brokers = []
    for _ in range(2):
        broker = RedisBroker(url=url, namespace=namespace)
        limiter = WindowRateLimiter(RedisBackend(client=broker.client), "bench", limit=args.limit,
                                    window=int(args.window_s))

        def call(number: int, limiter: WindowRateLimiter = limiter) -> None:
            try:
                with limiter.acquire():
                    upstream.call()
            except RateLimitExceeded:
                upstream.count_limited()
                raise

        dramatiq.actor(broker=broker, actor_name="bench.call", queue_name="bench")(call)
        brokers.append(broker)
    return run("dramatiq WindowRateLimiter", brokers,
               lambda number: brokers[0].get_actor("bench.call").send(number), upstream, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--limit", type=int, default=10, help="calls allowed per window")
    parser.add_argument("--window-s", type=int, default=2, help="window, whole seconds (dramatiq's unit)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (two workers)")
    parser.add_argument("--call-ms", type=int, default=20, help="how long each upstream call takes")
    parser.add_argument("--budget-s", type=float, default=60.0, help="stop a run after this long")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="autolog-bench-") as scratch:
        local = None
        url = os.environ.get("REDIS_URL")
        if not url:
            local = LocalRedis(Path(scratch) / "redis", persist=False)
            url = local.start()
        try:
            results = []
            for bench in (bench_autolog, bench_dramatiq):
                namespace = f"autolog-bench-{uuid.uuid4().hex[:8]}"
                results.append(bench(url, namespace, args))
                client = redis.Redis.from_url(url)
                for key in client.scan_iter(f"{namespace}*"):
                    client.delete(key)
                client.close()
        finally:
            if local is not None:
                local.stop()

    print(f"{args.messages} messages, limit {args.limit} per {args.window_s} s window, "
          f"2 workers x {args.threads} threads, {args.call_ms} ms calls, budget {args.budget_s:.0f} s")
    print(f"{'limiter':28} {'calls':>5} {'secs':>6} {'most/window':>11} {'achieved/allowed':>16} "
          f"{'retries spent':>13}  finished")
    for figures in results:
        print(f"{figures.name:28} {figures.calls:>5} {figures.seconds:>6.1f} "
              f"{figures.most_in_window:>5} / {args.limit:<3} {figures.achieved_over_allowed:>16.2f} "
              f"{figures.retries_spent:>13}  {'yes' if figures.finished else 'no'}")


if __name__ == "__main__":
    main()
