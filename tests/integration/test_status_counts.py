"""Counts per status from the change rows of migration 0008, on SQLite and PostgreSQL.

The counts must equal a grouped scan of ``items`` after any mix of inserts, status changes,
deletes and folds, including writers and folds running at once.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select, text

from actors import broker
from autolog.context import Context
from autolog.lease import Lease
from autolog.statuses import Status
from autolog.store import NewItem, Store
from autolog.store.models import Item, StatusCountChange
from pipelines.discovery import LEASE_KEY, Sweep
from tests.old_schema import store_at_revision

STEPS = [Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE, Status.CREATING_FRAMES]


def scanned(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return dict(connection.execute(select(Item.status, func.count()).group_by(Item.status)).all())


def change_rows(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(StatusCountChange)) or 0)


def test_counts_follow_inserts_moves_and_deletes_and_a_fold_leaves_one_row_per_status(store: Store) -> None:
    store.items.create([NewItem(f"SC{number}", f"/m/sc{number}.mov") for number in range(6)])
    store.items.transition("SC0", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    store.items.transition("SC1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    store.items.transition("SC1", Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE)
    assert not store.items.transition("SC2", Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE), "refused"
    store.items.delete("SC5")

    expected = {Status.PENDING_FILE_INFO.value: 3, Status.FILE_INFO_COMPLETE.value: 1,
                Status.THUMBNAILS_COMPLETE.value: 1}
    assert store.items.count_by_status() == expected == scanned(store)
    removed = store.items.fold_status_counts()

    assert change_rows(store) == len(expected) and removed > 0
    assert store.items.count_by_status() == expected
    store.items.delete("SC1")
    store.items.fold_status_counts()
    assert store.items.count_by_status() == scanned(store), "a status that empties is left out"
    assert store.items.count_by_status(id_pattern="SC0") == {Status.FILE_INFO_COMPLETE.value: 1}


def test_writers_and_folds_at_once_lose_and_double_no_change(store: Store) -> None:
    store.items.create([NewItem(f"CC{number:03d}", f"/m/cc{number}.mov") for number in range(60)])
    stop = threading.Event()
    failures: list[BaseException] = []

    def write(seed: int) -> None:
        chosen = random.Random(seed)
        try:
            for _ in range(80):
                item_id = f"CC{chosen.randrange(60):03d}"
                status = store.items.get(item_id).status
                if status in STEPS[:-1]:
                    store.items.transition(item_id, status, STEPS[STEPS.index(status) + 1])
        except BaseException as ex:  # noqa: BLE001  (reported by the test thread)
            failures.append(ex)

    def fold() -> None:
        try:
            while not stop.is_set():
                store.items.fold_status_counts()
        except BaseException as ex:  # noqa: BLE001
            failures.append(ex)

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(3)]
    folder = threading.Thread(target=fold)
    folder.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    folder.join()

    assert failures == []
    assert store.items.count_by_status() == scanned(store)
    assert sum(store.items.count_by_status().values()) == 60


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_migration_counts_the_items_stored_before_it(request: pytest.FixtureRequest, tmp_path: Path,
                                                        database: str) -> None:
    with store_at_revision(request, tmp_path, database, "0007") as (url, connection):
        for number, status in enumerate([Status.PENDING_FILE_INFO] * 2 + [Status.AVID_DESCRIPTION]):
            connection.execute(text(
                "INSERT INTO items (id, source, status, force_resume, dead_lettered, cancelled, purged, version,"
                " created_at, updated_at) VALUES (:id, '/m/x.mov', :status, false, false, false, false, 0,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": f"OLD{number}", "status": status.value})

    store = Store.open(url)
    try:
        assert store.items.count_by_status() == {Status.PENDING_FILE_INFO.value: 2, Status.AVID_DESCRIPTION.value: 1}
    finally:
        store.close()


def test_the_sweep_folds_the_counts(context: Context, redis_client: redis.Redis) -> None:
    context.store.items.create([NewItem(f"SF{number}", f"/m/sf{number}.mov", force_resume=True) for number in range(4)])
    context.store.items.transition("SF0", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    before = context.store.items.count_by_status()
    lease = Lease(redis_client, f"{broker.namespace}:{LEASE_KEY}", ttl_ms=60_000, owner="here")

    Sweep(context=context, broker=broker, lease=lease).run_once()

    assert change_rows(context.store) <= len(Status)
    assert context.store.items.count_by_status() == before
