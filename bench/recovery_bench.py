"""Recovery time after each fault, with nobody acting: from the fault clearing to the item's next step starting.

Usage: .venv/bin/python bench/recovery_bench.py [--outage S] [--pg-outage S] [--disk-outage S] [--no-postgres]
       [--rows R,R] [--timelines]

It brings a whole stack up as ``autolog up`` does (private Redis on its socket, one-thread pools,
gunicorn, the sweep) under a scratch folder, with the shipped timings (sweep every 5 s, stuck
after 15 s, 10 s heartbeats), and injects one fault per item:

- ``redis_kill_mid_run``: the private Redis is killed (-9) while a step runs, stays down for
  ``--outage`` seconds, and ``Stack.up`` starts it again; cleared when ``up`` returns.
- ``redis_kill_mid_backoff``: the same while the item's step 1 waits in a worker's delay queue
  (its source still settling), the case dramatiq#527 strands; cleared when ``up`` returns.
- ``worker_process_killed``: the worker process running step 3 is killed (-9), as by the OOM
  killer; its group's master stops the group, the supervisor starts it again, and the sweep
  gives the message back once the dead worker's heartbeat expires; cleared at the kill.
- ``killed_after_status_write``: step 1 runs in a worker (``tests/e2e/dying_worker.py``, the
  step 1 pool stopped meanwhile) that kills itself (-9) once its status write has committed,
  just before it sends step 2's message; the outbox relay sends it once the writer's lease
  runs out; cleared at the kill, timed to step 2's start.
- ``artifacts_disk_full``: the artifacts folder is a 64 MiB tmpfs (mounting it needs root),
  filled to the last byte before an item reaches step 2, which waits for space (no retry
  spent, backing off 1, 2, 4 … 10 s); the disk stays full ``--disk-outage`` seconds after the
  step's first wait; cleared when the filler file is deleted, timed to step 2's next start.
- ``worker_frozen``: the worker process running step 3 of a 40 s clip is frozen (SIGSTOP, as a
  VM pause), the sweep gives its message back, to the group's other process, once the frozen
  worker's heartbeat expires, then the frozen one is resumed (its stale run is refused); cleared at the
  freeze (the item does not wait for the resume), timed to step 3's second start.
- ``postgres_stopped``: after the rows above, the stack is brought down and up again on a
  private PostgreSQL cluster (``initdb``/``pg_ctl`` in a scratch folder, a free port), stopped
  for ``--pg-outage`` seconds while step 3 runs, then started; cleared when it answers again,
  timed to the item's next step start.

Each line gives the recovery time, its ratio to the 30 s target, and its ratio to a step-to-step
hop of an item with no fault in the same run (the baseline). ``--rows`` runs only the named rows
(after the baseline), e.g. ``--rows artifacts_disk_full`` to repeat one; a row not recovered
prints its item's timeline.
"""

from __future__ import annotations

import argparse
import errno
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
ROWS = ("redis_kill_mid_run", "redis_kill_mid_backoff", "worker_process_killed", "killed_after_status_write",
        "artifacts_disk_full", "worker_frozen", "postgres_stopped")
#: The artifacts tmpfs: room for every item of the run, filled to the last byte for the disk row.
ARTIFACTS_TMPFS = "64m"


def mount_tmpfs(folder: Path) -> str | None:
    """Mount a tmpfs of ``ARTIFACTS_TMPFS`` on ``folder``; return None, or why it could not be."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ARTIFACTS_TMPFS}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    return None if mounted.returncode == 0 else f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}"


def fill(path: Path) -> None:
    """Write zeros to ``path`` until its disk has no byte free."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 65536)
    except OSError as ex:
        if ex.errno != errno.ENOSPC:
            raise
    finally:
        os.close(descriptor)


