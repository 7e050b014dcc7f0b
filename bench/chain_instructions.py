"""Instructions a step delivery costs in the middleware chain, counted by callgrind: a figure that holds still.

Usage: .venv/bin/python bench/chain_instructions.py [--deliveries N] [--drain] [--step 1|2] [--without NAME[,...]]...

The drain rows of ``bench/orchestration_bench.py`` move by ±10 % between two runs of the same
code on a shared machine, so a change worth 3 % cannot be seen there. Here each variant runs
under valgrind's callgrind (Debian's ``valgrind``), which counts the instructions this process
executes, whatever the machine's load: ``N`` deliveries of a no-op step-2 message (``--step 1``: step 1's,
naming a settled source that ``SourceChecks`` stats, as intake's do) go through the
broker's hooks in the main thread (``before_process_message``, the actor, ``after_process_message``)
of a booted worker (its middleware's threads: the progress publisher, the outbox relay, the
presence heartbeat), on a private Redis and a SQLite store. Only the delivery loop is counted
(``callgrind_control -i on`` and ``off`` around it), every thread of the process during it; the
row is its count over ``N``. What ticks on a clock during the loop (the idle consumer's look at
its empty queue every second, the relay's every 2 s, the heartbeat) is counted too: about 1 % of
autolog's chain.

``--drain``: count a real ``dramatiq.Worker`` (8 threads) draining the ``N`` messages instead, from its
start to the queue's join: the consumer's fetches and acks, the work queue and the thread hand-overs
too, every thread of the process (the Redis server is still not counted). Under callgrind the
threads take turns, so the group commit's batches and the fetches' sizes are not those of a free
run; the count is a figure to compare two versions of the code by, not a drain's real cost.

Rows: dramatiq's default middleware on a plain ``RedisBroker`` (the baseline, as the drain rows'),
autolog's whole chain, and autolog's chain without each ``--without`` group of middleware
(default: ``StatusWrites``, ``Progress``, ``Metrics``), whose difference from the whole chain is
that middleware's share (a group removed with ``StatusWrites`` loses what it feeds: the progress
"succeeded" event, the transition metrics). The consumer, the work queue and the Redis server are
not counted: what a delivery costs there is the drain rows' to show. About 2 minutes on 2 cores.
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._rows import Row, print_rows  # noqa: E402  (after the path is set)

#: The middleware groups left out by default, one variant each.
DEFAULT_WITHOUT = ("StatusWrites", "Progress", "Metrics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--without", action="append", help="middleware class names to leave out, comma-separated")
    parser.add_argument("--drain", action="store_true", help="count a worker's drain, its consumer too")
    parser.add_argument("--step", type=int, choices=(1, 2), default=2,
                        help="deliver step-1 messages (a settled source to stat) or step-2 ones")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        deliver(args.child, args.deliveries, drain=args.drain, step=args.step)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/chain_instructions.py needs valgrind (Debian: apt-get install valgrind)")
    variants = ["plain", "autolog", *(f"autolog-{group}" for group in (args.without or DEFAULT_WITHOUT))]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = pool.map(lambda variant: counted(variant, args.deliveries, drain=args.drain, step=args.step),
                          variants)
        per = {variant: total / args.deliveries for variant, total in zip(variants, totals, strict=True)}
    plain, whole = per["plain"], per["autolog"]
    rows = [Row("chain_autolog", "instructions a delivery, autolog's chain", f"{whole / 1e3:,.0f} k",
                f"dramatiq default middleware: {plain / 1e3:,.0f} k", whole / plain, f"{whole / plain:.2f}×", whole)]
    for variant in variants[2:]:
        group = variant.removeprefix("autolog-")
        share = whole - per[variant]
        rows.append(Row(f"chain_share_{group}", f"share of {group}", f"{share / 1e3:,.0f} k",
                        f"autolog's chain: {whole / 1e3:,.0f} k", share / whole, f"{share / whole:.0%}", share))
    print_rows(rows)


def counted(variant: str, deliveries: int, *, drain: bool, step: int) -> int:
    """Run ``deliveries`` of ``variant`` under callgrind; return the instructions counted in the delivery loop."""
    with tempfile.TemporaryDirectory(prefix="autolog-chain-") as scratch:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={scratch}/out",
             sys.executable, __file__, "--child", variant, "--deliveries", str(deliveries), "--step", str(step),
             *(["--drain"] if drain else [])],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None or not int(found.group(1)):  # 0: the counting was never switched on
        sys.exit(f"{variant} ({deliveries} deliveries) failed under callgrind:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def deliver(variant: str, deliveries: int, *, drain: bool, step: int = 2) -> None:
    """Make ``deliveries`` items at ``step`` (1 or 2) and their messages, then deliver them through ``variant``'s chain.

    With ``drain``, a worker drains them from the broker instead.
    """
    from bench.orchestration_bench import private_redis

    scratch = Path(tempfile.mkdtemp(prefix="autolog-chain-"))
    try:
        with private_redis(scratch, namespace="chain-bench") as url:
            run(variant, deliveries, scratch, url, drain=drain, step=step)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(variant: str, deliveries: int, scratch: Path, url: str, *, drain: bool, step: int) -> None:
    import logging

    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    import pipelines  # noqa: F401  (the route callback, as a worker imports it)
    from actors import broker as autolog_broker
    from autolog.settings import Settings
    from autolog.statuses import Status
    from autolog.store import NewItem
    from bench.orchestration_bench import installed_store
    from middleware import SOURCE_OPTION

    logging.disable(logging.WARNING)
    source = scratch / "media" / "settled.mp4"
    source.write_bytes(b"\0" * 4096)
    ran: list[str] = []
    moved = {"status": (Status.FILE_INFO_COMPLETE if step == 1 else Status.THUMBNAILS_COMPLETE).value}

    def step_fn(item_id: str) -> dict[str, str]:
        ran.append(item_id)
        return moved

    def plain_step(item_id: str) -> None:
        ran.append(item_id)

    # The same no-op on both: what differs between the rows is the chain around it.
    options: dict[str, Any] = {}
    if variant == "plain":
        broker: dramatiq.Broker = RedisBroker(url=url, namespace="chain-plain")
        actor = dramatiq.actor(plain_step, actor_name="chain.plain", queue_name="chain_plain", broker=broker)
    else:
        broker = autolog_broker
        actor = dramatiq.actor(step_fn, actor_name="chain.step", queue_name="chain_step",
                               step="file_info" if step == 1 else "thumbnails", pipe_ignore=True, broker=broker)
        if step == 1:  # As intake sends step 1: the message names the item's source (``pipelines.footage``).
            options[SOURCE_OPTION] = str(source)
    left_out = set(variant.removeprefix("autolog-").split(",")) if variant.startswith("autolog-") else set()
    if unknown := left_out - {type(middleware).__name__ for middleware in broker.middleware}:
        sys.exit(f"--without names no middleware of the broker: {', '.join(sorted(unknown))}")
    broker.middleware[:] = [middleware for middleware in broker.middleware if type(middleware).__name__ not in left_out]
    with installed_store(Settings.from_env(), f"sqlite:///{scratch / 'chain.db'}") as store:
        ids = [f"chain-{index}" for index in range(deliveries)]
        store.items.create([NewItem(item_id, str(source)) for item_id in ids])
        if step == 2:
            for item_id in ids:
                store.items.transition(item_id, Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
        messages = [actor.message_with_options(args=(item_id,), **options) for item_id in ids]
        if drain:
            drained(broker, actor, messages)
        else:
            delivered(broker, actor, messages, variant)
        if len(ran) != deliveries:
            sys.exit(f"{variant}: {len(ran)} of {deliveries} deliveries ran the step")
        if variant != "plain" and "StatusWrites" not in left_out:
            moved_on = store.items.count_by_status().get(moved["status"], 0)
            if moved_on != deliveries:
                sys.exit(f"{variant}: {moved_on} of {deliveries} items moved on")


def delivered(broker: Any, actor: Any, sent: list[Any], variant: str) -> None:
    """Deliver each of the messages ``sent`` through ``broker``'s hooks in this thread, counting only that."""
    import dramatiq
    from dramatiq.broker import MessageProxy
    from dramatiq.middleware import SkipMessage

    from actors._waking_broker import FieldProxy

    # As each broker's consumer hands them: decoded from what the broker stored.
    proxy = MessageProxy if variant == "plain" else FieldProxy
    messages = [proxy(dramatiq.Message.decode(message.encode())) for message in sent]
    broker.declare_queue("chain_idle")
    worker = dramatiq.Worker(broker, queues={"chain_idle"}, worker_threads=1)
    worker.start()  # the middleware's worker boot: metrics files, the progress publisher, the relay
    try:
        counting(True)
        for message in messages:
            try:
                broker.emit_before("process_message", message)
                result = actor.fn(*message.args)
                broker.emit_after("process_message", message, result=result)
            except SkipMessage:
                broker.emit_after("skip_message", message)
        counting(False)
    finally:
        worker.stop()


def drained(broker: Any, actor: Any, sent: list[Any]) -> None:
    """Send the messages ``sent`` (not counted), then count a fresh worker's drain of them."""
    import dramatiq

    for message in sent:
        broker.enqueue(message)
    worker = dramatiq.Worker(broker, queues={actor.queue_name}, worker_threads=8)
    counting(True)
    worker.start()
    broker.join(actor.queue_name, timeout=600_000)
    worker.join()
    counting(False)
    worker.stop()


def counting(on: bool) -> None:
    """Switch callgrind's counting of this process on or off (``callgrind_control -i``)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True,
                   capture_output=True)


if __name__ == "__main__":
    main()
