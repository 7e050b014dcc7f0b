"""What a paused queue costs: CPU seconds per minute of a worker and of Redis while it holds N messages.

Usage: .venv/bin/python bench/pause_bench.py [--before TREE] [--messages 1000] [--window-s 20] [--threads 8]

For this tree (and, with ``--before``, another checkout of autolog, such as the main branch
before pauses held messages), one real ``dramatiq actors --queues probe`` worker process runs
on its own private Redis and SQLite store. CPU time (user + system, from ``/proc``) of the
worker's process tree and of redis-server is read over two windows of the same length:

1. idle: the worker with nothing queued, the baseline of the same run;
2. paused: the ``probe`` queue paused (its flag in ``<ns>:__paused__``, as ``POST
   /queues/probe/pause`` sets it), then N ``autolog.probe`` messages enqueued.

Each row prints CPU seconds per minute and the ratio to the idle baseline.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._proc import descendants, processes_cpu_s  # noqa: E402  (after the path is set)

NAMESPACE = "autolog-pause-bench"


def measure(worker_pids: list[int], redis_pid: int, window_s: float) -> tuple[float, float]:
    """Return CPU seconds per minute of the worker tree and of Redis over ``window_s``."""
    worker_before, redis_before = processes_cpu_s(worker_pids), processes_cpu_s([redis_pid])
    time.sleep(window_s)
    per_minute = 60.0 / window_s
    return ((processes_cpu_s(worker_pids) - worker_before) * per_minute,
            (processes_cpu_s([redis_pid]) - redis_before) * per_minute)


def run_tree(tree: Path, *, messages: int, window_s: float, threads: int) -> dict[str, tuple[float, float]]:
    """Measure one checkout: idle, then paused with ``messages`` held."""
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    from autolog.local_redis import LocalRedis

    scratch = Path(tempfile.mkdtemp(prefix="autolog-pause-bench-"))
    server = LocalRedis(scratch / "redis", persist=False)
    url = server.start()
    redis_pid = int((scratch / "redis" / "redis.pid").read_text())
    env = {**os.environ, "PYTHONPATH": str(tree), "REDIS_URL": url, "AUTOLOG_VAR_DIR": str(scratch / "var"),
           "DATABASE_URL": f"sqlite:///{scratch / 'autolog.db'}", "AUTOLOG_NAMESPACE": NAMESPACE,
           "AUTOLOG_LOG_LEVEL": "WARNING", "AUTOLOG_MEDIA_ROOTS": str(scratch)}
    worker = subprocess.Popen([sys.executable, "-m", "dramatiq", "actors", "--queues", "probe", "--processes", "1",
                               "--threads", str(threads)], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 60
        while not client.zcard(f"{NAMESPACE}:__heartbeats__"):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the worker of {tree} did not start")
            time.sleep(0.2)
        pids = [worker.pid, *descendants(worker.pid)]
        figures = {"idle": measure(pids, redis_pid, window_s)}
        broker = RedisBroker(client=client, namespace=NAMESPACE)
        probe = dramatiq.actor(actor_name="autolog.probe", queue_name="probe", broker=broker)(lambda item_id: None)
        client.sadd(f"{NAMESPACE}:__paused__", "probe")
        for index in range(messages):
            broker.enqueue(probe.message(f"PAUSED{index:05d}"))
        # Let the worker reach its steady state: every message fetched once.
        time.sleep(5)
        figures["paused"] = measure(pids, redis_pid, window_s)
        held = client.llen(f"{NAMESPACE}:probe.HQ")
        waiting = client.llen(f"{NAMESPACE}:probe") + client.hlen(f"{NAMESPACE}:probe.DQ.msgs")
        print(f"# {tree}: {held} messages held, {waiting} ready or delayed", file=sys.stderr)
        return figures
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another autolog checkout to measure first (e.g. main)")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    trees = ([("before", args.before.resolve())] if args.before else []) + [("after", REPO)]
    print(f"{'tree':<8}{'phase':<9}{'worker s/min':>14}{'redis s/min':>13}{'worker x idle':>15}{'redis x idle':>14}")
    for label, tree in trees:
        figures = run_tree(tree, messages=args.messages, window_s=args.window_s, threads=args.threads)
        idle_worker, idle_redis = figures["idle"]
        for phase, (worker_s, redis_s) in figures.items():
            print(f"{label:<8}{phase:<9}{worker_s:>14.2f}{redis_s:>13.2f}"
                  f"{worker_s / max(idle_worker, 0.01):>15.1f}{redis_s / max(idle_redis, 0.01):>14.1f}")


if __name__ == "__main__":
    main()
