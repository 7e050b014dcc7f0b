"""Store outages wait, not fail: PostgreSQL stopped, SQLite locked, and every item finishes by itself.

A private PostgreSQL cluster (``initdb``/``pg_ctl`` in a temporary folder, on a free port)
that the test stops and starts; never the machine's shared server. Real ``dramatiq``
worker processes with the tests' fast retries (2 retries, 50–200 ms backoff), which an
outage used to burn in well under a second.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name
from dramatiq.middleware import SkipMessage

from autolog.context import Context
from autolog.errors import StoreUnavailable
from autolog.local_redis import free_port
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.stops import stop_requested
from autolog.store import NewItem, Store, is_store_outage
from middleware import RUN_OPTION, StepStops
from pipelines import actions
from tests.conftest import SampleClips, wait_for
from tests.e2e.conftest import installed
from tests.e2e.workers import WORKERS, Start, first_event
from tests.private_postgres import PrivatePostgres, find_postgres_bin

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL's server programs (pg_ctl, initdb) are not installed")
    server = PrivatePostgres(bin_dir, free_port())
    server.init()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def postgres_context(settings: Settings, private_postgres: PrivatePostgres,
                     redis_client: redis.Redis) -> Iterator[Context]:
    with installed(settings, private_postgres.url.replace("postgresql://", "postgresql+psycopg://")) as context:
        yield context


@dataclass(frozen=True)
class StartedStep:
    """A step-1 message started through a ``StatusWrites`` of its own, on a private PostgreSQL store."""

    store: Store
    services: Any
    status_writes: Any
    item_id: str
    message: MessageProxy


@pytest.fixture
def started_step(private_postgres: PrivatePostgres, settings: Settings,
                 unique_id: Callable[[str], str]) -> Iterator[StartedStep]:
    from actors import broker
    from middleware import Services, StatusWrites
    from pipelines.footage import first_message

    store = Store.open(private_postgres.url.replace("postgresql://", "postgresql+psycopg://"))
    services = Services(settings=settings)
    services.install(Context.build(settings, store=store))
    status_writes = StatusWrites(services=services)
    item_id = unique_id("started")
    store.items.create([NewItem(item_id, f"/media/{item_id}.mp4")])
    first = first_message(item_id, Status.PENDING_FILE_INFO)
    assert first is not None
    message = MessageProxy(first)
    status_writes.before_process_message(broker, message)
    try:
        yield StartedStep(store, services, status_writes, item_id, message)
    finally:
        broker.flush(message.queue_name)
        services.uninstall()
        store.close()


def waited_three_times(log: Path) -> bool:
    """Tell whether a message has been put back a third time to wait for the store (1 s, 2 s, then 4 s)."""
    return log.exists() and "waits 4000 ms for the store without spending a retry" in log.read_text(errors="replace")


def test_postgres_stopped_mid_run_spends_no_retry_and_every_item_finishes_by_itself(
    postgres_context: Context, private_postgres: PrivatePostgres, processes: Start, test_media: SampleClips,
    tmp_path: Path, unique_id: Callable[[str], str],
) -> None:
    # Given workers on a PostgreSQL store running three items
    processes(WORKERS, {**os.environ, "DATABASE_URL": private_postgres.url})
    store = postgres_context.store
    ids = [unique_id(f"pg{index}") for index in range(3)]
    actions.submit(postgres_context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)
                                      for item_id in ids])
    wait_for(lambda: first_event(store.timeline.for_item(ids[0]), "succeeded", "file_info"), timeout_s=60,
             what="step 1 of the first item to finish")

    # When PostgreSQL stops until a message has waited for it three times (over 3 s; the tests'
    # retries, 2 of 50-200 ms, would be spent in well under one), then starts again
    private_postgres.stop()
    wait_for(lambda: waited_three_times(tmp_path / "workers.log"), timeout_s=60,
             what="a message to wait for the store three times")
    private_postgres.start()

    # Then every item finishes by itself, with no retry spent, no failure and no dead letter
    wait_for(lambda: all(store.items.get(item_id).status is Status.AVID_DESCRIPTION for item_id in ids),
             timeout_s=120, what="every item to finish")
    for item_id in ids:
        item = store.items.get(item_id)
        assert (item.error, item.dead_lettered) == (None, False)
        timeline = store.timeline.for_item(item_id)
        assert {event.attempt for event in timeline if event.event == "started"} == {1}
        assert not [event for event in timeline if event.event in {"failed", "retried", "dead_lettered"}]
        assert [event.step for event in timeline if event.event == "succeeded"] == [
            "file_info", "thumbnails", "assess", "analysis", "frames"]


def test_status_write_after_the_work_is_retried_until_the_store_answers(
    started_step: StartedStep, private_postgres: PrivatePostgres, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from actors import broker
    from middleware import OutboxRelay

    # Given a step 1 message whose work is done, on a PostgreSQL store
    store, status_writes, item_id, message = (started_step.store, started_step.status_writes, started_step.item_id,
                                              started_step.message)
    # The relay's after hook sends what the status write committed, as it runs after StatusWrites' in a worker.
    relay = OutboxRelay(services=started_step.services)

    # When the store stops just as the status is written, and starts again later
    private_postgres.stop()
    result = {"item_id": item_id, "status": Status.FILE_INFO_COMPLETE.value}

    def finish_message() -> None:
        status_writes.after_process_message(broker, message, result=result)
        relay.after_process_message(broker, message, result=result)

    writing = threading.Thread(target=finish_message)
    with caplog.at_level(logging.WARNING, logger="middleware.status_writes"):
        writing.start()
        wait_for(lambda: "Store unavailable for a status write" in caplog.text, timeout_s=30,
                 what="the status write to fail for the outage")
        private_postgres.start()
        writing.join(timeout=60)

    # Then the write went through once the store answered, and the next step was sent
    assert not writing.is_alive()
    assert store.items.get(item_id).status is Status.FILE_INFO_COMPLETE
    assert status_writes.failed_writes == 0
    assert redis_client.hlen(f"{broker.namespace}:thumbnails.msgs") == 1
    # And its outbox row goes with the worker's next clear of the rows it sent (here, once it has stopped)
    relay.after_worker_shutdown(broker, None)
    assert store.outbox.count() == 0


def test_sqlite_locked_past_its_busy_timeout_spends_no_retry_and_the_item_finishes_by_itself(
    processes: Start, test_media: SampleClips, tmp_path: Path, settings: Settings, redis_client: redis.Redis,
    unique_id: Callable[[str], str],
) -> None:
    import sqlite3

    from actors import broker, services

    # Given an item stored and queued on a SQLite store
    database = tmp_path / "locked.db"
    store = Store.open(f"sqlite:///{database}")
    broker.flush_all()
    services().install(Context.build(settings, store=store))
    item_id = unique_id("locked")
    try:
        actions.submit(services().current(), [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")),
                                                      force_resume=True)])

        # When another process holds the database's write lock past the workers' busy timeout
        # (2 s here, 30 s by default), until a worker has put the message back to wait for the store
        holder = sqlite3.connect(database, isolation_level=None, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            processes(WORKERS, {**os.environ, "DATABASE_URL": f"sqlite:///{database}",
                                "AUTOLOG_SQLITE_BUSY_TIMEOUT_MS": "2000"})
            wait_for(lambda: "for the store without spending a retry" in (tmp_path / "workers.log").read_text(
                errors="replace"), timeout_s=120, what="a worker to wait for the locked store")
        finally:
            holder.execute("COMMIT")
            holder.close()

        # Then the item finishes by itself, with no retry spent and nothing failed
        wait_for(lambda: store.items.get(item_id).status is Status.AVID_DESCRIPTION, timeout_s=120,
                 what="the item to finish")
        item = store.items.get(item_id)
        assert (item.error, item.dead_lettered) == (None, False)
        timeline = store.timeline.for_item(item_id)
        assert {event.attempt for event in timeline if event.event == "started"} == {1}
        assert not [event for event in timeline if event.event in {"failed", "retried", "dead_lettered"}]
    finally:
        services().uninstall()
        store.close()


def test_a_running_step_rides_out_a_store_outage_and_still_stops_when_cancelled_after(
    postgres_context: Context, private_postgres: PrivatePostgres, unique_id: Callable[[str], str],
) -> None:
    from actors import analyze, broker, services  # after pytest_configure's environment

    # Given a step running for an item (its cancel check installed, read at every ask)
    item_id = unique_id("blip")
    postgres_context.store.items.create([NewItem(item_id, "/m/blip.mp4")])
    message = MessageProxy(analyze.message_with_options(args=(item_id,), **{RUN_OPTION: "run-1"}))
    stops = StepStops(services=services(), every_s=0)
    stops.before_process_message(broker, message)
    try:
        # When the store stops answering while the step's tool runs, its check says "go on"
        # (it raised the driver's error, which killed the tool and lost the step's work: a trial's failover)
        private_postgres.stop()
        assert stop_requested() is False
        # And once the store is back, a cancel still stops the step
        private_postgres.start()

        def cancel() -> bool:
            try:
                actions.cancel(postgres_context, item_id)
            except Exception as ex:  # the pool's connections died with the server: the first use may find one
                if not is_store_outage(ex):
                    raise
                return False
            return True

        wait_for(cancel, what="the cancel to be stored")
        assert wait_for(stop_requested, what="the running step to see its cancel")
    finally:
        stops.after_process_message(broker, message)


def _waiting(redis_client: redis.Redis, namespace: str, proxy: MessageProxy) -> tuple[Message[Any], MessageProxy]:
    """Return ``proxy``'s copy put back to wait, as enqueued (to its delay queue) and as delivered once due."""
    held = f"{namespace}:{dq_name(proxy.queue_name)}.msgs"  # by the broker's own (Redis) message id
    [(redis_id, raw)] = redis_client.hgetall(held).items()
    redis_client.hdel(held, redis_id)
    waiting = Message.decode(raw)
    assert waiting.message_id == proxy.message_id
    due = waiting.copy(queue_name=proxy.queue_name)
    due.options.pop("eta", None)
    return waiting, MessageProxy(due)


