"""The outbox relay against the real Redis and store: a row whose writer sent it is cleared, not sent twice."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.exc import OperationalError

import middleware.outbox_relay as outbox_relay_module
from actors import broker, probe, services
from autolog.broker_state import HELD_IDS_PAGE, enqueue_many, held_message_ids
from autolog.context import Context
from autolog.statuses import ROUTE_ACTOR, Status
from autolog.store import NewEvent, NewItem, Outbox, PendingMessage
from autolog.store.outbox import DEFAULT_LEASE_S
from middleware import OutboxRelay, pending, relay_outbox, send_committed
from middleware.outbox_relay import CLEAR_SENT_AFTER_S, send_after_hooks
from pipelines.queues import Queues
from tests.conftest import SkippingClock, fetch, free_port_block, wait_for


def after_lease() -> float:
    """A moment after every lease taken now has run out (leases are 10 s)."""
    return time.time() + 60


def copies_in_redis(message_id: str) -> int:
    """How many messages of the probe queue, in any state, carry ``message_id`` as their own id."""
    client: redis.Redis = broker.client
    stored = [*client.hvals(f"{broker.namespace}:probe.msgs"),  # type: ignore[misc]
              *client.hvals(f"{broker.namespace}:probe.DQ.msgs"),  # type: ignore[misc]
              *client.lrange(f"{broker.namespace}:probe.HQ", 0, -1),  # type: ignore[misc]
              *client.hvals(f"{broker.namespace}:probe.XQ.msgs")]  # type: ignore[misc]
    return sum(json.loads(data)["message_id"] == message_id for data in stored)


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    """A consumer of the probe queue, as a worker's."""
    probe_consumer = broker.consume("probe", prefetch=1, timeout=100)
    yield probe_consumer
    probe_consumer.close()


def sent_by_a_writer_that_died(context: Context, item_id: str, *, delay_ms: int | None = None) -> dramatiq.Message[Any]:
    """Commit an item's first message to the outbox, send it, and never clear its row."""
    message = probe.message(item_id)
    context.store.items.create([NewItem(item_id, "/footage/a.mov")], messages=[pending(message, delay_ms=delay_ms)])
    broker.enqueue(message, delay=delay_ms)
    return message


@pytest.mark.parametrize("waiting", ["queued", "delayed", "held by a pause", "being processed", "dead-lettered"])
def test_a_row_whose_message_redis_still_holds_is_cleared_not_sent_again(
    context: Context, waiting: str, consumer: Consumer,
) -> None:
    # Given a message sent by a writer that died before clearing its row, still waiting in Redis past the lease
    message = sent_by_a_writer_that_died(context, "LF1", delay_ms=60_000 if waiting == "delayed" else None)
    if waiting == "held by a pause":
        Queues.of_broker(broker).pause("probe")
    if waiting in ("being processed", "dead-lettered"):
        taken = fetch(consumer)
        assert taken.message_id == message.message_id
        if waiting == "dead-lettered":
            consumer.nack(taken)

    # When a relay settles the rows whose lease ran out
    settled = relay_outbox(broker, context.store.outbox, now=after_lease())

    # Then the row is cleared and Redis still holds one copy: the step will run once
    assert (settled, context.store.outbox.count()) == (1, 0)
    assert copies_in_redis(message.message_id) == 1


def test_a_row_whose_message_never_reached_redis_is_sent_once(context: Context) -> None:
    # Given a row whose writer died before sending, and a message in Redis that nests its id (a pipeline's later step)
    message = probe.message("LF1")
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[pending(message)])
    broker.enqueue(probe.message("LF2").copy(options={"pipe_target": message.asdict()}))

    # When a relay settles the rows whose lease ran out
    settled = relay_outbox(broker, context.store.outbox, now=after_lease())

    # Then the message goes to Redis once, and its row is cleared
    assert (settled, context.store.outbox.count()) == (1, 0)
    assert copies_in_redis(message.message_id) == 1


class StartedWhileClaimed(Outbox):
    """The store's outbox, with the message's step started and acknowledged right after the relay's claim."""

    def __init__(self, context: Context, item_id: str) -> None:
        store = context.store
        super().__init__(store.sessions, store.items.group, store.items.statements)
        self._context = context
        self._item_id = item_id

    def claim(self, **kwargs: Any) -> list[PendingMessage]:
        claimed = super().claim(**kwargs)
        started = NewEvent(item_id=self._item_id, event="started", step="file_info",
                           message_id=claimed[0].message_id, attempt=1,
                           from_status=Status.PENDING_FILE_INFO.value, detail={"run": "token"})
        assert self._context.store.items.start_run(self._item_id, Status.PENDING_FILE_INFO, "token",
                                                   event=started) is not None
        return claimed


