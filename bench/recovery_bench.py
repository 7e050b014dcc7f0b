"""Recovery time after each fault, with nobody acting: from the fault clearing to the item's next step starting.

Usage: .venv/bin/python bench/recovery_bench.py [--outage S]

It brings a whole stack up as ``autolog up`` does (private Redis on its socket, one-thread pools,
gunicorn, the sweep) under a scratch folder, with the shipped timings (sweep every 5 s, stuck
after 15 s, 10 s heartbeats), and injects one fault per item:

- ``redis_kill_mid_run``: the private Redis is killed (-9) while a step runs, stays down for
  ``--outage`` seconds, and ``Stack.up`` starts it again; cleared when ``up`` returns.
- ``redis_kill_mid_backoff``: the same while the item's step 1 waits in a worker's delay queue
  (its source still settling), the case dramatiq#527 strands; cleared when ``up`` returns.
- ``worker_process_killed``: the worker process running step 3 is killed (-9), as by the OOM
  killer; its pool's master stops the group, the supervisor starts it again, and the message
  comes back once the dead worker's heartbeat expires; cleared at the kill.

Each line gives the recovery time, its ratio to the 30 s target, and its ratio to a step-to-step
hop of an item with no fault in the same run (the baseline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 30.0
WAIT_S = 180.0


def main() -> int:  # noqa: C901 - one scenario after another, each needing the stack's closures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis stays down (default 3)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="autolog-recovery-"))
    media = scratch / "media"
    subprocess.run(["bash", str(REPO / "ops" / "make_test_media.sh"), str(media / "source")], check=True,
                   capture_output=True)
    sys.path.insert(0, str(REPO))
    from autolog.local_redis import free_port

    for name in ("REDIS_URL", "AUTOLOG_REDIS_URL", "DATABASE_URL", "AUTOLOG_DATABASE_URL"):
        os.environ.pop(name, None)
    base = free_port()
    os.environ.update({
        "AUTOLOG_VAR_DIR": str(scratch / "var"), "AUTOLOG_MEDIA_ROOTS": str(media),
        "AUTOLOG_NAMESPACE": "autolog-recovery", "AUTOLOG_API_PORT": str(base), "AUTOLOG_API_WORKERS": "1",
        "AUTOLOG_API_KEYS": "recovery-bench-key", "AUTOLOG_METRICS_PORT_BASE": str(free_port()),
        # A fresh copy of a clip waits 4 s in a delay queue before step 1, long enough to kill Redis then.
        "AUTOLOG_SOURCE_SETTLE_S": "4", "AUTOLOG_LOG_LEVEL": "WARNING",
    })
    for step in ("FILE_INFO", "THUMBNAILS", "ASSESS", "ANALYSIS", "FRAMES", "TRANSCRIPTION"):
        os.environ[f"AUTOLOG_POOL_{step}_THREADS"] = "1"

    import redis

    from autolog.local_redis import private_redis
    from autolog.settings import Settings
    from autolog.store import NewItem, Store
    from ops.runtime import pipeline_context
    from ops.stack import Stack
    from pipelines import actions

    settings = Settings.from_env()
    stack = Stack(settings)
    print(f"starting the stack under {scratch} ...", file=sys.stderr)
    status = stack.up()
    if not status.running:
        sys.exit(f"the stack did not start: {status}")
    store = Store.open(settings.sqlalchemy_url)
    client = redis.Redis.from_url(settings.broker_url)
    counter = iter(range(1000))

    def clip(fresh: bool = False) -> Path:
        """A new copy of the sample clip (``fresh``: new times, so step 1 waits for it to settle)."""
        path = media / f"clip{next(counter)}.mp4"
        shutil.copy2(media / "source" / "cuts_audio.mp4", path)
        if not fresh:
            os.utime(path, (time.time() - 3600, time.time() - 3600))
        return path

    def submit(path: Path) -> str:
        with pipeline_context(settings) as context:
            actions.submit(context, [NewItem(path.stem, str(path), force_resume=True)])
        return path.stem

    def events(item_id: str, event: str, step: str | None = None) -> list[datetime]:
        return [entry.at for entry in store.timeline.for_item(item_id)
                if entry.event == event and (step is None or entry.step == step)]

    def wait(condition: object, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                sys.exit(f"timed out waiting for {what}")
            time.sleep(0.05)

    def next_start(item_id: str, after: float, step: str | None = None) -> float | None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            starts = [at.timestamp() for at in events(item_id, "started", step) if at.timestamp() >= after]
            if starts:
                return min(starts) - after
            time.sleep(0.05)
        return None

    def kill_redis_and_up() -> float:
        pid = private_redis(settings).pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(args.outage)
        stack.up()
        return time.time()

    results: dict[str, float | None] = {}
    try:
        # Baseline: the hops of an item with no fault (a step's success to the next step's start)
        baseline = submit(clip())
        wait(lambda: events(baseline, "started", "assess"), "the baseline item to reach step 3")
        hops = [started[0].timestamp() - succeeded[0].timestamp() for succeeded, started in (
            (events(baseline, "succeeded", "file_info"), events(baseline, "started", "thumbnails")),
            (events(baseline, "succeeded", "thumbnails"), events(baseline, "started", "assess")))]
        hop_s = sum(hops) / len(hops)

        item = submit(clip())
        wait(lambda: events(item, "started", "thumbnails"), "step 2 to start")
        cleared = kill_redis_and_up()
        results["redis_kill_mid_run"] = next_start(item, cleared)

        item = submit(clip(fresh=True))
        # Held in memory by the step 1 pool's delay-queue consumer, its id in that worker's ack set
        wait(lambda: any(client.scard(key) for key in client.scan_iter(
            match=f"{settings.namespace}:__acks__.*.probe.DQ")), "step 1 to wait in a worker's delay queue")
        cleared = kill_redis_and_up()
        results["redis_kill_mid_backoff"] = next_start(item, cleared, "file_info")

        item = submit(clip())
        wait(lambda: events(item, "started", "assess"), "step 3 to start")
        worker = next(entry.worker for entry in store.timeline.for_item(item)
                      if entry.event == "started" and entry.step == "assess")
        assert worker is not None
        os.kill(int(worker.split(":")[1]), signal.SIGKILL)
        results["worker_process_killed"] = next_start(item, time.time(), "assess")
    finally:
        stack.down(timeout_s=30)
        client.close()
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"baseline: a step-to-step hop with no fault takes {hop_s:.3f} s")
    print(f"{'fault':<26} {'recovery_s':>10} {'vs 30 s target':>15} {'vs baseline hop':>16}")
    for fault, recovery in results.items():
        if recovery is None:
            print(f"{fault:<26} {'not recovered':>10}")
        else:
            print(f"{fault:<26} {recovery:>10.2f} {recovery / TARGET_S:>14.2f}x {recovery / hop_s:>15.1f}x")
    return 0 if all(value is not None and value <= TARGET_S for value in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