def test_a_store_wait_stays_on_the_timeline_though_the_store_was_out_when_it_began(
    started_step: StartedStep, private_postgres: PrivatePostgres, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from actors import broker
    from middleware.status_writes import wait_out

    # Given step 1 started for an item on a PostgreSQL store
    status_writes, started = started_step.status_writes, started_step.message

    # When the store stops under the step, which is put back to wait for it (as Retries does),
    # and its next delivery finds the store still out and waits again
    private_postgres.stop()
    with caplog.at_level(logging.WARNING):
        wait_out(broker, started, StoreUnavailable("the server stopped"))
        enqueued, first_wait = _waiting(redis_client, broker.namespace, started)
        status_writes.after_enqueue(broker, enqueued, 1_000)
        with pytest.raises(SkipMessage):
            status_writes.before_process_message(broker, first_wait)
        enqueued, second_wait = _waiting(redis_client, broker.namespace, first_wait)
        status_writes.after_enqueue(broker, enqueued, 2_000)

    # Then no write was tried while it was out (nor a traceback logged for one)
    assert status_writes.failed_writes == 0
    assert not [record for record in caplog.records if record.exc_info]
    assert "[SQL:" not in caplog.text  # the driver's error, not the start's twenty lines of SQL
    # And once it is back, the delivery that ends the wait records it with its start: one
    # "deferred" for the stretch, stamped when it began, between the attempt it cut short and the next
    private_postgres.start()
    wait_for(lambda: _started(status_writes, second_wait), what="the step to start again")
    timeline = [event for event in started_step.store.timeline.for_item(started_step.item_id)
                if event.step == "file_info"]
    assert [event.event for event in timeline] == ["started", "deferred", "started"]
    deferred = timeline[1]
    assert (deferred.reason, deferred.attempt, deferred.detail["waits"]) == ("store", 1, 2)
    assert timeline[0].at <= deferred.at <= timeline[2].at
    assert deferred.detail["waited_ms"] >= 0


def _started(status_writes: Any, delivery: MessageProxy) -> bool:
    """Start ``delivery`` through ``status_writes``; False while the store still refuses (put back to wait)."""
    from actors import broker

    try:
        status_writes.before_process_message(broker, delivery)
    except SkipMessage:
        return False
    return True
