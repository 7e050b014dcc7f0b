"""What autolog adds around each message, as ratios against bare dramatiq in the same run.

Usage: .venv/bin/python bench/orchestration_bench.py [--messages N] [--hops H] [--threads T]
       [--clips C] [--postgres URL | --no-postgres] [--cpus X] [--rounds R] [--json PATH]

One private Redis; every row runs a real ``dramatiq.Worker`` in this process:

- **drain**: N no-op messages drained by autolog's broker (the full middleware stack, a
  status-tracked step: start, status write with the outbox, timeline) on SQLite and on
  PostgreSQL, against the same no-op on a ``RedisBroker`` with dramatiq's default middleware,
  alternated in ``--rounds`` rounds (default ``DRAIN_ROUNDS``; the median of the rounds' ratios, and their range);
  twice per store: as step 1 (whose source must have settled before the run starts: a stat
  of the source the message names, as intake's do, a real settled file under the media roots) and as step 2,
  as steps 2 to 6 run (their source check uses what the start write returns). Beside each, the
  CPU a message of the worker (this process), the Redis server and, for PostgreSQL, the
  machine's ``postgres`` processes, against dramatiq's worker and Redis: on 2 cores a drain is
  bound by their sum, not only by the worker's.
- **hop**: one item at a time, the time from a step's return to the next step's start
  (p50, p90), for a fixed link (a pipeline) and a branch point (an ``on_success`` callback
  with a ``follow_up``, as ``autolog.route``), each step on its own queue as autolog's are,
  with the ``dramatiq`` CLI's worker settings; against a raw dramatiq pipeline of two no-ops
  on one busy queue: the broker's own latency.

- **CPU per item**: ``--clips`` tiny clips (2 s, 320x240, no audio) through steps 1-5 with
  the real actors in an in-process worker of ``CPU_THREADS`` threads (SQLite), against the same
  media work called bare on as many threads, the two alternated in ``CPU_ROUNDS`` rounds
  (probe, poster, contact sheet, scene pass, frames, local analysis): CPU of this process
  (every thread) plus its ffmpeg/ffprobe children; and the **orchestration's share**: this
  process's own CPU beyond the bare work's own, against the bare work's whole CPU (the
  children's CPU is shown beside it: see ``cpu_per_item``). Process starts, the Redis
  server's CPU and model loads are not in it.

``--cpus X`` runs the bench and its Redis on X CPUs in all (a cgroup's CPU quota,
``bench/_cpu_quota.py``): the regime of a slower or busier machine, where both drains are bound
by their CPU per message (PostgreSQL's server stays outside the quota).

PostgreSQL: a fresh database is made on ``--postgres`` (default: the machine's server) and
dropped after.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._cpu_quota import cpu_share  # noqa: E402  (after the path is set)
from bench._proc import pids_named, processes_cpu_s  # noqa: E402
from bench._rows import Row, print_rows, save_rows  # noqa: E402

#: The ids of steps' starts and returns, for hop latencies: item id → (returned_at, started_at).
_HOPS: dict[str, list[float]] = {}
_HOP_DONE: dict[str, threading.Event] = {}


def _mark_return(item_id: str) -> None:
    _HOPS.setdefault(item_id, [0.0, 0.0])[0] = time.perf_counter()


def _mark_start(item_id: str) -> None:
    _HOPS.setdefault(item_id, [0.0, 0.0])[1] = time.perf_counter()
    # Only a hop waits (``hops`` made its event before sending): a drain's step must cost what
    # dramatiq's no-op costs, not an ``Event`` made and set a message.
    waiting = _HOP_DONE.get(item_id)
    if waiting is not None:
        waiting.set()


#: CPU seconds of a drain, per message: this process (the worker), the Redis server, and the local
#: PostgreSQL server's processes (None when none runs on this machine).
DrainCpu = tuple[float, float, float | None]


def drain(broker: Any, queues: set[str], threads: int, send: Callable[[], int]) -> tuple[float, DrainCpu]:
    """Send messages with ``send`` (untimed), then time a fresh worker draining ``queues``.

    Returns:
        msg/s, and the CPU a message each process spent meanwhile (``DrainCpu``, in ms).
    """
    import dramatiq

    count = send()
    worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads)
    before = servers_cpu_s(broker.client)
    started = time.perf_counter()
    worker.start()
    for queue in queues:
        broker.join(queue, timeout=600_000)
    worker.join()
    elapsed = time.perf_counter() - started
    after = servers_cpu_s(broker.client)
    worker.stop()
    (own, redis_s, postgres_s), (own_then, redis_then, postgres_then) = after, before
    postgres = None if postgres_s is None or postgres_then is None else 1000 * (postgres_s - postgres_then) / count
    return count / elapsed, (1000 * (own - own_then) / count, 1000 * (redis_s - redis_then) / count, postgres)


def servers_cpu_s(client: Any) -> tuple[float, float, float | None]:
    """Return the CPU seconds used so far by this process, the Redis server, and this machine's PostgreSQL processes.

    PostgreSQL's are the processes named ``postgres`` (its backends, WAL writer, checkpointer):
    None where none runs here (a remote server's CPU cannot be read).
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    info = client.info("cpu")
    postgres = pids_named("postgres")
    return (own.ru_utime + own.ru_stime, info["used_cpu_user"] + info["used_cpu_sys"],
            processes_cpu_s(postgres) if postgres else None)


def hops(broker: Any, queues: set[str], threads: int, count: int, send: Callable[[str], None]) -> list[float]:
    """Send ``count`` two-step chains one at a time; return each hop (return → next start) in ms.

    The worker has the ``dramatiq`` CLI's settings (its 1 s idle timeout), as autolog's pools do.
    """
    import dramatiq

    worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads)
    worker.start()
    found: list[float] = []
    try:
        for index in range(count + 3):
            item_id = f"hop-{uuid.uuid4().hex[:10]}"
            _HOP_DONE[item_id] = threading.Event()
            send(item_id)
            if not _HOP_DONE[item_id].wait(30):
                sys.exit(f"hop of {item_id} did not happen within 30 s")
            # Light load: consumers go idle between two items, as between two clips in production.
            time.sleep(0.3)
            if index >= 3:  # the first few warm up connections and caches
                returned, started = _HOPS[item_id]
                found.append((started - returned) * 1000)
    finally:
        worker.stop()
    return found


