"""The store against SQLite and the PostgreSQL on this machine."""

from __future__ import annotations

import re
import threading
from datetime import timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, QueuePool, inspect
from sqlalchemy.exc import IntegrityError, OperationalError

from autolog.errors import InvalidItemId, ItemExists, ItemNotFound
from autolog.statuses import Status
from autolog.store import (
    FrameView,
    NewEvent,
    NewItem,
    PendingMessage,
    RunFence,
    SegmentView,
    Store,
    is_store_outage,
    outage_text,
)
from autolog.store import engine as engine_module
from autolog.store.engine import POSTGRES_STEP_CONNECTIONS, migrate
from autolog.store.models import Base, utcnow
from tests.conftest import POSTGRES_ADMIN_URL, wait_for
from tests.old_schema import store_at_revision


def test_created_item_starts_pending_with_a_created_event(store: Store) -> None:
    store.items.create([NewItem("LF1409", "/media/a.mp4")])

    item = store.items.get("LF1409")

    assert item.status is Status.PENDING_FILE_INFO
    assert [event.event for event in store.timeline.for_item("LF1409")] == ["created"]


def test_batch_with_a_taken_id_creates_nothing(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])

    with pytest.raises(ItemExists):
        store.items.create([NewItem("LF2", "/b"), NewItem("LF1", "/c")])

    assert [item.id for item in store.items.list()] == ["LF1"]


def test_batch_repeating_an_id_is_refused(store: Store) -> None:
    with pytest.raises(ItemExists):
        store.items.create([NewItem("LF2", "/b"), NewItem("LF2", "/c")])


@pytest.mark.parametrize("bad", ["", "has space", "../etc", "x" * 65, "semi;colon", ".", "..", "....", "nl\n"])
def test_malformed_item_id_is_refused(store: Store, bad: str) -> None:
    with pytest.raises(InvalidItemId):
        store.items.create([NewItem(bad, "/a")])


def test_unknown_item_raises_not_found(store: Store) -> None:
    with pytest.raises(ItemNotFound):
        store.items.get("nope")
    with pytest.raises(ItemNotFound):
        store.items.transition("nope", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)


def test_transition_from_the_expected_status_applies_once(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])

    first = store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    second = store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)

    assert (first, second) == (True, False)
    assert store.items.get("LF1").version == 1


def test_racing_transitions_advance_an_item_exactly_once(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    barrier = threading.Barrier(8)
    outcomes: list[bool] = []

    def race() -> None:
        barrier.wait()
        outcomes.append(store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                               event=NewEvent(item_id="LF1", event="succeeded")))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False] * 7 + [True]
    assert [event.event for event in store.timeline.for_item("LF1")].count("succeeded") == 1


def test_transition_clears_the_error_and_dead_letter_mark(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    store.items.update("LF1", error={"type": "ToolFailed"}, dead_lettered=True)

    store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)

    item = store.items.get("LF1")
    assert (item.error, item.dead_lettered) == (None, False)


def test_cancelled_item_refuses_transitions(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    store.items.update("LF1", cancelled=True)

    assert not store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)


