"""Batch intake and reads at scale, each as a ratio to a bare baseline measured in the same run.

Usage: .venv/bin/python bench/intake_bench.py [--batch 1000] [--batches 10] [--sizes 1000,100000]
                                              [--postgres URL] [--skip-reads] [--skip-intake] [--json PATH]

Intake: the API in-process (Falcon's test client, no HTTP), on a private Redis and a scratch
SQLite store, no worker consuming. ``POST /run/lf_queue_batch`` with ``--batch`` new ids
(each a file under the media root, as seed 000 finds them), then ``--batches`` of them in a
row (10,000 ids by default), then the same ids again (every one already queued). The
baseline is a bare SQLAlchemy insert of the same number of item rows in one transaction
into a fresh database, plus one pipelined Redis ``RPUSH`` of as many message-sized payloads.

Reads: ``GET /items`` (a page), ``GET /items?status=`` (a page), ``GET /queue/status``,
``GET /jobs`` and ``autolog status``'s query (a page and the counts) with each store holding
the smallest and the largest of ``--sizes`` items (a timeline event per item and a job every
tenth item); each read's time at the largest size is printed as a ratio to the smallest.
Both on SQLite, and on PostgreSQL with ``--postgres``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._rows import Row, print_rows, save_rows  # noqa: E402  (after the path is set)

KEY = "bench-key-0123456789"


def timed(action: Callable[[], Any]) -> float:
    """Return the seconds one run of ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bare_insert(url: str, count: int) -> float:
    """Seconds for one transaction inserting ``count`` item rows, the intake's floor."""
    from sqlalchemy import insert

    from autolog.store import Store
    from autolog.store.models import Item

    store = Store.open(url)
    now = datetime.now(UTC)
    rows = [{"id": f"BARE{index:06d}", "source": f"/m/BARE{index:06d}.mov", "status": "0 - Pending File Info",
             "force_resume": False, "dead_lettered": False, "cancelled": False, "purged": False, "version": 0,
             "created_at": now, "updated_at": now} for index in range(count)]
    try:
        with store.engine.begin() as connection:
            started = time.perf_counter()
            connection.execute(insert(Item), rows)
        return time.perf_counter() - started
    finally:
        store.close()


def bare_push(client: Any, count: int) -> float:
    """Seconds for one pipelined ``RPUSH`` of ``count`` message-sized payloads."""
    payload = b"x" * 400
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for _ in range(count):
            pipe.rpush("bench:bare", payload)
        pipe.execute()
    elapsed = time.perf_counter() - started
    client.delete("bench:bare")
    return elapsed


def intake(args: argparse.Namespace, scratch: Path, settings: Any) -> list[Row]:
    from falcon.testing import TestClient

    from actors import broker
    from autolog.store import Store
    from web.app import create_app

    media = settings.resolved_media_roots[0]
    total = args.batch * args.batches
    for index in range(total):
        (media / f"LF{index:06d}.mov").write_bytes(b"")
    store = Store.open(settings.sqlalchemy_url)
    app = create_app(settings, store=store)
    client = TestClient(app, headers={"X-API-Key": KEY})
    try:
        floor = bare_insert(f"sqlite:///{scratch / 'bare.db'}", args.batch) + bare_push(broker.client, args.batch)
        floor_all = bare_insert(f"sqlite:///{scratch / 'bare-all.db'}", total) + bare_push(broker.client, total)

        def batch(start: int) -> None:
            ids = [f"LF{index:06d}" for index in range(start, start + args.batch)]
            response = client.simulate_post("/run/lf_queue_batch", json={"footage_ids": ids})
            assert response.status_code == 202, response.text

        first = timed(lambda: batch(0))
        rest = timed(lambda: [batch(start) for start in range(args.batch, total, args.batch)])
        again = timed(lambda: batch(0))
        queued = client.simulate_get("/queue/status").json["total_queued"]
        assert queued == total, f"{queued} queued, expected {total}"
        bare = "bare insert + pipelined push"
        return [
            Row("intake_batch", f"batch intake, {args.batch:,} new ids, one request", f"{first:.3f} s",
                f"{bare}: {floor:.3f} s", first / floor, f"{first / floor:.1f}×", first),
            Row("intake_all", f"batch intake, {total:,} new ids, {args.batches} requests", f"{first + rest:.3f} s",
                f"{bare}: {floor_all:.3f} s", (first + rest) / floor_all, f"{(first + rest) / floor_all:.1f}×",
                first + rest),
            Row("intake_again", f"batch intake, {args.batch:,} ids already queued", f"{again:.3f} s",
                f"{bare}: {floor:.3f} s", again / floor, f"{again / floor:.1f}×", again),
        ]
    finally:
        app.close()