def test_a_row_whose_step_started_after_the_claim_is_not_sent(context: Context) -> None:
    # Given a row past its lease whose message a worker takes, starts and acknowledges while a relay claims it
    message = probe.message("LF1")
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[pending(message)])

    # When the relay settles it
    settled = relay_outbox(broker, StartedWhileClaimed(context, "LF1"), now=after_lease())

    # Then nothing is sent: the start took the row, and a copy would start the step again
    assert (settled, context.store.outbox.count()) == (0, 0)
    assert copies_in_redis(message.message_id) == 0


class OutlastedClaim(Outbox):
    """The store's outbox, with another relay claiming the rows again right after this claim (its lease ran out)."""

    def __init__(self, context: Context) -> None:
        super().__init__(context.store.sessions, context.store.items.group, context.store.items.statements)
        self.taken_over: list[PendingMessage] = []

    def claim(self, **kwargs: Any) -> list[PendingMessage]:
        claimed = super().claim(**kwargs)
        self.taken_over = super().claim(now=kwargs["now"] + DEFAULT_LEASE_S + 1)
        return claimed


def test_a_row_another_relay_claimed_once_this_ones_lease_ran_out_is_sent_by_that_one_only(context: Context) -> None:
    # Given an unsent row, and a relay whose reading of Redis outlasts its claim, so another relay claims the row
    message = probe.message("LF1")
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[pending(message)])
    outbox = OutlastedClaim(context)

    # When the first relay goes on to send, and the second relay sends what it claimed
    first = relay_outbox(broker, outbox, now=after_lease())
    assert context.store.outbox.keep(outbox.taken_over) == {message.message_id}
    second = send_committed(broker, context.store.outbox, outbox.taken_over)

    # Then only the relay holding the claim sent it: one copy
    assert (first, second, context.store.outbox.count()) == (0, 1, 0)
    assert copies_in_redis(message.message_id) == 1


def test_a_relay_that_cannot_read_redis_keeps_the_row_for_the_next(context: Context) -> None:
    # Given a row past its lease, and a relay whose Redis does not answer
    message = probe.message("LF1")
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[pending(message)])
    unreachable = RedisBroker(url=f"redis://127.0.0.1:{free_port_block(1)}/0", namespace=broker.namespace)

    # When it settles the rows, and a relay on the real Redis after its lease
    assert relay_outbox(unreachable, context.store.outbox, now=after_lease()) == 0
    assert context.store.outbox.count() == 1
    settled = relay_outbox(broker, context.store.outbox, now=after_lease() + 60)

    # Then the row outlived the failure and went once
    assert (settled, context.store.outbox.count()) == (1, 0)
    assert copies_in_redis(message.message_id) == 1


def test_held_message_ids_reads_each_messages_own_id_in_any_key_order(context: Context) -> None:
    client: redis.Redis = broker.client
    own = probe.message("LF1")
    nested = probe.message("LF2")
    # dramatiq's compact JSON, with a later step's message nested in its options
    broker.enqueue(own.copy(options={"pipe_target": nested.asdict()}))
    # and a message encoded in another key order, read whole
    other = probe.message("LF3")
    client.hset(f"{broker.namespace}:probe.msgs", "reordered",
                json.dumps({"message_id": other.message_id, **other.asdict()}, indent=1))

    # and ids that JSON escapes
    escaped = [probe.message("LF4").copy(message_id=message_id) for message_id in ("back\\slash", "café", "tab\tid")]
    for message in escaped:
        broker.enqueue(message)

    found = held_message_ids(client, broker.namespace, "probe", [own.message_id, nested.message_id,
                                                                 other.message_id, "absent",
                                                                 *(message.message_id for message in escaped)])

    assert found == {own.message_id, other.message_id, "back\\slash", "café", "tab\tid"}