def main() -> int:  # noqa: C901 - one scenario after another, each needing the stack's closures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis stays down (default 3)")
    parser.add_argument("--pg-outage", type=float, default=10.0, help="seconds PostgreSQL stays down (default 10)")
    parser.add_argument("--disk-outage", type=float, default=10.0,
                        help="seconds the artifacts disk stays full after a step first waits for it (default 10)")
    parser.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL row")
    parser.add_argument("--timelines", action="store_true",
                        help="print every row's item timeline (a row not recovered always prints it)")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"comma-separated rows to run, in their fixed order (default all: {','.join(ROWS)})")
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    if rows - set(ROWS):
        parser.error(f"unknown rows: {', '.join(sorted(rows - set(ROWS)))}")
    scratch = Path(tempfile.mkdtemp(prefix="autolog-recovery-"))
    media = scratch / "media"
    subprocess.run(["bash", str(REPO / "ops" / "make_test_media.sh"), str(media / "source")], check=True,
                   capture_output=True)
    sys.path.insert(0, str(REPO))
    from autolog.broker_state import messages_in_flight
    from autolog.local_redis import free_port
    from tests.ffmpeg_runs import make_long_clip
    from tests.private_postgres import PostgresCommandFailed, PrivatePostgres, find_postgres_bin

    make_long_clip(media / "source" / "long40.mp4", 40)

    for name in ("REDIS_URL", "AUTOLOG_REDIS_URL", "DATABASE_URL", "AUTOLOG_DATABASE_URL"):
        os.environ.pop(name, None)
    artifacts = scratch / "artifacts"
    no_tmpfs = mount_tmpfs(artifacts)
    base = free_port()
    os.environ.update({
        "AUTOLOG_VAR_DIR": str(scratch / "var"), "AUTOLOG_MEDIA_ROOTS": str(media),
        "AUTOLOG_NAMESPACE": "autolog-recovery", "AUTOLOG_API_PORT": str(base), "AUTOLOG_API_WORKERS": "1",
        "AUTOLOG_API_KEYS": "recovery-bench-key", "AUTOLOG_METRICS_PORT_BASE": str(free_port()),
        # A fresh copy of a clip waits 4 s in a delay queue before step 1, long enough to kill Redis then.
        "AUTOLOG_SOURCE_SETTLE_S": "4", "AUTOLOG_LOG_LEVEL": "WARNING",
        "AUTOLOG_ARTIFACTS_DIR": str(artifacts),
    })
    for step in ("FILE_INFO", "THUMBNAILS", "ASSESS", "ANALYSIS", "FRAMES", "TRANSCRIPTION"):
        os.environ[f"AUTOLOG_POOL_{step}_THREADS"] = "1"
    # Two step 3 processes: the frozen one's message is redelivered to the other.
    os.environ["AUTOLOG_POOL_ASSESS_PROCESSES"] = "2"

    import redis

    from autolog.local_redis import private_redis
    from autolog.settings import Settings
    from autolog.store import NewItem, Store
    from ops.runtime import pipeline_context
    from ops.stack import Stack
    from pipelines import actions

    # Copies made now have settled (step 1 waits for a source's size, mtime and ctime to rest
    # AUTOLOG_SOURCE_SETTLE_S, and a copy's ctime cannot be set back) by the time they are used.
    counter = iter(range(1000))
    settled: dict[str, list[Path]] = {}
    for source, copies in (("cuts_audio.mp4", len(ROWS) + 1), ("long40.mp4", 2)):
        for _ in range(copies):
            path = media / f"clip{next(counter)}.mp4"
            shutil.copy2(media / "source" / source, path)
            settled.setdefault(source, []).append(path)

    settings = Settings.from_env()
    stack = Stack(settings)
    print(f"starting the stack under {scratch} ...", file=sys.stderr)
    status = stack.up()
    if not status.running:
        sys.exit(f"the stack did not start: {status}")
    store = Store.open(settings.sqlalchemy_url)
    client = redis.Redis.from_url(settings.broker_url)
    postgres: PrivatePostgres | None = None

    def clip(fresh: bool = False, source: str = "cuts_audio.mp4") -> Path:
        """A copy of a sample clip that has settled, or (``fresh``) a new one, whose step 1 waits 4 s for it."""
        if not fresh:
            path = settled[source].pop(0)
            time.sleep(max(0.0, path.stat().st_ctime + settings.source_settle_s + 0.2 - time.time()))
            return path
        path = media / f"clip{next(counter)}.mp4"
        shutil.copy2(media / "source" / source, path)
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

    def next_start(item_id: str, after: float, step: str | None = None, *, or_success: bool = False) -> float | None:
        """Seconds from ``after`` to the item's next start (of ``step``), or None if none within ``WAIT_S``.

        ``or_success``: a success of ``step`` after ``after`` counts too (a run that started just
        before the fault cleared and went through, so no new start follows).
        """
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            starts = [at.timestamp() for at in events(item_id, "started", step) if at.timestamp() >= after]
            if or_success:
                starts += [at.timestamp() for at in events(item_id, "succeeded", step) if at.timestamp() >= after]
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

    def print_broker_state(item_id: str) -> None:
        """Print where Redis holds the item's messages: ready list, ack set (with its worker's heartbeat age)."""
        from actors import broker
        beats = {member.decode(): score for member, score in
                 client.zrange(f"{settings.namespace}:__heartbeats__", 0, -1, withscores=True)}
        for message in messages_in_flight(client, settings.namespace, sorted(broker.get_declared_queues())):
            if message.item_id != item_id:
                continue
            redis_id = message.options.get("redis_message_id")
            queue = message.queue
            where = ["ready"] if redis_id in [raw.decode() for raw in client.lrange(
                f"{settings.namespace}:{queue}", 0, -1)] else []
            for key in client.scan_iter(match=f"{settings.namespace}:__acks__.*.{queue}"):
                if client.sismember(key, redis_id):
                    worker = key.decode()[len(f"{settings.namespace}:__acks__."):-len(queue) - 1]
                    age = time.time() - beats[worker] / 1000 if worker in beats else None
                    where.append(f"fetched by {worker} (heartbeat {age:.1f} s ago)" if age is not None
                                 else f"fetched by {worker} (no heartbeat)")
            print(f"    in Redis: {queue} {message.message_id} {', '.join(where) or 'nowhere'} {message.options}",
                  flush=True)

    def step_worker_pid(item_id: str, step: str) -> int:
        worker = next(entry.worker for entry in store.timeline.for_item(item_id)
                      if entry.event == "started" and entry.step == step)
        assert worker is not None
        return int(worker.split(":")[1])

    results: dict[str, float | None] = {}
    skipped: dict[str, str] = {}
    try:
        # Baseline: the hops of an item with no fault (a step's success to the next step's start)
        baseline = submit(clip())
        wait(lambda: events(baseline, "started", "assess"), "the baseline item to reach step 3")
        hops = [started[0].timestamp() - succeeded[0].timestamp() for succeeded, started in (
            (events(baseline, "succeeded", "file_info"), events(baseline, "started", "thumbnails")),
            (events(baseline, "succeeded", "thumbnails"), events(baseline, "started", "assess")))]
        hop_s = sum(hops) / len(hops)
        print(f"baseline: a step-to-step hop with no fault takes {hop_s:.3f} s")
        print(f"{'fault':<26} {'recovery_s':>10} {'vs 30 s target':>15} {'vs baseline hop':>16}", flush=True)

        def record(fault: str, recovery: float | None, item_id: str) -> None:
            """Keep and print one row as soon as it is measured (a later fault may stop the run).

            A row not recovered prints its item's timeline and the broker's messages for it.
            """
            results[fault] = recovery
            if recovery is None:
                print(f"{fault:<26} {'not recovered':>10}", flush=True)
            if recovery is None or args.timelines:
                for entry in store.timeline.for_item(item_id):
                    print(f"    {entry.at:%H:%M:%S.%f} {entry.event:<13} {entry.step or '':<12} "
                          f"{entry.message_id or '':<36} {entry.worker or ''} "
                          f"{entry.error_message or ''} {entry.detail or ''}", flush=True)
            if recovery is None:
                print_broker_state(item_id)
            else:
                print(f"{fault:<26} {recovery:>10.2f} {recovery / TARGET_S:>14.2f}x {recovery / hop_s:>15.1f}x",
                      flush=True)

        if "redis_kill_mid_run" in rows:
            item = submit(clip())
            wait(lambda: events(item, "started", "thumbnails"), "step 2 to start")
            cleared = kill_redis_and_up()
            record("redis_kill_mid_run", next_start(item, cleared), item)

        if "redis_kill_mid_backoff" in rows:
            item = submit(clip(fresh=True))
            # Held in memory by the step 1 pool's delay-queue consumer, its id in that worker's ack set
            wait(lambda: any(client.scard(key) for key in client.scan_iter(
                match=f"{settings.namespace}:__acks__.*.probe.DQ")), "step 1 to wait in a worker's delay queue")
            cleared = kill_redis_and_up()
            record("redis_kill_mid_backoff", next_start(item, cleared, "file_info"), item)

        if "worker_process_killed" in rows:
            item = submit(clip())
            wait(lambda: events(item, "started", "assess"), "step 3 to start")
            os.kill(step_worker_pid(item, "assess"), signal.SIGKILL)
            record("worker_process_killed", next_start(item, time.time(), "assess"), item)

        if "killed_after_status_write" in rows:
            # Step 1 in a worker that dies between its status write and step 2's enqueue, its pool stopped meanwhile
            stack.pools.drain(["file_info"], timeout_s=30)
            with (scratch / "dying_worker.log").open("ab") as log:
                dying = subprocess.Popen([sys.executable, "-m", "tests.e2e.dying_worker", "autolog.make_thumbnails",
                                          "probe"], cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            item = submit(clip())
            try:
                dying.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                os.killpg(dying.pid, signal.SIGKILL)
                sys.exit(f"the dying worker never ran step 1:\n{(scratch / 'dying_worker.log').read_text()[-2000:]}")
            killed_at = time.time()
            if dying.returncode != -signal.SIGKILL:
                sys.exit(f"the dying worker exited with {dying.returncode}:\n"
                         f"{(scratch / 'dying_worker.log').read_text()[-2000:]}")
            record("killed_after_status_write", next_start(item, killed_at, "thumbnails"), item)
            stack.pools.start(["file_info"])

        if "artifacts_disk_full" in rows and no_tmpfs is None:
            fill(artifacts / "filler")
            item = submit(clip())
            # Only a wait for space: a copied clip's step 1 first waits for its source to settle (its
            # ctime is new), which is also a "deferred" event.
            def space_wait() -> str | None:
                return next((entry.step for entry in store.timeline.for_item(item) if entry.event == "deferred"
                             and (entry.detail or {}).get("reason") == "disk full"), None)
            wait(space_wait, "a step to wait for space")
            waiting = space_wait()
            time.sleep(args.disk_outage)
            (artifacts / "filler").unlink()
            record("artifacts_disk_full", next_start(item, time.time(), waiting, or_success=True), item)
        elif "artifacts_disk_full" in rows:
            skipped["artifacts_disk_full"] = str(no_tmpfs)

        if "worker_frozen" in rows:
            item = submit(clip(source="long40.mp4"))
            wait(lambda: events(item, "started", "assess"), "step 3 of the 40 s clip to start")
            frozen_pid = step_worker_pid(item, "assess")
            os.kill(frozen_pid, signal.SIGSTOP)
            frozen_at = time.time()
            try:
                record("worker_frozen", next_start(item, frozen_at, "assess"), item)
            finally:
                os.kill(frozen_pid, signal.SIGCONT)
            wait(lambda: events(item, "superseded", "assess"), "the resumed stale run to be refused")

        if "postgres_stopped" in rows:
            bin_dir = find_postgres_bin()
            if args.no_postgres or bin_dir is None:
                skipped["postgres_stopped"] = "--no-postgres" if args.no_postgres else "pg_ctl is not installed"
            else:
                # The same stack, brought down and up again on a private PostgreSQL cluster
                stack.down(timeout_s=30)
                stack.pools.close()
                store.close()
                postgres = PrivatePostgres(bin_dir, free_port())
                try:
                    postgres.init()
                    postgres.start()
                except PostgresCommandFailed as ex:
                    sys.exit(str(ex))
                os.environ["DATABASE_URL"] = postgres.url
                settings = Settings.from_env()
                stack = Stack(settings)
                status = stack.up()
                if not status.running:
                    sys.exit(f"the stack did not start on PostgreSQL: {status}")
                store = Store.open(settings.sqlalchemy_url)
                item = submit(clip(source="long40.mp4"))
                wait(lambda: events(item, "started", "assess"), "step 3 to start on PostgreSQL")
                postgres.stop()
                time.sleep(args.pg_outage)
                postgres.start()
                record("postgres_stopped", next_start(item, time.time()), item)
    finally:
        stack.down(timeout_s=30)
        client.close()
        store.close()
        if postgres is not None:
            postgres.remove()
        if no_tmpfs is None:
            subprocess.run(["umount", "--lazy", str(artifacts)], check=False)
        shutil.rmtree(scratch, ignore_errors=True)

    for fault, why in skipped.items():
        print(f"{fault:<26} skipped: {why}")
    return 0 if all(value is not None and value <= TARGET_S for value in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
