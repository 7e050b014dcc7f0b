"""API latency and throughput: ``GET /items/{id}`` and ``POST /run/lf_queue`` against real gunicorn.

Usage: .venv/bin/python bench/api_bench.py [--workers W] [--threads T] [--concurrency C] [--requests N]

It starts a private Redis and a scratch SQLite database, serves the API with gunicorn
(W worker processes of T threads, ``gthread``) on 127.0.0.1, stores 200 items, then sends
N requests per endpoint from C client threads of this process (a separate process from the
server, over loopback, keep-alive connections) and prints p50/p99 latency and requests per
second. ``POST /run/lf_queue`` re-queues an existing item each time: a store read, a timeline
write and an enqueue to Redis. No worker consumes the queue. Bounded: at most N requests per
endpoint and ``--max-seconds`` per phase.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autolog.local_redis import LocalRedis, free_port  # noqa: E402
from autolog.settings import Settings  # noqa: E402
from ops.api_server import ApiServer  # noqa: E402

KEY = "bench-key"
ITEMS = 200


def run_phase(port: int, make_request: Callable[[int], tuple[str, str]], *, requests: int, concurrency: int,
              max_seconds: float) -> tuple[list[float], int, float]:
    """Send ``requests`` requests from ``concurrency`` threads; return latencies (ms), errors and wall time."""
    latencies: list[float] = []
    errors = [0]
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            method, path = make_request(index)
            started = time.perf_counter()
            connection.request(method, path, headers={"X-API-Key": KEY, "Content-Length": "0"})
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if response.status >= 400:
                    errors[0] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.perf_counter() - began


def report(name: str, latencies: list[float], errors: int, wall_s: float) -> None:
    """Print one phase's figures."""
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{name:<28} {len(latencies):>6} {len(latencies) / wall_s:>9.0f} {cuts[49]:>8.1f} {cuts[98]:>8.1f} "
          f"{errors:>6}")


def main() -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="autolog-api-bench-"))
    redis_server = LocalRedis(scratch / "redis", persist=False)
    port = free_port()
    media = scratch / "media"
    media.mkdir()
    env = {
        "REDIS_URL": redis_server.start(), "DATABASE_URL": f"sqlite:///{scratch / 'bench.db'}",
        "AUTOLOG_VAR_DIR": str(scratch / "var"), "AUTOLOG_MEDIA_ROOTS": str(media), "AUTOLOG_API_KEYS": KEY,
        "AUTOLOG_API_PORT": str(port), "AUTOLOG_API_WORKERS": str(args.workers),
        "AUTOLOG_API_THREADS": str(args.threads), "AUTOLOG_LOG_LEVEL": "WARNING",
    }
    server = ApiServer(Settings.from_env({**os.environ, **env}), env=env)
    try:
        server.start()
        ids = [f"BENCH{index:04d}" for index in range(ITEMS)]
        for item_id in ids:
            (media / f"{item_id}.mp4").write_bytes(b"bench")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"items": [{"id": item_id, "source": str(media / f"{item_id}.mp4")} for item_id in ids]})
        connection.request("POST", "/items:batch", body=body, headers={"X-API-Key": KEY,
                                                                         "Content-Type": "application/json"})
        assert connection.getresponse().status == 202
        connection.close()

        print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread); client: {args.concurrency} "
              f"threads in a separate process, keep-alive, loopback; {os.cpu_count()} CPUs shared")
        print(f"{'endpoint':<28} {'reqs':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
        for name, make in (
            ("GET /items/{id}", lambda index: ("GET", f"/items/{ids[index % ITEMS]}")),
            ("POST /run/lf_queue", lambda index: ("POST", f"/run/lf_queue?footage_id={ids[index % ITEMS]}")),
        ):
            run_phase(port, make, requests=min(100, args.requests), concurrency=args.concurrency,
                      max_seconds=args.max_seconds)
            report(name, *run_phase(port, make, requests=args.requests, concurrency=args.concurrency,
                                    max_seconds=args.max_seconds))
    finally:
        server.stop(timeout_s=20)
        redis_server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