@pytest.mark.parametrize("paused", [False, True], ids=["queued", "held by a pause"])
def test_held_message_ids_reads_a_backlog_of_many_pages(context: Context, paused: bool) -> None:
    client: redis.Redis = broker.client
    backlog = [probe.message(f"LF{index}").copy(options={"redis_message_id": f"backlog-{index}"})
               for index in range(1_200)]
    enqueue_many(broker, [("probe", str(message.options["redis_message_id"]), message.encode())
                          for message in backlog])
    if paused:
        Queues.of_broker(broker).pause("probe")

    wanted = [backlog[0].message_id, backlog[700].message_id, backlog[-1].message_id]
    calls_before = script_calls(client)
    found = held_message_ids(client, broker.namespace, "probe", [*wanted, "absent"])

    assert found == set(wanted)
    # A page a call: Redis is never busy with the whole backlog at once
    assert script_calls(client) - calls_before >= math.ceil(len(backlog) / HELD_IDS_PAGE)


def script_calls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    # Absent until this Redis' first EVAL (a pytest-xdist worker may run this test first).
    return int(stats.get("cmdstat_eval", {}).get("calls", 0))


def test_a_writer_past_its_send_deadline_leaves_its_message_to_the_relay_which_sends_it_once(context: Context) -> None:
    # Given a row whose writer stalled between its commit and its send longer than SEND_WITHIN_S
    message = probe.message("LF1")
    stalled = replace(pending(message), send_by_s=time.time() - 1)
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[stalled])

    # When the writer goes on to send it, and a relay settles the rows once the lease ran out
    assert send_committed(broker, context.store.outbox, [stalled]) == 0
    assert (copies_in_redis(message.message_id), context.store.outbox.count()) == (0, 1)
    settled = relay_outbox(broker, context.store.outbox, now=after_lease())

    # Then only the relay sent it: one copy
    assert (settled, context.store.outbox.count(), copies_in_redis(message.message_id)) == (1, 0, 1)


class SlowRead(Outbox):
    """The store's outbox, whose claims come back past their send deadline (a relay whose read of Redis took long)."""

    def claim(self, **kwargs: Any) -> list[PendingMessage]:
        return [replace(message, send_by_s=time.time() - 1) for message in super().claim(**kwargs)]


def test_a_relays_send_deadline_runs_from_the_claim_it_renewed_not_from_its_read(context: Context) -> None:
    # Given a row past its lease, and a relay whose read of Redis outlasted SEND_WITHIN_S from its claim
    message = probe.message("LF1")
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[pending(message)])

    # When it settles the row
    store = context.store
    settled = relay_outbox(broker, SlowRead(store.sessions, store.items.group, store.items.statements),
                           now=after_lease())

    # Then it sent it: its renewed claim holds the row for a whole lease from now
    assert (settled, context.store.outbox.count(), copies_in_redis(message.message_id)) == (1, 0, 1)


class ClaimedAgainAfterKeep(Outbox):
    """The store's outbox, with another relay trying to claim the rows right after this relay renewed its claim."""

    def __init__(self, context: Context) -> None:
        super().__init__(context.store.sessions, context.store.items.group, context.store.items.statements)
        self.second_relay: list[PendingMessage] = []

    def keep(self, claimed: Sequence[PendingMessage], **kwargs: Any) -> set[str]:
        kept = super().keep(claimed, **kwargs)
        self.second_relay = super().claim()
        return kept


def test_a_relay_given_a_stale_now_renews_its_claim_from_the_clock(context: Context) -> None:
    # Given a row long past its lease, and a relay whose ``now`` was read 20 s ago (a sweep that stalled)
    message = probe.message("LF1")
    context.store.items.create([NewItem("LF1", "/footage/a.mov")])
    context.store.outbox.add([pending(message)], lease_s=-30)
    outbox = ClaimedAgainAfterKeep(context)

    # When it settles the row, and another relay looks right after its renewal
    settled = relay_outbox(broker, outbox, now=time.time() - 20)

    # Then the renewal held the row from now: the other relay claimed nothing, and one copy went
    assert (settled, outbox.second_relay) == (1, [])
    assert copies_in_redis(message.message_id) == 1


def finished_step(context: Context, item_id: str) -> tuple[MessageProxy, dramatiq.Message[Any]]:
    """A step's message as it finishes, its next step's message committed to the outbox (as StatusWrites leaves it)."""
    follow_up = probe.message(item_id)
    context.store.items.create([NewItem(item_id, "/footage/a.mov")], messages=[pending(follow_up)])
    finished = MessageProxy(probe.message(item_id))
    send_after_hooks(finished, [pending(follow_up)])
    return finished, follow_up


@pytest.fixture
def relay(monkeypatch: pytest.MonkeyPatch) -> OutboxRelay:
    """This process's relay middleware on a clock the test moves."""
    monkeypatch.setattr(outbox_relay_module, "time", SkippingClock())
    return OutboxRelay(services=services())


