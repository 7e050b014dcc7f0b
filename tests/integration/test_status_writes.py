"""The status middleware when its database write fails: logged, counted, never raised."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq.broker import MessageProxy

from actors import broker, make_frames, probe
from autolog.context import Context
from autolog.errors import StoreUnavailable
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem, Store
from middleware import TRANSITION_OPTION, WAIT_OPTION, Services, StatusWrites
from middleware.outbox_relay import COMMITTED_OPTION
from middleware.status_writes import STORE_OUTAGE_REASON


@pytest.fixture
def unreachable_store(tmp_path: Path) -> Iterator[Store]:
    """A store whose SQLite file lies in a folder that does not exist: every query fails."""
    store = Store.open(f"sqlite:///{tmp_path / 'missing' / 'autolog.db'}", upgrade=False)
    yield store
    store.close()


@pytest.fixture
def status_writes(settings: Settings, unreachable_store: Store) -> StatusWrites:
    services = Services(settings=settings)
    services.install(Context.build(settings, store=unreachable_store))
    # No waiting out the outage: these tests are about what happens once a write has failed.
    return StatusWrites(services=services, outage_wait_s=0)


def test_failed_timeline_write_is_counted_not_raised(status_writes: StatusWrites) -> None:
    status_writes.after_enqueue(broker, probe.message("LF1"), None)

    assert status_writes.failed_writes == 1


def test_failed_status_write_stops_the_chain(status_writes: StatusWrites) -> None:
    message = MessageProxy(make_frames.message_with_options(args=("LF1",), on_success="autolog.route",
                                                           pipe_target={"actor_name": "autolog.transcribe"}))

    status_writes.after_process_message(broker, message, result={"item_id": "LF1",
                                                                 "status": Status.AVID_DESCRIPTION.value})

    assert message.options[TRANSITION_OPTION]["applied"] is False
    assert "pipe_target" not in message.options and "on_success" not in message.options
    assert status_writes.failed_writes == 2


def test_status_outside_the_steps_graph_is_not_written(status_writes: StatusWrites) -> None:
    message = MessageProxy(probe.message_with_options(args=("LF1",), pipe_target={"actor_name": "x"}))

    status_writes.after_process_message(broker, message, result={"item_id": "LF1",
                                                                 "status": Status.AVID_DESCRIPTION.value})

    assert message.options[TRANSITION_OPTION] == {"from": Status.PENDING_FILE_INFO.value,
                                                  "to": Status.AVID_DESCRIPTION.value, "applied": False}
    assert "pipe_target" not in message.options


def test_result_without_a_status_stops_the_chain_instead_of_raising(status_writes: StatusWrites) -> None:
    message = MessageProxy(probe.message_with_options(args=("LF1",), on_success="autolog.route",
                                                      pipe_target={"actor_name": "x"}))

    status_writes.after_process_message(broker, message, result={"item_id": "LF1"})

    assert message.options[TRANSITION_OPTION]["applied"] is False
    assert "pipe_target" not in message.options and "on_success" not in message.options


def test_a_delayed_enqueue_is_recorded_even_when_the_delay_queue_took_it_first(settings: Settings,
                                                                               sqlite_store: Store) -> None:
    # The delay queue's consumer can take a delayed message (before_delay_message) before the
    # delayed enqueue's own after_enqueue hooks have run; its "deferred" event must still be written.
    services = Services(settings=settings)
    services.install(Context.build(settings, store=sqlite_store))
    writes = StatusWrites(services=services)
    sqlite_store.items.create([NewItem("LF1", "/a")])
    waiting = probe.message_with_options(args=("LF1",), **{WAIT_OPTION: {"waits": 1, "reason": "source settling"}})
    delayed = waiting.copy(queue_name=f"{waiting.queue_name}.DQ")

    writes.before_delay_message(broker, MessageProxy(delayed))
    writes.after_enqueue(broker, delayed, 1000)
    recorded = [(event.event, (event.detail or {}).get("queue")) for event in sqlite_store.timeline.for_item("LF1")]
    writes.after_enqueue(broker, waiting, None)  # due: moved to its queue, recorded already

    assert recorded == [("created", None), ("deferred", delayed.queue_name)]
    assert [event.event for event in sqlite_store.timeline.for_item("LF1")] == ["created", "deferred"]


def test_a_status_write_retried_through_an_outage_gives_its_next_step_a_send_deadline_from_the_write_that_held(
    settings: Settings, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given step 1's success, whose status write meets a store outage once, then goes through
    sqlite_store.items.create([NewItem("LF1", "/footage/a.mov")])
    services = Services(settings=settings)
    services.install(Context.build(settings, store=sqlite_store))
    writes = StatusWrites(services=services, outage_wait_s=30)
    transition = sqlite_store.items.transition
    deadlines: list[float] = []

    def once_unreachable(*args: Any, **kwargs: Any) -> bool:
        deadlines.append(kwargs["messages"][0].send_by_s)
        if len(deadlines) == 1:
            raise StoreUnavailable("the store is restarting")
        return transition(*args, **kwargs)

    monkeypatch.setattr(sqlite_store.items, "transition", once_unreachable)
    message = MessageProxy(probe.message_with_options(args=("LF1",), pipe_target=make_frames.message("LF1").asdict()))

    # When its status is written
    writes.after_process_message(broker, message, result={"item_id": "LF1", "status": Status.FILE_INFO_COMPLETE.value})

    # Then the follow-up handed to the sender carries the deadline of the write that held, not of the first try
    [committed] = message.options[COMMITTED_OPTION]
    assert message.options[TRANSITION_OPTION]["applied"] is True
    assert len(deadlines) == 2 and deadlines[1] > deadlines[0]
    assert committed["send_by_s"] == deadlines[1]


def test_a_store_wait_is_recorded_by_the_start_that_ends_it_on_sqlite(settings: Settings, sqlite_store: Store) -> None:
    # Given a step-1 message back from two waits for the store, the first begun 5 s ago
    services = Services(settings=settings)
    services.install(Context.build(settings, store=sqlite_store))
    writes = StatusWrites(services=services)
    sqlite_store.items.create([NewItem("LF1", "/a")])
    began_ms = int(time.time() * 1000) - 5_000
    wait = {"waits": 2, "reason": STORE_OUTAGE_REASON, "wait_ms": 2_000, "since_ms": began_ms}
    waiting = probe.message_with_options(args=("LF1",), **{WAIT_OPTION: wait})

    # When its enqueue to wait (the store was out then) and its start once due go through the hooks
    writes.after_enqueue(broker, waiting, 2_000)
    writes.before_process_message(broker, MessageProxy(waiting))

    # Then one "deferred" went with the start, stamped when the waits began
    timeline = sqlite_store.timeline.for_item("LF1")
    [deferred] = [event for event in timeline if event.event == "deferred"]
    assert [event.event for event in timeline if event.at > deferred.at] == ["created", "started"]
    assert (deferred.reason, deferred.detail["waits"]) == ("store", 2)
    assert abs(deferred.at.timestamp() * 1000 - began_ms) < 1
    assert deferred.detail["waited_ms"] >= 5_000
