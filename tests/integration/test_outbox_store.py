"""The outbox in the store, against SQLite and PostgreSQL: messages commit with their status."""

from __future__ import annotations

import threading
import time

import pytest

from autolog.errors import ItemExists
from autolog.statuses import Status
from autolog.store import ABANDON_MARGIN_S, SEND_WITHIN_S, NewEvent, NewItem, PendingMessage, Store


def message(message_id: str, item_id: str = "LF1", queue_name: str = "thumbnails") -> PendingMessage:
    return PendingMessage(message_id=message_id, queue_name=queue_name, message={
        "queue_name": queue_name, "actor_name": "autolog.make_thumbnails", "args": [item_id], "kwargs": {},
        "options": {}, "message_id": message_id, "message_timestamp": 0})


def after_lease() -> float:
    """A moment after every lease taken now has run out (leases are 10 s)."""
    return time.time() + 60


def test_transition_commits_its_messages_with_the_status(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])

    moved = store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                   messages=[message("m1")])

    assert moved is True
    assert store.outbox.claim() == []  # still leased to the writer, who sends it at once
    assert [pending.message_id for pending in store.outbox.claim(now=after_lease())] == ["m1"]


def test_refused_transition_stores_no_message(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")])
    store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)

    moved = store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                   messages=[message("m1")])

    assert moved is False
    assert store.outbox.count() == 0


def test_items_and_their_first_messages_are_stored_together_or_not_at_all(store: Store) -> None:
    store.items.create([NewItem("LF1", "/a")], messages=[message("m1", queue_name="probe")])

    with pytest.raises(ItemExists):
        store.items.create([NewItem("LF2", "/b"), NewItem("LF1", "/c")],
                           messages=[message("m2", "LF2", "probe"), message("m3", "LF1", "probe")])

    assert store.outbox.count() == 1
    claimed = store.outbox.claim(now=after_lease())
    assert [(pending.message_id, pending.message["args"]) for pending in claimed] == [("m1", ["LF1"])]


@pytest.mark.parametrize("item_at", [Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE],
                         ids=["the run starts", "the item is elsewhere"])
def test_a_delivered_messages_run_start_clears_its_outbox_row_whether_or_not_it_moves_the_item(
    store: Store, item_at: Status,
) -> None:
    # Given a status write's follow-up, sent by a writer that died before clearing its row
    store.items.create([NewItem("LF1", "/a"), NewItem("LF2", "/b")])
    store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                           messages=[message("m1"), message("m2", "LF2")])
    if item_at is Status.THUMBNAILS_COMPLETE:
        store.items.transition("LF1", Status.FILE_INFO_COMPLETE, item_at)

    # When the broker delivers it and its step's run start is written
    started = NewEvent(item_id="LF1", event="started", step="thumbnails", message_id="m1", attempt=1,
                       from_status=Status.FILE_INFO_COMPLETE.value, detail={"run": "token"})
    held = store.items.start_run("LF1", Status.FILE_INFO_COMPLETE, "token", event=started)

    # Then its row is gone with that write: no relay sends it again once the lease runs out
    assert (held is not None) is (item_at is Status.FILE_INFO_COMPLETE)
    assert [pending.message_id for pending in store.outbox.claim(now=after_lease())] == ["m2"]


def test_sent_messages_leave_the_outbox_and_a_claim_is_leased(store: Store) -> None:
    store.outbox.add([message("m1"), message("m2")], lease_s=0)

    first = store.outbox.claim(limit=1)
    cleared = store.outbox.sent([first[0].message_id])

    assert (len(first), cleared) == (1, 1)
    assert [pending.message_id for pending in store.outbox.claim()] == ["m2"]
    assert store.outbox.claim() == []  # m2 is leased to the claim above
    assert [pending.message_id for pending in store.outbox.claim(now=after_lease())] == ["m2"]


def test_clearing_sent_messages_counts_only_the_rows_still_there(store: Store) -> None:
    store.outbox.add([message("m1"), message("m2"), message("m3")])

    cleared = store.outbox.sent(["m1", "gone", "m3"])

    assert (cleared, [pending.message_id for pending in store.outbox.unsent()]) == (2, ["m2"])
    assert store.outbox.sent([]) == 0