def test_the_rows_of_a_workers_sent_messages_are_cleared_together_once_the_oldest_waited(
        context: Context, relay: OutboxRelay) -> None:
    # Given two steps that finished one after the other, each sending its next step's message
    first, first_next = finished_step(context, "LF1")
    second, second_next = finished_step(context, "LF2")
    relay.after_process_message(broker, first)
    relay.after_process_message(broker, second)

    # Then both messages are in Redis at once, and their rows wait to be cleared together
    assert (copies_in_redis(first_next.message_id), copies_in_redis(second_next.message_id)) == (1, 1)
    assert context.store.outbox.count() == 2

    # When a third step finishes once the oldest row has waited CLEAR_SENT_AFTER_S
    outbox_relay_module.time.skipped_s = CLEAR_SENT_AFTER_S  # type: ignore[attr-defined]
    third, third_next = finished_step(context, "LF3")
    relay.after_process_message(broker, third)

    # Then the three rows are cleared, in one write, and each message went once
    assert context.store.outbox.count() == 0
    assert [copies_in_redis(message.message_id) for message in (first_next, second_next, third_next)] == [1, 1, 1]


@pytest.mark.parametrize("when", ["at the relay's next turn", "at shutdown"])
def test_sent_rows_still_waiting_are_cleared_by_the_relays_thread_or_at_shutdown(
        context: Context, relay: OutboxRelay, when: str) -> None:
    # Given a step that finished and sent its next step's message, its row waiting to be cleared
    finished, _ = finished_step(context, "LF1")
    relay.after_process_message(broker, finished)
    assert context.store.outbox.count() == 1

    # When the relay's thread takes its turn, or the worker stops: a step that finishes after the stop began (in
    # its grace period, once the relay's thread is gone) sends its next step too, and the stop's end clears both
    if when == "at shutdown":
        relay.before_worker_shutdown(broker, None)
        late, late_next = finished_step(context, "LF2")
        relay.after_process_message(broker, late)
        assert (copies_in_redis(late_next.message_id), context.store.outbox.count()) == (1, 2)
        relay.after_worker_shutdown(broker, None)
        assert context.store.outbox.count() == 0
        return
    relay.interval_s = 0.05
    relay.after_worker_boot(broker, None)
    try:
        # Then the row is cleared, though no later step finished
        wait_for(lambda: context.store.outbox.count() == 0, timeout_s=10, what="the relay's thread to clear the row")
    finally:
        relay.before_worker_shutdown(broker, None)


def test_a_clear_the_store_refuses_keeps_the_rows_and_never_raises(
        context: Context, relay: OutboxRelay, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store that refuses the clear (an outage), and a finished step whose message went
    def refused(message_ids: Sequence[str]) -> int:
        raise OperationalError("DELETE FROM outbox", {}, Exception("database is locked"))

    monkeypatch.setattr(context.store.outbox, "sent", refused)
    finished, next_message = finished_step(context, "LF1")

    # When the worker clears its sent rows, Then nothing is raised, the message went once and its row stays
    relay.after_process_message(broker, finished)
    relay.after_worker_shutdown(broker, None)
    assert (copies_in_redis(next_message.message_id), context.store.outbox.count()) == (1, 1)

    # And once the lease has run out, a relay finds the message in Redis and clears the row without sending it
    monkeypatch.undo()
    assert relay_outbox(broker, context.store.outbox, now=after_lease()) == 1
    assert (copies_in_redis(next_message.message_id), context.store.outbox.count()) == (1, 0)


def test_the_row_of_a_follow_up_that_runs_no_step_is_cleared_at_once(context: Context, relay: OutboxRelay) -> None:
    # Given a finished step whose follow-up is a plain callback (no step: no start deletes its row)
    callback = dramatiq.Message(queue_name="control", actor_name=ROUTE_ACTOR, args=({"item_id": "LF1"}, {}),
                                kwargs={}, options={})
    context.store.items.create([NewItem("LF1", "/footage/a.mov")], messages=[pending(callback)])
    finished = MessageProxy(probe.message("LF1"))
    send_after_hooks(finished, [pending(callback)])

    # When it is sent
    relay.after_process_message(broker, finished)

    # Then its row is cleared with the send, not left for a later clear: if the worker died before that, a relay
    # would find the message run and gone from Redis, and send it again
    assert context.store.outbox.count() == 0
    assert broker.client.hlen(f"{broker.namespace}:control.msgs") == 1