def test_cancel_marks_the_item_with_its_event_and_unless_finished_leaves_a_finished_one(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a"), NewItem("LFD", "/d")])
    store.items.update("LFD", status=Status.AVID_DESCRIPTION.value)

    cancelled = store.items.cancel("LF1", event=NewEvent(item_id="LF1", event="cancelled"), unless_finished=True)
    finished = store.items.cancel("LFD", event=NewEvent(item_id="LFD", event="cancelled"), unless_finished=True)

    assert (cancelled.cancelled, cancelled.status) == (True, Status.PENDING_FILE_INFO)
    assert cancelled == store.items.get("LF1")
    assert (finished.cancelled, finished.status) == (False, Status.AVID_DESCRIPTION)
    assert finished == store.items.get("LFD")
    assert [[event.event for event in store.timeline.for_item(item)] for item in ("LF1", "LFD")] == [
        ["created", "cancelled"], ["created"]]
    assert store.items.cancel("LFD", event=NewEvent(item_id="LFD", event="cancelled"), unless_finished=False).cancelled
    with pytest.raises(ItemNotFound):
        store.items.cancel("LF9", event=NewEvent(item_id="LF9", event="cancelled"), unless_finished=True)


def test_list_filters_by_status_and_pages_by_id(store: Store) -> None:
    store.items.create([NewItem(f"LF{n}", "/a") for n in range(5)])
    store.items.transition("LF3", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)

    first = store.items.list(status=Status.PENDING_FILE_INFO, limit=2)
    rest = store.items.list(status=Status.PENDING_FILE_INFO, after_id=first[-1].id, limit=10)

    assert [item.id for item in first + rest] == ["LF0", "LF1", "LF2", "LF4"]
    assert store.items.count_by_status() == {Status.PENDING_FILE_INFO.value: 4, Status.FILE_INFO_COMPLETE.value: 1}


def test_list_keeps_only_failed_or_dead_lettered_items_when_asked(store: Store) -> None:
    store.items.create([NewItem(name, "/a") for name in ("DEAD", "PERM", "RETRYING", "FINE")])
    store.items.update("DEAD", dead_lettered=True, error={"step": "probe", "permanent": False})
    store.items.update("PERM", error={"step": "probe", "permanent": True})
    store.items.update("RETRYING", error={"step": "probe", "permanent": False})

    assert [item.id for item in store.items.list(failed=True)] == ["DEAD", "PERM"]
    assert [item.id for item in store.items.list(dead_lettered=True)] == ["DEAD"]
    assert [item.id for item in store.items.list(failed=True, after_id="DEAD", limit=1)] == ["PERM"]


def test_saving_frames_twice_keeps_one_copy(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    frames = [FrameView(position=n, time_s=n, timecode="00:00:00:00", image_path=f"/f{n}.jpg",
                        description="d", keywords=["k"], analysis={}, transcript=None) for n in range(3)]

    store.results.save_frames("LF1", frames)
    store.results.save_frames("LF1", frames)

    assert store.results.counts("LF1")["frames"] == 3


def test_transcript_is_mapped_onto_frames(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    store.results.save_frames("LF1", [FrameView(position=n, time_s=n, timecode="00:00:00:00", image_path="/f",
                                                description="d", keywords=[], analysis={}, transcript=None)
                                      for n in range(2)])

    store.results.save_transcript("LF1", [SegmentView(position=0, start_s=0.5, end_s=1.0, text="hello")],
                                  {1: "hello"})

    assert [frame.transcript for frame in store.results.frames("LF1")] == [None, "hello"]
    assert [segment.text for segment in store.results.transcript("LF1")] == ["hello"]


def test_migrating_again_changes_nothing(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])

    migrate(store.engine)

    assert store.items.get("LF1").id == "LF1"


def test_guard_reads_status_cancel_mark_and_source(store: Store) -> None:
    store.items.create([NewItem("LF1", "/media/a.mp4")])
    store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                           changes={"source_fingerprint": {"size_bytes": 3}})

    guard = store.items.guard("LF1")

    assert (guard.status, guard.cancelled, guard.source, guard.source_fingerprint) == (
        Status.FILE_INFO_COMPLETE, False, "/media/a.mp4", {"size_bytes": 3})
    with pytest.raises(ItemNotFound):
        store.items.guard("nope")


def test_transition_with_changes_clears_the_error_unless_the_changes_set_it(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    store.items.update("LF1", error={"step": "file_info"})

    store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE, changes={"prompt": "p"})
    store.items.transition("LF1", Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE,
                           changes={"error": {"step": "kept"}})

    item = store.items.get("LF1")
    assert (item.status, item.prompt, item.error, item.version) == (
        Status.THUMBNAILS_COMPLETE, "p", {"step": "kept"}, 2)


def test_postgres_connection_dropped_while_idle_is_replaced_before_use(
    postgres_store: Store, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres_store.items.create([NewItem("LF1", "/a")])
    database = postgres_url.rsplit("/", 1)[-1]
    # The server drops every connection of the store's pool (as a restart does).
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    # Every pooled connection counts as idle long enough to be pinged first.
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)

    assert postgres_store.items.get("LF1").status is Status.PENDING_FILE_INFO


def test_a_run_start_and_a_status_write_store_their_events_and_messages_alike_on_both_stores(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    started = NewEvent(item_id="LF1", event="started", step="file_info", message_id="m0", attempt=1, worker="w:1:t",
                       wait_ms=3, from_status=Status.PENDING_FILE_INFO.value, detail={"run": "token"})
    succeeded = NewEvent(item_id="LF1", event="succeeded", step="file_info", message_id="m0", attempt=1, run_ms=7,
                         from_status=Status.PENDING_FILE_INFO.value, to_status=Status.FILE_INFO_COMPLETE.value,
                         detail={"result": {"status": "x", "nested": {"b": 1, "a": [1, 2]}}})
    queued = NewEvent(item_id="LF1", event="queued", step="thumbnails", message_id="m1", attempt=1)
    message = PendingMessage("m1", "thumbnails", {"actor_name": "a", "options": {"z": 1, "y": None}}, delay_ms=5)

    assert store.items.start_run("LF1", Status.PENDING_FILE_INFO, "token", event=started)
    fenced = store.fenced(RunFence("LF1", "token", Status.PENDING_FILE_INFO))
    assert fenced.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE, event=succeeded,
                                   events=[queued], messages=[message])

    events = [event.to_dict() for event in store.timeline.for_item("LF1")]
    assert [{key: value for key, value in event.items() if key not in ("id", "at")} for event in events] == [
        {"item_id": "LF1", "event": "created", "to_status": Status.PENDING_FILE_INFO.value, "detail": {"source": "/a"}},
        {"item_id": "LF1", "event": "started", "step": "file_info", "message_id": "m0", "attempt": 1,
         "worker": "w:1:t", "wait_ms": 3, "from_status": Status.PENDING_FILE_INFO.value, "detail": {"run": "token"}},
        {"item_id": "LF1", "event": "succeeded", "step": "file_info", "message_id": "m0", "attempt": 1, "run_ms": 7,
         "from_status": Status.PENDING_FILE_INFO.value, "to_status": Status.FILE_INFO_COMPLETE.value,
         "detail": {"result": {"status": "x", "nested": {"b": 1, "a": [1, 2]}}}},
        {"item_id": "LF1", "event": "queued", "step": "thumbnails", "message_id": "m1", "attempt": 1},
    ]
    assert list(events[2]["detail"]["result"]["nested"]) == ["b", "a"]
    assert store.outbox.unsent() == [message]
    item = store.items.get("LF1")
    assert (item.status, item.version, item.error, item.dead_lettered) == (Status.FILE_INFO_COMPLETE, 1, None, False)
    stale = store.fenced(RunFence("LF1", "other", Status.FILE_INFO_COMPLETE))
    assert not stale.items.transition("LF1", Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE)
    with pytest.raises(ItemNotFound):
        stale.items.transition("nope", Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE)


def test_a_run_start_hands_the_guard_and_its_run_the_item_as_a_read_would_on_both_stores(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    store.items.update("LF1", source_fingerprint={"size": 4096, "mtime_ns": 7}, probe={"streams": [{"index": 0}]})
    started = NewEvent(item_id="LF1", event="started", step="file_info", message_id="m0", attempt=1)

    # The start write reads back the columns its checks need, and its run's fenced copy the whole item
    guard = store.items.start_run("LF1", Status.PENDING_FILE_INFO, "token", event=started)
    assert guard is not None
    read = store.items.get("LF1")
    assert (guard.status, guard.cancelled, guard.source, guard.source_fingerprint, guard.created_at) == (
        Status.PENDING_FILE_INFO, False, "/a", {"size": 4096, "mtime_ns": 7}, read.created_at)
    fenced = store.fenced(RunFence("LF1", "token", Status.PENDING_FILE_INFO))
    view = fenced.items.get("LF1")
    assert view == read
    assert fenced.items.get("LF1") is view  # read from the start's row once, then kept

    # A start that did not take the item hands nothing, and leaves no row for a fenced read
    assert store.items.start_run("LF1", Status.FILE_INFO_COMPLETE, "other", event=started) is None
    assert store.fenced(RunFence("LF1", "other", Status.FILE_INFO_COMPLETE)).items.get("LF1") == read


def test_the_step_writes_store_each_column_as_the_orm_stores_it(store: Store) -> None:
    # The per-message statements are driver SQL (autolog.store.step_sql); rows the ORM and Core
    # write (the created event, a transition with changes) must read back the same.
    store.items.create([NewItem("LF1", "/a"), NewItem("LF2", "/b")])
    store.items.update("LF1", error={"step": "file_info"})
    store.items.update("LF2", error={"step": "file_info"})
    started = NewEvent(item_id="LF1", event="started", step="file_info", detail=None)
    assert store.items.start_run("LF1", Status.PENDING_FILE_INFO, "token", event=started)
    assert store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                  event=NewEvent(item_id="LF1", event="succeeded", detail=None))
    assert store.items.transition("LF2", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                  event=NewEvent(item_id="LF2", event="succeeded", detail=None),
                                  changes={"prompt": "p"})

    with store.engine.connect() as connection:
        kinds = connection.exec_driver_sql("SELECT event, CAST(detail AS TEXT) FROM timeline ORDER BY id").all()
        errors = connection.exec_driver_sql("SELECT id, CAST(error AS TEXT) FROM items ORDER BY id").all()
        times = connection.exec_driver_sql("SELECT CAST(at AS TEXT) FROM timeline").scalars().all()
    if store.engine.dialect.name == "sqlite":  # Text there, compared as text by filters and ordering.
        assert {re.sub(r"\d", "9", moment) for moment in times} == {"9999-99-99 99:99:99.999999"}
    details = dict(kinds)
    assert details["started"] == details["succeeded"] == "null"
    # Times read back through the ORM (SQLite keeps them as text, which it must parse).
    assert all(abs((event.at - utcnow()).total_seconds()) < 60 for event in store.timeline.for_item("LF1"))
    assert errors[0][1] == errors[1][1] == "null"
    assert store.items.guard("LF1").source_fingerprint is None
    assert store.items.count_by_status() == {Status.FILE_INFO_COMPLETE.value: 2}


def test_a_step_write_on_a_connection_the_server_dropped_is_an_outage_and_the_next_one_works(
    postgres_store: Store, postgres_url: str,
) -> None:
    postgres_store.items.create([NewItem("LF1", "/a")])
    postgres_store.items.guard("LF1")  # a pooled connection now exists and was used just now (no ping)
    database = postgres_url.rsplit("/", 1)[-1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))

    with pytest.raises(Exception) as raised:
        postgres_store.items.start_run("LF1", Status.PENDING_FILE_INFO, "t",
                                       event=NewEvent(item_id="LF1", event="started"))

    assert is_store_outage(raised.value)
    assert postgres_store.items.start_run("LF1", Status.PENDING_FILE_INFO, "t",
                                          event=NewEvent(item_id="LF1", event="started"))
    assert postgres_store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)