def seed(url: str, count: int) -> None:
    """Store ``count`` items spread over the statuses, a created event each and a job every tenth."""
    from sqlalchemy import insert, text

    from autolog.statuses import Status
    from autolog.store import Store
    from autolog.store.models import Item, TimelineEvent

    statuses = list(Status)
    store = Store.open(url)
    now = datetime.now(UTC)
    try:
        with store.engine.begin() as connection:
            for start in range(0, count, 10_000):
                chunk = range(start, min(count, start + 10_000))
                connection.execute(insert(Item), [
                    {"id": f"R{index:07d}", "source": f"/m/R{index:07d}.mov",
                     "status": statuses[index % len(statuses)].value, "force_resume": False,
                     "dead_lettered": False, "cancelled": False, "purged": False, "version": 0,
                     "created_at": now, "updated_at": now} for index in chunk])
                # One shape for every row: an executemany takes its columns from the first.
                events = [{"item_id": f"R{index:07d}", "event": "created", "step": None, "at": now,
                           "message_id": None} for index in chunk]
                events += [{"item_id": f"R{index:07d}", "event": kind, "step": "file_info", "at": now,
                            "message_id": f"m{index:07d}"}
                           for index in chunk if index % 10 == 0 for kind in ("queued", "started", "succeeded")]
                connection.execute(insert(TimelineEvent), events)
        # As the sweep does every few seconds: fold the status count changes the load wrote.
        store.items.fold_status_counts()
        # As autovacuum (PostgreSQL) would after a bulk load: the planner needs the tables' statistics.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    finally:
        store.close()


def read_clients(settings: Any, url: str, stack: contextlib.ExitStack) -> dict[str, Callable[[], None]]:
    """Return each read against the store at ``url``, ready to time; ``stack`` closes the app after."""
    from falcon.testing import TestClient

    from autolog.statuses import Status
    from autolog.store import Store
    from web.app import create_app

    store = Store.open(url)
    app = create_app(settings, store=store)
    stack.callback(app.close)
    client = TestClient(app, headers={"X-API-Key": KEY})

    def cli_status() -> None:
        store.items.list(limit=100)
        store.items.count_by_status()

    def get(path: str, **params: Any) -> Callable[[], None]:
        def run() -> None:
            response = client.simulate_get(path, params=params)
            assert response.status_code == 200, response.text
        return run

    return {
        "GET /items": get("/items", limit=100),
        "GET /items?status=": get("/items", status=Status.AVID_DESCRIPTION.value, limit=100),
        "GET /queue/status": get("/queue/status"),
        "GET /jobs": get("/jobs", limit=50),
        "GET /jobs?status=finished": get("/jobs", status="finished", limit=50),
        "autolog status": cli_status,
    }


def reads(args: argparse.Namespace, settings: Any, label: str,
          url_for: Callable[[int, contextlib.ExitStack], str]) -> list[Row]:
    """Time each read at the smallest and the largest size, alternating the two (a drift of the
    machine's speed then falls on both), and return the ratios: the median of 25 runs each."""
    sizes = [int(size) for size in args.sizes.split(",")]
    small_size, large_size = sizes[0], sizes[-1]
    with contextlib.ExitStack() as stack:
        urls = {size: url_for(size, stack) for size in (small_size, large_size)}  # each a fresh store
        for size, url in urls.items():
            seed(url, size)
        small_reads = read_clients(settings, urls[small_size], stack)
        large_reads = read_clients(settings, urls[large_size], stack)
        small: dict[str, float] = {}
        large: dict[str, float] = {}
        for name in small_reads:
            times: dict[int, list[float]] = {small_size: [], large_size: []}
            for _ in range(25):
                for size, read in ((small_size, small_reads[name]), (large_size, large_reads[name])):
                    times[size].append(timed(read))
            small[name], large[name] = statistics.median(times[small_size]), statistics.median(times[large_size])
    return [Row(f"reads_{label}_{'_'.join(re.findall('[a-z]+', name.lower()))}",
                f"{name}, {label}, {large_size:,} items", f"{large[name] * 1000:.1f} ms",
                f"the same at {small_size:,} items: {small[name] * 1000:.1f} ms", large[name] / small[name],
                f"{large[name] / small[name]:.2f}×", large[name] * 1000) for name in small]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a scratch database per size is made on it")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument("--json", type=Path, help="also save the rows here (for bench/orchestration_table.py)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="autolog-intake-bench-"))
    (scratch / "media").mkdir()
    from autolog.local_redis import LocalRedis

    server = LocalRedis(scratch / "redis", persist=False)
    # Entry point: configure before ``actors`` is imported (it builds the broker from env).
    os.environ.update({"REDIS_URL": server.start(), "AUTOLOG_VAR_DIR": str(scratch / "var"),
                       "AUTOLOG_MEDIA_ROOTS": str(scratch / "media"), "AUTOLOG_NAMESPACE": "autolog-intake-bench",
                       "AUTOLOG_API_KEYS": KEY, "AUTOLOG_LOG_LEVEL": "WARNING"})
    os.environ.pop("DATABASE_URL", None)
    try:
        from actors import settings

        rows: list[Row] = []
        if not args.skip_intake:
            rows += intake(args, scratch, settings)
        if not args.skip_reads:
            rows += reads(args, settings, "sqlite", lambda size, _: f"sqlite:///{scratch / f'reads-{size}.db'}")
            if args.postgres:
                rows += reads(args, settings, "postgresql",
                              lambda size, stack: postgres_database(args.postgres, size, stack))
        print_rows(rows)
        save_rows(rows, args.json)
    finally:
        server.stop()


def postgres_database(server_url: str, size: int, stack: contextlib.ExitStack) -> str:
    """Make a fresh scratch database on ``server_url`` for ``size`` items; return its URL. ``stack`` drops it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from autolog.settings import normalise_database_url

    server_url = normalise_database_url(server_url)
    name = f"autolog_reads_bench_{size}_{os.getpid()}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    stack.callback(drop)
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