def percentiles(found: list[float]) -> tuple[float, float]:
    """Return the p50 and p90 of ``found``."""
    return statistics.median(found), statistics.quantiles(found, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--hops", type=int, default=30, help="hops per row (0: skip the hop rows)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("AUTOLOG_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--clips", type=int, default=40, help="tiny clips for the CPU rows (0: skip)")
    parser.add_argument("--cpus", type=float, help="run on this many CPUs in all (a cgroup quota; 0.4: 40 %% of one)")
    parser.add_argument("--rounds", type=int, default=DRAIN_ROUNDS, help="alternated rounds of each drain")
    parser.add_argument("--json", type=Path, help="also save the rows here (for bench/orchestration_table.py)")
    args = parser.parse_args()
    with cpu_share(args.cpus) if args.cpus else contextlib.nullcontext():
        measure(args)


def measure(args: argparse.Namespace) -> None:
    """Run every row of ``args`` on a private Redis, and print them."""
    scratch = Path(tempfile.mkdtemp(prefix="autolog-orch-bench-"))
    with private_redis(scratch, namespace="orch-bench") as url:
        run(args, scratch, url)


@contextlib.contextmanager
def private_redis(scratch: Path, *, namespace: str) -> Iterator[str]:
    """Start a Redis of its own under ``scratch`` and configure autolog for it from the environment; yield its URL.

    The entry point's: ``actors`` reads the environment once, when first imported (after this).
    The media roots are ``scratch/media``, with no settle window (a bench's sources are made
    whole); no ``DATABASE_URL``: the bench installs its own store (``installed_store``).
    """
    from autolog.local_redis import LocalRedis

    server = LocalRedis(scratch / "redis", persist=False)
    url = server.start()
    (scratch / "media").mkdir()
    os.environ.update({"REDIS_URL": url, "AUTOLOG_VAR_DIR": str(scratch / "var"), "AUTOLOG_NAMESPACE": namespace,
                       "AUTOLOG_LOG_LEVEL": "ERROR", "AUTOLOG_MEDIA_ROOTS": str(scratch / "media"),
                       "AUTOLOG_SOURCE_SETTLE_S": "0"})
    os.environ.pop("DATABASE_URL", None)
    try:
        yield url
    finally:
        server.stop()


def run(args: argparse.Namespace, scratch: Path, url: str) -> None:
    import logging

    import pipelines  # noqa: F401  (the route callback, as a worker imports it)
    from autolog.settings import Settings

    logging.disable(logging.WARNING)
    settings = Settings.from_env()
    source = scratch / "media" / "settled.mp4"
    # Settle window 0 (the CPU row's clips are probed as soon as made): the check still reads
    # the item and stats its source, as with any window, and finds it settled.
    source.write_bytes(b"\0" * 4096)
    bench = BenchActors(url, source)
    rows: list[Row] = []
    if args.hops:
        raw_p50, raw_p90 = percentiles(hops(bench.plain, {"plain_hot"}, args.threads, args.hops,
                                            bench.send_raw_pipeline))
    for name, store_url, drop in databases(args, scratch):
        try:
            with installed_store(settings, store_url) as store:
                rows += drain_rows(bench, store, name, args)
                if name != "SQLite" or not args.hops:
                    continue
                linked = hops(bench.broker, {"bench_first", "bench_second"}, args.threads, args.hops,
                              lambda item_id, store=store: bench.send_pipeline(store, item_id))
                branched = hops(bench.broker, {"bench_first", "bench_second", "bench_control"}, args.threads,
                                args.hops, lambda item_id, store=store: bench.send_branch(store, item_id))
                for key, label, found in (("hop_link", "hop p50, pipeline link", linked),
                                          ("hop_branch", "hop p50, branch point", branched)):
                    p50, p90 = percentiles(found)
                    rows.append(Row(key, label, f"{p50:.1f} ms (p90 {p90:.1f})",
                                    f"raw dramatiq hop: {raw_p50:.1f} ms (p90 {raw_p90:.1f})", p50 / raw_p50,
                                    f"{p50 / raw_p50:.2f}×", p50))
        finally:
            drop()
    bench.plain.close()
    if args.clips:
        rows += cpu_per_item(settings, scratch, args.clips)
    print_rows(rows)
    save_rows(rows, args.json)


#: The drains alternate dramatiq's no-op and autolog's in this many rounds, each ratio against its own
#: round's baseline, and the rows give the median: a shared machine's speed moves between two drains a
#: few seconds apart (one drain of the same code read 0.41× and 0.81× of a steady baseline in two runs).
DRAIN_ROUNDS = 3


def drain_rows(bench: BenchActors, store: Any, name: str, args: argparse.Namespace) -> list[Row]:
    """Return the drain rows of ``store`` (named ``name``): step 1 and steps 2-6 against dramatiq's no-op.

    Each of ``args.rounds`` rounds drains ``args.messages`` no-op messages on a plain
    ``RedisBroker`` (the baseline), then as many step-1 and step-2 messages on autolog's broker;
    a row's ratio is the median of its rounds' ratios, its rate the median of its rates.
    """
    steps = (("step1", "step 1", "bench_first", bench.send_steps),
             ("later", "steps 2-6", "bench_second", bench.send_later_steps))
    plain_rates: list[float] = []
    plain_cpu: list[DrainCpu] = []
    rates: dict[str, list[float]] = {key: [] for key, *_ in steps}
    cpu: dict[str, list[DrainCpu]] = {key: [] for key, *_ in steps}
    for index in range(args.rounds):
        rate, used = drain(bench.plain, {"plain_first"}, args.threads, lambda: bench.send_plain(args.messages))
        plain_rates.append(rate)
        plain_cpu.append(used)
        for key, _, queue, send in steps:
            rate, used = drain(bench.broker, {queue}, args.threads,
                               lambda send=send, index=index: send(store, args.messages, f"{name}{index}"))
            rates[key].append(rate)
            cpu[key].append(used)
    baseline = f"dramatiq default middleware: {statistics.median(plain_rates):,.0f} msg/s"
    # On a CPU quota the rows are the slow regime's, kept apart from the machine's own.
    suffix, regime = (f"_cpus{args.cpus:g}", f", on {args.cpus:g} CPU") if args.cpus else ("", "")
    rows = []
    plain_total, plain_text = cpu_text(plain_cpu, postgres=False)
    postgres = name == "PostgreSQL"
    for key, label, *_ in steps:
        ratios = [rate / plain_rate for rate, plain_rate in zip(rates[key], plain_rates, strict=True)]
        ratio, rate = statistics.median(ratios), statistics.median(rates[key])
        rows.append(Row(f"drain_{name.lower()}_{key}{suffix}", f"no-op drain, full stack, {label}, {name}{regime}",
                        f"{rate:,.0f} msg/s", baseline, ratio, f"{ratio:.2f}× ({min(ratios):.2f}-{max(ratios):.2f})",
                        rate))
        total, text = cpu_text(cpu[key], postgres=postgres)
        parts = "worker+Redis" + ("+PostgreSQL" if postgres else "")
        rows.append(Row(f"cpu_drain_{name.lower()}_{key}{suffix}", f"  CPU a message, {parts}", text,
                        f"dramatiq, worker+Redis: {plain_text}", total / plain_total, f"{total / plain_total:.2f}×",
                        total))
    return rows


def cpu_text(rounds: list[DrainCpu], *, postgres: bool) -> tuple[float, str]:
    """Return the median CPU a message of ``rounds`` in all (ms) and as text: total and each process's.

    PostgreSQL's share is counted with ``postgres`` (and when it runs on this machine).
    """
    medians = [statistics.median(values) if None not in values else None for values in zip(*rounds, strict=True)]
    parts = [value for value in medians[:3 if postgres else 2] if value is not None]
    return sum(parts), f"{sum(parts):.2f} ms ({'+'.join(f'{value:.2f}' for value in parts)})"


def cpu_s() -> tuple[float, float]:
    """Return the CPU seconds this process (every thread) and its waited-for children have used: (own, children)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def tiny_clips(root: Path, count: int) -> list[Path]:
    """Make one 2 s, 320x240 clip without audio, copied to ``count`` files."""
    first = root / "tiny_000.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25,trim=duration=2", "-c:v", "libx264", "-preset", "ultrafast",
                    str(first)], check=True)
    paths = [first]
    for index in range(1, count):
        paths.append(root / f"tiny_{index:03d}.mp4")
        shutil.copy(first, paths[-1])
    return paths


def bare_media_work(path: Path, out: Path) -> None:
    """Do steps 1-5's media work for one clip, as the steps do, with no queue or store."""
    from autolog.media import (
        FrameInput,
        LocalAnalyzer,
        detect_scenes,
        extract_frames,
        make_contact_sheet,
        make_poster,
        poster_time_s,
        probe_media,
    )

    probe = probe_media(path)
    make_poster(path, probe, out / "poster.jpg", at_s=poster_time_s(probe))
    make_contact_sheet(path, probe, out / "contact_sheet.jpg")
    scenes = detect_scenes(path, probe)
    images = extract_frames(path, probe, scenes, out / "samples")
    LocalAnalyzer().analyze([FrameInput(index=scene.index, time_s=scene.sample_s, image=image)
                             for scene, image in zip(scenes, images, strict=True)], None)


#: The CPU rows alternate the bare work and the pipeline this many times, a share of the clips each,
#: so a drift of the machine's speed (ffmpeg's CPU per clip moves by ±40 ms between runs) falls on both.
CPU_ROUNDS = 8

#: The CPU row's worker threads, and the threads the bare work runs on: two clips' media work at
#: once costs more CPU than one after the other (ffmpeg's threads share the cores: +20 to +40 ms a
#: clip, measured on 2 cores), and that is the machine's, not autolog's.
CPU_THREADS = 2


def bare_media_work_on_threads(paths: list[Path], out: Path) -> None:
    """Do ``bare_media_work`` for ``paths`` on ``CPU_THREADS`` threads, as the pipeline's worker threads do."""
    with concurrent.futures.ThreadPoolExecutor(CPU_THREADS) as pool:
        for done in [pool.submit(bare_media_work, path, out / path.stem) for path in paths]:
            done.result()


def cpu_per_item(settings: Any, scratch: Path, count: int) -> list[Row]:
    """Return the CPU rows: the pipeline's CPU per clip against the bare media work's, and its orchestration's share.

    - ``cpu_per_item``: all the CPU per clip (this process and its ffmpeg/ffprobe children).
    - ``cpu_orchestration``: what autolog adds, per clip: this process's own CPU beyond the bare
      work's own (its Python: intake, the queue, the store, the middleware, the idle loops; not
      the bench's thread while it waits for the items to finish), as a share
      of the bare media work's whole CPU. The children run the same ffmpeg commands in both;
      their CPU moves by ±40 ms a clip between two runs of the same clips on a shared machine,
      which would drown a 5 % share, so it is shown beside (``cpu_media_children``), not counted.

    In ``CPU_ROUNDS`` rounds, each of a share of the clips: the bare work on ``CPU_THREADS``
    threads with no worker running (an idle worker's threads would count against it), then a
    fresh worker with as many threads runs them through the pipeline (its start and stop not counted).
    """
    import dramatiq

    from actors import broker
    from autolog.statuses import Status
    from autolog.store import NewItem
    from pipelines import actions

    clips = tiny_clips(scratch / "media", count + 2)
    warm, clips = clips[:2], clips[2:]
    bare_media_work_on_threads(warm, scratch / "bare")
    bare = [0.0, 0.0]
    pipeline = [0.0, 0.0]
    with installed_store(settings, f"sqlite:///{scratch / 'cpu.db'}") as store:
        from actors import services

        context = services().current()
        finished = 0

        def run(paths: list[Path]) -> float:
            """Submit ``paths`` (intake counts: it is autolog's) and wait for them; return the wait's own CPU s."""
            nonlocal finished
            ids = [f"cpu-{path.stem}-{uuid.uuid4().hex[:6]}" for path in paths]
            actions.submit(context, [NewItem(item_id, str(path), force_resume=True)
                                     for item_id, path in zip(ids, paths, strict=True)])
            finished += len(ids)
            deadline = time.monotonic() + 600
            # The bench's own waiting, four looks a second: its thread's CPU is taken out below.
            waiting = time.thread_time()
            while store.items.count_by_status().get(Status.AVID_DESCRIPTION.value, 0) < finished:
                if time.monotonic() > deadline:
                    sys.exit("the CPU run's items did not finish")
                time.sleep(0.25)
            return time.thread_time() - waiting

        for index in range(CPU_ROUNDS):
            share = clips[index::CPU_ROUNDS]
            started = cpu_s()
            bare_media_work_on_threads(share, scratch / "bare")
            _add_since(bare, started)
            worker = dramatiq.Worker(broker, queues={"probe", "thumbnails", "assess", "analysis", "frames",
                                                     "control"}, worker_threads=CPU_THREADS)
            worker.start()
            try:
                if index == 0:
                    run(warm)
                started = cpu_s()
                waited_s = run(share)
                _add_since(pipeline, started)
                pipeline[0] -= waited_s
            finally:
                worker.stop()
    bare_own, bare_children = (1000 * seconds / len(clips) for seconds in bare)
    own, children = (1000 * seconds / len(clips) for seconds in pipeline)
    bare_ms, pipeline_ms, orchestration_ms = bare_own + bare_children, own + children, own - bare_own
    extra = pipeline_ms - bare_ms
    return [
        Row("cpu_per_item", f"CPU per item, {count} tiny clips, steps 1-5", f"{pipeline_ms:.0f} ms ({extra:+.0f} ms)",
            f"the same media work bare: {bare_ms:.0f} ms", pipeline_ms / bare_ms, f"{100 * extra / bare_ms:+.1f} %",
            pipeline_ms),
        Row("cpu_media_children", "  of which ffmpeg/ffprobe (the same commands)", f"{children:.0f} ms",
            f"bare: {bare_children:.0f} ms", children / bare_children,
            f"{100 * (children - bare_children) / bare_children:+.1f} %", children),
        Row("cpu_orchestration", "  orchestration CPU per item (own CPU beyond bare's)", f"{orchestration_ms:.1f} ms",
            f"share of the bare media work's {bare_ms:.0f} ms", 1 + orchestration_ms / bare_ms,
            f"{100 * orchestration_ms / bare_ms:+.1f} %", orchestration_ms),
    ]


def _add_since(total: list[float], started: tuple[float, float]) -> None:
    """Add the own and children CPU seconds used since ``started`` (``cpu_s()``) to ``total``."""
    for index, (now, then) in enumerate(zip(cpu_s(), started, strict=True)):
        total[index] += now - then


def databases(args: argparse.Namespace, scratch: Path) -> list[tuple[str, str, Callable[[], None]]]:
    """Return the stores to measure: name, SQLAlchemy URL, and how to drop it after."""
    import psycopg

    found: list[tuple[str, str, Callable[[], None]]] = [("SQLite", f"sqlite:///{scratch / 'bench.db'}", lambda: None)]
    if args.no_postgres:
        return found
    database = f"autolog_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')

    def drop() -> None:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    base = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    found.append(("PostgreSQL", f"{base}/{database}", drop))
    return found


@contextlib.contextmanager
def installed_store(settings: Any, url: str) -> Iterator[Any]:
    """Open a store at ``url`` and install it as the workers' (in this process)."""
    from actors import services
    from autolog.context import Context
    from autolog.store import Store

    store = Store.open(url)
    services().install(Context.build(settings, store=store))
    try:
        yield store
    finally:
        services().uninstall()
        store.close()


class BenchActors:
    """No-op actors on autolog's broker (status-tracked steps) and on a plain dramatiq broker."""

    def __init__(self, url: str, source: Path) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        from actors import broker
        from autolog.statuses import Status
        from middleware import FOLLOW_UP_OPTION

        self.broker = broker
        self.plain = RedisBroker(url=url, namespace="orch-bench-plain")
        #: A settled file under the media roots: the items' source, as step 1's check finds it.
        self.source = str(source)

        def first(item_id: str) -> dict[str, Any]:
            _mark_return(item_id)
            return {"item_id": item_id, "status": Status.FILE_INFO_COMPLETE.value}

        def second(item_id: str) -> dict[str, Any]:
            _mark_start(item_id)
            return {"item_id": item_id, "status": Status.THUMBNAILS_COMPLETE.value}

        self.first = dramatiq.actor(first, actor_name="bench.first", queue_name="bench_first", step="file_info",
                                    pipe_ignore=True, broker=broker)
        self.second = dramatiq.actor(second, actor_name="bench.second", queue_name="bench_second",
                                     step="thumbnails", pipe_ignore=True, broker=broker)

        def follow_up(message_data: dict[str, Any], result: dict[str, Any]) -> list[dramatiq.Message[Any]]:
            return [self.second.message(result["item_id"])]

        def route(message_data: dict[str, Any], result: dict[str, Any]) -> None:
            for message in follow_up(message_data, result):
                broker.enqueue(message)

        dramatiq.actor(route, actor_name="bench.route", queue_name="bench_control", broker=broker,
                       **{FOLLOW_UP_OPTION: follow_up})

        def plain_first(item_id: str) -> None:
            _mark_return(item_id)

        def plain_second(item_id: str) -> None:
            _mark_start(item_id)

        self.plain_first = dramatiq.actor(plain_first, actor_name="plain.first", queue_name="plain_first",
                                          pipe_ignore=True, broker=self.plain)
        # The raw hop: both steps on one queue, whose consumer is busy, not idle: the broker's own latency.
        self.hot_first = dramatiq.actor(plain_first, actor_name="plain.hot_first", queue_name="plain_hot",
                                        pipe_ignore=True, broker=self.plain)
        self.hot_second = dramatiq.actor(plain_second, actor_name="plain.hot_second", queue_name="plain_hot",
                                         broker=self.plain)

    def send_plain(self, count: int) -> int:
        for index in range(count):
            self.plain.enqueue(self.plain_first.message(f"plain-{index}"))
        return count

    def send_raw_pipeline(self, item_id: str) -> None:
        import dramatiq

        dramatiq.pipeline([self.hot_first.message(item_id), self.hot_second.message(item_id)], broker=self.plain).run()

    def send_steps(self, store: Any, count: int, prefix: str) -> int:
        """Create ``count`` items at step 1's status and send each a step-1 message."""
        from autolog.store import NewItem
        from middleware import SOURCE_OPTION

        ids = [f"{prefix}-first-{index}" for index in range(count)]
        for start in range(0, len(ids), 500):
            store.items.create([NewItem(item_id, self.source) for item_id in ids[start:start + 500]])
        for item_id in ids:
            # As intake sends step 1: the message names the item's source (``pipelines.footage``).
            self.broker.enqueue(self.first.message_with_options(args=(item_id,), **{SOURCE_OPTION: self.source}))
        return len(ids)

    def send_later_steps(self, store: Any, count: int, prefix: str) -> int:
        """Create ``count`` items at step 2's status and send each a step-2 message."""
        from autolog.statuses import Status
        from autolog.store import NewItem

        ids = [f"{prefix}-later-{index}" for index in range(count)]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            store.items.create([NewItem(item_id, self.source) for item_id in chunk])
            for item_id in chunk:
                store.items.transition(item_id, Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
        for item_id in ids:
            self.broker.enqueue(self.second.message(item_id))
        return len(ids)

    def send_pipeline(self, store: Any, item_id: str) -> None:
        import dramatiq

        from autolog.store import NewItem

        store.items.create([NewItem(item_id, "/bench")])
        dramatiq.pipeline([self.first.message(item_id), self.second.message(item_id)]).run()

    def send_branch(self, store: Any, item_id: str) -> None:
        from autolog.store import NewItem

        store.items.create([NewItem(item_id, "/bench")])
        self.broker.enqueue(self.first.message_with_options(args=(item_id,), on_success="bench.route"))


if __name__ == "__main__":
    main()