def test_concurrent_relays_never_claim_one_message_twice(store: Store) -> None:
    store.outbox.add([message(f"m{index}") for index in range(60)], lease_s=0)
    claimed: list[list[str]] = []
    start = threading.Barrier(4)

    def relay() -> None:
        start.wait()
        mine: list[str] = []
        while batch := store.outbox.claim(limit=7):
            mine.extend(pending.message_id for pending in batch)
        claimed.append(mine)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [message_id for mine in claimed for message_id in mine]
    assert sorted(every) == sorted(f"m{index}" for index in range(60))


def test_migration_0004_matches_the_outbox_model(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from autolog.store.models import OutboxMessage

    wanted = MetaData()
    OutboxMessage.__table__.to_metadata(wanted)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), wanted)

    assert [diff for diff in differences if "outbox" in repr(diff) and diff[0] != "remove_table"] == []


def test_a_claim_is_kept_only_by_its_holder_and_only_while_the_row_is_there(store: Store) -> None:
    store.outbox.add([message("m1"), message("m2")], lease_s=0)
    first = store.outbox.claim()
    store.outbox.sent(["m2"])  # delivered meanwhile: its step's start deleted it

    assert store.outbox.keep(first) == {"m1"}
    assert store.outbox.claim() == [], "kept: leased again"
    second = store.outbox.claim(now=after_lease())  # the first relay outlasted its lease
    assert store.outbox.keep(first) == set()
    assert store.outbox.keep(second) == {"m1"}


def test_a_purge_drops_the_rows_only_a_relay_would_send_and_a_claim_on_one_is_not_kept(store: Store) -> None:
    # Given rows of the thumbnails queue (one claimed by a relay) and one of another queue
    store.outbox.add([message("m1"), message("m2", "LF2", "probe")], lease_s=0)
    claimed = store.outbox.claim(limit=1)
    store.outbox.add([message("m3", "LF3")], lease_s=0)
    later = time.time() + SEND_WITHIN_S + ABANDON_MARGIN_S + 1
    store.outbox.add([message("m4", "LF4")])

    # When the thumbnails queue is purged by rows made up to now, as at a moment past their writers' deadline
    dropped = store.outbox.drop_queue("thumbnails", made_by_s=time.time(), now=later)

    # Then the queue's rows are gone, the relay's claim is not kept, and the other queue's row stays
    assert sorted((pending.message_id, pending.message["args"][0]) for pending in dropped) == [
        ("m1", "LF1"), ("m3", "LF3"), ("m4", "LF4")]
    assert [pending.message_id for pending in claimed] == ["m1"]
    assert store.outbox.keep(claimed) == set()
    assert [pending.message_id for pending in store.outbox.unsent()] == ["m2"]


def test_a_purge_leaves_a_row_its_writer_may_still_send_and_rows_made_after_it(store: Store) -> None:
    # Given a row just made, which its writer may still send, and one made after the purge began
    store.outbox.add([message("m1")])
    made_by_s = time.time()
    store.outbox.add([message("m2", "LF2")])

    # When the queue is purged by the rows made before m2: now, past m1's send deadline but within
    # the margin, and after the margin
    within_margin = made_by_s + SEND_WITHIN_S + ABANDON_MARGIN_S / 2
    waiting = store.outbox.being_sent("thumbnails", made_by_s=made_by_s, now=within_margin)
    early = store.outbox.drop_queue("thumbnails", made_by_s=made_by_s, now=within_margin)
    late = store.outbox.drop_queue("thumbnails", made_by_s=made_by_s, now=within_margin + ABANDON_MARGIN_S)

    # Then m1 waits for its writer until the margin is over, and m2, made after the purge, stays
    assert (waiting, early, [pending.message_id for pending in late]) == (1, [], ["m1"])
    assert store.outbox.being_sent("thumbnails", made_by_s=made_by_s) == 0
    assert [pending.message_id for pending in store.outbox.unsent()] == ["m2"]
