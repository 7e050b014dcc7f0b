"""Instructions a step delivery costs in the middleware chain, counted by callgrind: a figure that holds still.

Usage: .venv/bin/python bench/chain_instructions.py [--deliveries N] [--without NAME[,NAME...]]...

The drain rows of ``bench/orchestration_bench.py`` move by ±10 % between two runs of the same
code on a shared machine, so a change worth 3 % cannot be seen there. Here each variant runs
under valgrind's callgrind (Debian's ``valgrind``), which counts the instructions this process
executes, whatever the machine's load: deliveries of a no-op step-2 message go through the
broker's hooks in the main thread (``before_process_message``, the actor, ``after_process_message``,
with a booted worker's middleware: the progress publisher's thread, the metrics files), on a
private Redis and a SQLite store. Each variant runs twice, with ``N`` and ``N // 5`` deliveries,
and the row is the difference over the difference: the start-up's instructions cancel out.

Rows: dramatiq's default middleware on a plain ``RedisBroker`` (the baseline, as the drain rows'),
autolog's whole chain, and autolog's chain without each ``--without`` group of middleware
(default: ``StatusWrites``, ``Progress``, ``Metrics``), whose difference from the whole chain is
that middleware's share (a group removed with ``StatusWrites`` loses what it feeds: the progress
"succeeded" event, the transition metrics). The Redis server and the kernel are not counted:
what a delivery costs there is the drain rows' to show. About 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._rows import Row, print_rows  # noqa: E402  (after the path is set)

#: The middleware groups left out by default, one variant each.
DEFAULT_WITHOUT = ("StatusWrites", "Progress", "Metrics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--without", action="append", help="middleware class names to leave out, comma-separated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        deliver(args.child, args.deliveries, args.items or args.deliveries)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/chain_instructions.py needs valgrind (Debian: apt-get install valgrind)")
    variants = ["plain", "autolog", *(f"autolog-{group}" for group in (args.without or DEFAULT_WITHOUT))]
    runs = [(variant, count) for variant in variants for count in (args.deliveries // 5, args.deliveries)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(lambda run: counted(*run, items=args.deliveries), runs), strict=True))
    span = args.deliveries - args.deliveries // 5
    per = {variant: (totals[variant, args.deliveries] - totals[variant, args.deliveries // 5]) / span
           for variant in variants}
    plain, whole = per["plain"], per["autolog"]
    rows = [Row("chain_autolog", "instructions a delivery, autolog's chain", f"{whole / 1e3:,.0f} k",
                f"dramatiq default middleware: {plain / 1e3:,.0f} k", whole / plain, f"{whole / plain:.2f}×", whole)]
    for variant in variants[2:]:
        group = variant.removeprefix("autolog-")
        share = whole - per[variant]
        rows.append(Row(f"chain_share_{group}", f"share of {group}", f"{share / 1e3:,.0f} k",
                        f"autolog's chain: {whole / 1e3:,.0f} k", share / whole, f"{share / whole:.0%}", share))
    print_rows(rows)


def counted(variant: str, deliveries: int, *, items: int) -> int:
    """Run ``deliveries`` of ``variant`` under callgrind, after making ``items``; return the instructions it counted.

    Both runs of a variant make as many items and messages: only the deliveries differ.
    """
    with tempfile.TemporaryDirectory(prefix="autolog-chain-") as scratch:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out", sys.executable, __file__,
             "--child", variant, "--deliveries", str(deliveries), "--items", str(items)],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        sys.exit(f"{variant} ({deliveries} deliveries) failed under callgrind:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def deliver(variant: str, deliveries: int, items: int) -> None:
    """Make ``items`` items at step 2 and their messages; deliver the first ``deliveries`` through the chain."""
    scratch = Path(tempfile.mkdtemp(prefix="autolog-chain-"))
    from autolog.local_redis import LocalRedis

    server = LocalRedis(scratch / "redis", persist=False)
    url = server.start()
    (scratch / "media").mkdir()
    # Entry point: configure before ``actors`` is imported (it builds the broker from env).
    os.environ.update({"REDIS_URL": url, "AUTOLOG_VAR_DIR": str(scratch / "var"), "AUTOLOG_NAMESPACE": "chain-bench",
                       "AUTOLOG_LOG_LEVEL": "ERROR", "AUTOLOG_MEDIA_ROOTS": str(scratch / "media")})
    os.environ.pop("DATABASE_URL", None)
    try:
        run(variant, deliveries, items, scratch)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def run(variant: str, deliveries: int, items: int, scratch: Path) -> None:
    import logging

    import dramatiq
    from dramatiq.broker import MessageProxy
    from dramatiq.middleware import SkipMessage

    import pipelines  # noqa: F401  (the route callback, as a worker imports it)
    from actors._waking_broker import FieldProxy
    from autolog.settings import Settings
    from autolog.statuses import Status
    from autolog.store import NewItem
    from bench.orchestration_bench import BenchActors, installed_store

    logging.disable(logging.WARNING)
    source = scratch / "media" / "settled.mp4"
    source.write_bytes(b"\0" * 4096)
    bench = BenchActors(os.environ["REDIS_URL"], source)
    broker, actor = (bench.plain, bench.plain_first) if variant == "plain" else (bench.broker, bench.second)
    left_out = set(variant.removeprefix("autolog-").split(",")) if variant.startswith("autolog-") else set()
    broker.middleware[:] = [middleware for middleware in broker.middleware if type(middleware).__name__ not in left_out]
    with installed_store(Settings.from_env(), f"sqlite:///{scratch / 'chain.db'}") as store:
        ids = [f"chain-{index}" for index in range(items)]
        store.items.create([NewItem(item_id, str(source)) for item_id in ids])
        for item_id in ids:
            store.items.transition(item_id, Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
        # As each broker's consumer hands them: decoded from what the broker stored.
        proxy = MessageProxy if variant == "plain" else FieldProxy
        messages = [proxy(dramatiq.Message.decode(actor.message(item_id).encode())) for item_id in ids]
        broker.declare_queue("chain_idle")
        # A long idle timeout: the consumer's look at its empty queue is not counted once a second.
        worker = dramatiq.Worker(broker, queues={"chain_idle"}, worker_threads=1, worker_timeout=60_000)
        worker.start()  # the middleware's worker boot: metrics files, the progress publisher
        try:
            for message in messages[:deliveries]:
                try:
                    broker.emit_before("process_message", message)
                    result = actor.fn(*message.args)
                    broker.emit_after("process_message", message, result=result)
                except SkipMessage:
                    broker.emit_after("skip_message", message)
        finally:
            worker.stop()


if __name__ == "__main__":
    main()
