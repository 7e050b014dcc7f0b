"""Discovery on the private Redis: pending items queued, stuck ones re-queued, the rest left alone."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update

from autolog.context import Context
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewEvent, NewItem
from autolog.store.models import Item
from pipelines import DiscoveryLoop, DiscoveryReport, scan
from pipelines.footage import enqueue_from
from tests.conftest import SampleClips

LATER = datetime.now(UTC) + timedelta(days=1)


def broker() -> object:
    from actors import broker as the_broker

    return the_broker


def backdate(context: Context, item_id: str, *, hours: float = 1.0) -> None:
    """Make an item look untouched for ``hours`` (test setup: the store always stamps now)."""
    with context.store.engine.begin() as connection:
        connection.execute(update(Item).where(Item.id == item_id).values(
            updated_at=datetime.now(UTC) - timedelta(hours=hours)))


def walk(context: Context, item_id: str, *statuses: Status) -> None:
    for before, after in zip(statuses, statuses[1:], strict=False):
        assert context.store.items.transition(item_id, before, after)


def queued(context: Context, queue: str) -> list[str]:
    import dramatiq

    the_broker = broker()
    client: redis.Redis = the_broker.client  # type: ignore[attr-defined]
    key = f"{the_broker.namespace}:{queue}"  # type: ignore[attr-defined]
    return [dramatiq.Message.decode(client.hget(f"{key}.msgs", message_id)).args[0]  # type: ignore[arg-type]
            for message_id in client.lrange(key, 0, -1)]  # type: ignore[union-attr]


def test_pending_item_never_queued_is_queued(context: Context) -> None:
    context.store.items.create([NewItem("D1", "/m/d1.mp4")])

    report = scan(context, broker(), now=LATER)

    assert (report.queued, report.requeued) == (("D1",), ())
    assert queued(context, "probe") == ["D1"]
    assert "rediscovered" in [event.event for event in context.store.timeline.for_item("D1")]


def test_young_pending_item_is_left_to_the_request_that_stored_it(context: Context) -> None:
    context.store.items.create([NewItem("D2", "/m/d2.mp4")])

    assert scan(context, broker()).queued == ()


def test_item_with_a_message_in_flight_is_left_alone(context: Context) -> None:
    context.store.items.create([NewItem("D3", "/m/d3.mp4")])
    enqueue_from("D3", Status.PENDING_FILE_INFO)

    report = scan(context, broker(), now=LATER)

    assert report.queued == () and report.in_flight == 1
    assert queued(context, "probe") == ["D3"]


def test_item_whose_message_waits_in_the_outbox_is_left_to_the_relay(context: Context) -> None:
    from middleware.outbox_relay import pending
    from pipelines.footage import first_message

    # Given an item stored with its step-1 message, whose send to Redis failed (an API request during an outage)
    message = first_message("D7", Status.PENDING_FILE_INFO, source="/m/d7.mp4")
    assert message is not None
    context.store.items.create([NewItem("D7", "/m/d7.mp4")], messages=[pending(message)])

    report = scan(context, broker(), now=LATER)

    # Then the scan sends it no second message: a trial's item ran step 1 twice at once, one run superseded
    assert report.queued == () and queued(context, "probe") == []
    assert "rediscovered" not in [event.event for event in context.store.timeline.for_item("D7")]


def test_stuck_item_is_requeued_from_its_status_after_the_threshold(context: Context) -> None:
    context.store.items.create([NewItem("S1", "/m/s1.mp4"), NewItem("S2", "/m/s2.mp4")])
    walk(context, "S1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    walk(context, "S2", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    backdate(context, "S1")

    report = scan(context, broker(), stuck_after_s=600)

    assert report.requeued == ("S1",)
    assert queued(context, "thumbnails") == ["S1"]


def test_resting_and_waiting_items_are_left_for_a_person(context: Context) -> None:
    ids = ["R-cancelled", "R-dead", "R-permanent", "R-waiting"]
    context.store.items.create([NewItem(item_id, f"/m/{item_id}.mp4") for item_id in ids])
    context.store.items.update("R-cancelled", cancelled=True)
    context.store.items.update("R-dead", dead_lettered=True)
    context.store.items.update("R-permanent", error={"type": "NotMedia", "permanent": True},
                               event=NewEvent(item_id="R-permanent", event="failed"))
    walk(context, "R-waiting", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE,
         Status.AWAITING_USER_INPUT)
    for item_id in ids:
        backdate(context, item_id)

    report = scan(context, broker(), now=LATER, stuck_after_s=0)

    assert (report.queued, report.requeued) == ((), ())


def test_item_lost_in_a_crash_is_resumed_to_the_end(context: Context, drain: Callable[..., None],
                                                    test_media: SampleClips) -> None:
    context.store.items.create([NewItem("C1", str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])

    scan(context, broker(), now=LATER)
    drain()

    assert context.store.items.get("C1").status is Status.AVID_DESCRIPTION


def test_loop_survives_a_failed_scan_and_stops_when_asked() -> None:
    calls: list[int] = []

    def flaky() -> DiscoveryReport:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("Redis is restarting")
        return DiscoveryReport(at=datetime.now(UTC), queued=(), requeued=(), in_flight=0)

    loop = DiscoveryLoop(scan=flaky, interval_s=0.01)
    loop.start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.stop()

    assert len(calls) >= 3 and not loop.is_running
    assert loop.reports and loop.reports[0].queued == ()


@pytest.fixture
def discovery_env(context: Context, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": context.store.engine.url.render_as_string(hide_password=False),
            "AUTOLOG_DISCOVERY_INTERVAL_S": "0.2", "AUTOLOG_VAR_DIR": str(tmp_path / "var")}


def test_discovery_process_queues_pending_items_until_stopped(context: Context, settings: Settings,
                                                              discovery_env: dict[str, str], tmp_path: Path) -> None:
    from ops.discovery import DiscoveryProcess

    context.store.items.create([NewItem("P1", "/m/p1.mp4")])
    backdate(context, "P1")
    process = DiscoveryProcess(settings.replace(var_dir=tmp_path / "var"), env=discovery_env)

    status = process.start()
    try:
        deadline = time.monotonic() + 30
        while queued(context, "probe") != ["P1"]:
            assert time.monotonic() < deadline, (tmp_path / "var" / "log" / "discovery.log").read_text()
            time.sleep(0.05)
    finally:
        stopped = process.stop()

    assert status.running and status.pid
    assert not stopped.running and not process.pid_file.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(status.pid, 0)