def test_connections_lent_to_the_step_writes_go_back_to_the_pool_in_transaction_mode(postgres_store: Store) -> None:
    postgres_store.items.create([NewItem("LF1", "/a"), NewItem("LF3", "/c")])
    postgres_store.items.guard("LF1")
    assert postgres_store.items.start_run("LF1", Status.PENDING_FILE_INFO, "t", event=NewEvent(item_id="LF1",
                                                                                             event="started"))
    message = PendingMessage("m1", "thumbnails", {"actor_name": "a"})
    assert postgres_store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                           messages=[message])
    with pytest.raises(IntegrityError):  # the same message id twice: refused, on a lent connection
        postgres_store.items.transition("LF3", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                        messages=[message])
    pool = postgres_store.engine.pool
    assert isinstance(pool, QueuePool)
    lent = [postgres_store.engine.raw_connection() for _ in range(pool.checkedin())]
    try:
        assert lent and all(connection.driver_connection.autocommit is False for connection in lent)  # type: ignore[union-attr]
    finally:
        for connection in lent:
            connection.close()
    # A transaction on them is still one: a batch with a taken id creates nothing.
    with pytest.raises(ItemExists):
        postgres_store.items.create([NewItem("LF2", "/b"), NewItem("LF1", "/c")])
    assert [item.id for item in postgres_store.items.list()] == ["LF1", "LF3"]


