"""Cost of the observability middleware: throughput with and without it, in one run.

Usage: .venv/bin/python bench/metrics_bench.py [--messages N] [--clips N] [--rounds R] [--threads T]

"With" is the broker as shipped: ``Metrics`` (Prometheus, multiprocess files), ``Progress``
(Redis pub/sub) and ``LifecycleLogs`` (JSON lines at INFO, written to /dev/null). "Without"
is the same broker with those three taken out of its middleware list. Both run in one
in-process worker on one private Redis and one SQLite store, in alternating rounds:

1. no-op messages: N messages of a do-nothing actor, queued while the worker is paused,
   then drained; this is the per-message overhead with nothing to hide it;
2. the footage pipeline: C clips through steps 1-5 (force-resume), the real workload.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def drain(broker: Any, worker: Any, queue: str) -> None:
    broker.join(queue, timeout=600_000)
    worker.join()


def main() -> None:  # noqa: C901 (a benchmark script, read top to bottom)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="autolog-metrics-bench-"))
    media = scratch / "media"
    media.mkdir()
    sys.path.insert(0, str(REPO))
    from autolog.local_redis import LocalRedis

    server = LocalRedis(scratch / "redis", persist=False)
    # Entry point: configure before ``actors`` is imported (it builds the broker from env).
    os.environ.update({"REDIS_URL": server.start(), "AUTOLOG_VAR_DIR": str(scratch / "var"),
                       "AUTOLOG_MEDIA_ROOTS": str(media), "AUTOLOG_NAMESPACE": "autolog-bench",
                       "AUTOLOG_LOG_LEVEL": "INFO", "AUTOLOG_LOG_FORMAT": "json"})
    os.environ.pop("DATABASE_URL", None)
    try:
        import dramatiq

        from actors import broker, services, settings
        from autolog.context import Context
        from autolog.logs import build_log_config, secret_values
        from autolog.progress import ProgressChannel, ProgressEvent
        from autolog.statuses import Status
        from autolog.store import NewItem, Store
        from middleware import LifecycleLogs, Metrics, Progress
        from pipelines import actions

        logging.config.dictConfig(build_log_config(level="INFO", secrets=secret_values(settings)))
        sink = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the run)
        for handler in logging.getLogger().handlers:
            handler.setStream(sink)  # type: ignore[attr-defined]

        @dramatiq.actor(actor_name="bench.noop", queue_name="bench", broker=broker, max_retries=0)
        def noop(index: int) -> None:
            """Do nothing: what remains is the cost of getting a message through."""

        subprocess.run(["bash", str(REPO / "ops" / "make_test_media.sh"), str(media)], check=True,
                       capture_output=True)
        store = Store.open(settings.sqlalchemy_url)
        context = Context.build(settings, store=store)
        services().install(context)
        full = list(broker.middleware)
        observability = [m for m in full if isinstance(m, Metrics | Progress | LifecycleLogs)]

        def use(on: bool) -> None:
            broker.middleware[:] = full if on else [m for m in full if m not in observability]

        worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
        worker.start()

        def noop_round() -> float:
            worker.pause()
            for index in range(args.messages):
                noop.send(index)
            started = time.perf_counter()
            worker.resume()
            drain(broker, worker, "bench")
            return args.messages / (time.perf_counter() - started)

        counter = iter(range(1_000_000))

        def pipeline_round() -> float:
            ids = [f"clip{next(counter):05d}" for _ in range(args.clips)]
            started = time.perf_counter()
            actions.submit(context, [NewItem(item_id, str(media / "cuts_noaudio.mp4"), force_resume=True)
                                     for item_id in ids])
            deadline = time.monotonic() + 600
            while not all(store.items.get(item_id).status is Status.AVID_DESCRIPTION for item_id in ids):
                if time.monotonic() > deadline:
                    sys.exit("the pipeline did not finish")
                time.sleep(0.05)
            return len(ids) * 60 / (time.perf_counter() - started)

        results: dict[str, dict[bool, list[float]]] = {"noop": {True: [], False: []},
                                                       "pipeline": {True: [], False: []}}
        rounds: list[tuple[str, Callable[[], float]]] = [("noop", noop_round), ("pipeline", pipeline_round)]
        for name, run in rounds:
            use(True)
            run()  # warm-up: connections, caches, first-time imports
            for index in range(args.rounds):
                # ABBA order, so neither setting always runs first (Redis and the store grow).
                for on in (True, False) if index % 2 == 0 else (False, True):
                    use(on)
                    results[name][on].append(run())
        # Which of the three costs what: no-op rounds with only one of them in place.
        alone: dict[str, list[float]] = {type(m).__name__: [] for m in observability}
        for _ in range(args.rounds):
            for kept in observability:
                broker.middleware[:] = [m for m in full if m not in observability or m is kept]
                alone[type(kept).__name__].append(noop_round())
        use(True)
        # A real step also publishes three progress events (running, succeeded, next queued).
        channel = ProgressChannel(broker.client, namespace=broker.namespace)
        started = time.perf_counter()
        for index in range(1000):
            channel.publish(ProgressEvent(item_id="bench", stage="assess", state="running", percent=33,
                                          message_id=f"m{index}"))
        publish_us = (time.perf_counter() - started) * 1000
        worker.stop()
        services().uninstall()
        store.close()
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"observability middleware: {', '.join(type(m).__name__ for m in observability)}; "
          f"{args.threads} worker threads, {args.rounds} alternating rounds, {os.cpu_count()} CPUs")
    for name, unit, size in (("noop", "messages/s", f"{args.messages} no-op messages"),
                             ("pipeline", "items/min", f"{args.clips} clips, steps 1-5")):
        with_, without = statistics.median(results[name][True]), statistics.median(results[name][False])
        print(f"{name:9} ({size}): with {with_:8.1f} {unit}, without {without:8.1f} {unit}, "
              f"cost {100 * (1 - with_ / without):5.1f}%  "
              f"[with {', '.join(f'{v:.1f}' for v in results[name][True])}; "
              f"without {', '.join(f'{v:.1f}' for v in results[name][False])}]")
    print(f"one progress publish (store + PUBLISH, one round trip): {publish_us:.0f} µs")
    without = statistics.median(results["noop"][False])
    for name, runs in alone.items():
        only = statistics.median(runs)
        print(f"noop with only {name:13}: {only:8.1f} messages/s, {1e6 * (1 / only - 1 / without):6.0f} µs/message")


if __name__ == "__main__":
    main()