def test_update_time_filters_compare_instants_whatever_their_zone(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    updated = store.items.get("LF1").updated_at
    plus_one = timezone(timedelta(hours=1))

    before_in_utc = store.items.list(updated_after=updated - timedelta(minutes=1))
    before_elsewhere = store.items.list(updated_after=(updated - timedelta(minutes=1)).astimezone(plus_one))
    after_elsewhere = store.items.list(updated_before=(updated - timedelta(minutes=1)).astimezone(plus_one))

    assert [item.id for item in before_in_utc] == [item.id for item in before_elsewhere] == ["LF1"]
    assert after_elsewhere == []


def test_postgres_step_statements_reuse_one_connection_of_their_own(postgres_store: Store) -> None:
    # Kept apart from the engine's pool (autolog.store.step_sql.AutocommitConnections): no checkout per statement.
    postgres_store.items.create([NewItem("LF1", "/a")])
    backends = set()
    for _ in range(3):
        assert postgres_store.items.guard("LF1").status is Status.PENDING_FILE_INFO
        with postgres_store.items._sql._connections.lend() as connection:  # type: ignore[union-attr]
            backends.add(connection.info.backend_pid)
    assert len(backends) == 1
    assert postgres_store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_postgres_step_statement_on_a_dropped_connection_is_an_outage_and_the_next_one_reconnects(
    postgres_store: Store, postgres_url: str,
) -> None:
    postgres_store.items.create([NewItem("LF1", "/a")])
    postgres_store.items.guard("LF1")
    with postgres_store.items._sql._connections.lend() as connection:  # type: ignore[union-attr]
        dropped = connection.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (dropped,))

    with pytest.raises(OperationalError) as raised:
        postgres_store.items.guard("LF1")
    assert is_store_outage(raised.value)
    # Logged as the driver's error alone: SQLAlchemy's text adds the statement and its parameters
    assert "[SQL:" in str(raised.value) and "[SQL:" not in outage_text(raised.value)

    assert postgres_store.items.guard("LF1").status is Status.PENDING_FILE_INFO
    with postgres_store.items._sql._connections.lend() as connection:  # type: ignore[union-attr]
        assert connection.info.backend_pid != dropped


def test_postgres_step_statements_that_cannot_connect_raise_an_outage(postgres_url: str) -> None:
    store = Store.open(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    store.items.create([NewItem("LF1", "/a")])
    store.close()
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{postgres_url.rsplit("/", 1)[1]}" WITH (FORCE)')

    with pytest.raises(OperationalError) as raised:
        store.items.guard("LF1")
    assert is_store_outage(raised.value)
    # Logged as the driver's error's first line alone, not SQLAlchemy's text with its link
    assert outage_text(raised.value) == f'OperationalError: {str(raised.value.orig).splitlines()[0]}'


def _backends(database: str) -> int:
    """Count the client connections to ``database``, but the test's row-lock holder."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client"
                            " backend' AND application_name <> 'row-lock-holder'", (database,)).fetchone()
        return int(row[0]) if row else 0


def test_postgres_step_statements_open_at_most_their_share_of_connections(
    postgres_store: Store, postgres_url: str,
) -> None:
    # Given the item's row locked by another transaction, so each start write waits on the server
    postgres_store.items.create([NewItem("LF1", "/a")])
    engine_connections = postgres_store.engine.pool.checkedin()  # type: ignore[attr-defined]
    database = postgres_url.rsplit("/", 1)[1]
    holder = psycopg.connect(postgres_url, application_name="row-lock-holder")
    holder.execute("SELECT id FROM items WHERE id = 'LF1' FOR UPDATE")
    # When 24 threads (fewer than one worker process of the default lanes) start a run at once
    threads = [threading.Thread(target=postgres_store.items._sql.start_run,
                                args=("LF1", Status.PENDING_FILE_INFO.value, f"run{index}", [], f"m{index}"))
               for index in range(24)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: _backends(database) >= engine_connections + POSTGRES_STEP_CONNECTIONS, timeout_s=20,
                 what="the start writes to connect")
        # Then the step statements hold at most their share; the others wait for one
        assert max(_backends(database) for _ in range(20)) == engine_connections + POSTGRES_STEP_CONNECTIONS
    finally:
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert postgres_store.items.guard("LF1").status is Status.PENDING_FILE_INFO


def test_a_postgres_step_connection_lent_when_the_store_closes_is_closed_when_given_back(
    postgres_store: Store,
) -> None:
    connections = postgres_store.items._sql._connections
    assert connections is not None
    with connections.lend() as connection:
        postgres_store.items.close()
    assert connection.closed


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migration_0009_leaves_one_status_index_matching_the_model(
    request: pytest.FixtureRequest, tmp_path: Path, database: str,
) -> None:
    # Given a store at 0008, with both status indexes
    with store_at_revision(request, tmp_path, database, "0008") as (url, connection):
        assert {"ix_items_status", "ix_items_status_id"} <= item_indexes(connection)

    # When it opens at the head
    store = Store.open(url)
    try:
        with store.engine.connect() as connection:
            indexes = item_indexes(connection)
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

        # Then (status, id) is the one index on the status, as the model says, and a page of one status still lists
        assert "ix_items_status" not in indexes and "ix_items_status_id" in indexes
        assert [diff for diff in differences if diff[0].endswith("_index") and diff[1].table.name == "items"] == []
        store.items.create([NewItem(f"IX{number}", "/m/x.mov") for number in range(3)])
        assert [item.id for item in store.items.list(status=Status.PENDING_FILE_INFO, limit=2)] == ["IX0", "IX1"]
    finally:
        store.close()


def item_indexes(connection: Connection) -> set[str]:
    return {str(index["name"]) for index in inspect(connection).get_indexes("items")}
