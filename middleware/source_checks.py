"""Source checks: step 1 waits for a file still being copied; a changed source starts again.

Before step 1 runs, the item's local source must have settled: size and times unchanged for
``Settings.source_settle_s`` (see ``autolog.source_state``). A step-1 message built for an item
carries its source (``SOURCE_OPTION``: an item's source never changes), so a settled source costs
a stat and no read of the store: the run's start write is the guard (and returns the item's
source: a message built for an earlier item of the same id is checked again once it started).
Only a source still changing, or a message without the option, reads the item, so that a
cancelled or moved item's message is skipped, not held. Until it has settled the message is
re-enqueued, with the same id and the same ``retries``, to look again when the file could
have settled, and this delivery is skipped, as ``RateLimits`` does for a wait: no retry is
spent, and ``StatusWrites`` (added after this middleware) records one ``deferred`` event
per stretch of waiting, never a start or a failure. So a file still being copied is never
probed, let alone dead-lettered as "not media".

Before steps 2 to 6 run, the source is compared with the fingerprint step 1 stored. When it
has changed (a copy that went on after step 1, a file replaced before a retry or a resume),
the item is moved back to ``0 - Pending File Info`` and routed from there, so no finished log
describes an older file. That check runs once the run holds the item (``StatusWrites`` calls
``check_started`` with the source and fingerprint its start write returned): no read of its
own per step message, and a ``started`` event comes before its ``source_changed``.

``s3://`` sources are skipped: an object appears whole and is fetched anew by each step.
The stored path is stat'ed and read as it is: it was checked against the media roots at
intake, and the step checks it again before it reads the file (``autolog.sources.local_path``);
checking it here too cost a dozen system calls per message, each a turn of the GIL for the
worker's other threads.
Whatever the check cannot read (a missing file, a database hiccup) is left to the step, which
reports it readably.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage
from sqlalchemy.exc import SQLAlchemyError

from autolog.errors import AutologError, StaleRun
from autolog.source_state import (
    CUT_SHORT_DETAIL,
    Sighting,
    SourceFingerprint,
    SourceStat,
    cut_short,
    settle_remaining_s,
    source_changed,
    stall_remaining_s,
)
from autolog.sources import is_remote
from autolog.statuses import FILE_INFO, ROUTE_ACTOR, Status, Step
from autolog.store import ItemGuard, NewEvent, is_store_outage
from middleware._steps import message_step
from middleware.outbox_relay import send_committed
from middleware.rate_limits import WAIT_OPTION, wait_again
from middleware.services import Services
from middleware.status_writes import (
    FOLLOW_UP_OPTION,
    SUPERSEDED_OPTION,
    TRANSITION_OPTION,
    committed_queued,
    wait_out,
)

#: The ``reason`` of a step-1 message's wait marker while its source settles.
SETTLE_REASON = "source settling"

#: Option of a step-1 message: its item's source, as stored (``pipelines.footage.first_message``).
SOURCE_OPTION = "autolog_source"


class SourceChecks(dramatiq.Middleware):
    """Holds step 1 until its source has settled; sends an item whose source changed back to step 1.

    Args:
        services: where the store and settings come from in this process.
        route_actor: the callback whose follow-up names the steps that follow a status write.
        min_delay_ms: the shortest wait before a settling source is looked at again.
    """

    def __init__(self, *, services: Services, route_actor: str = ROUTE_ACTOR, min_delay_ms: int = 250) -> None:
        self.logger = logging.getLogger(__name__)
        self._services = services
        self.route_actor = route_actor
        self.min_delay_ms = min_delay_ms

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        if step is not FILE_INFO or not self._services.is_ready:
            return
        item_id = message.args[0]
        carried: str | None = message.options.get(SOURCE_OPTION)
        source = carried if carried is not None else self._waiting_source(item_id, step)
        if source is None or is_remote(source):
            return
        self._check_settled(broker, message, item_id, source, step, from_message=carried is not None)

    def _check_settled(self, broker: dramatiq.Broker, message: MessageProxy, item_id: str, source: str,
                       step: Step, *, from_message: bool) -> None:
        """``_hold_until_settled``, leaving to the step what the check cannot read or stat.

        Raises:
            SkipMessage: the message is held until the source has settled.
        """
        try:
            self._hold_until_settled(broker, message, item_id, source, step, from_message=from_message)
        except (AutologError, OSError, SQLAlchemyError):
            # The step reads the source itself and reports what is wrong with it.
            self.logger.debug("Source check of item %r skipped.", item_id, exc_info=True)

    def _waiting_source(self, item_id: str, step: Step) -> str | None:
        """Return the item's source if it waits for ``step`` (at its status, not cancelled); else None.

        Four columns, not the row, read before a start is recorded, so a settling source records none.
        Whatever cannot be read is left to ``StatusWrites``, which skips a message for a missing item or fails it.
        """
        try:
            item = self._services.current().store.items.guard(item_id)
        except (AutologError, SQLAlchemyError):
            return None
        return item.source if item.status is step.from_status and not item.cancelled else None

    def check_started(self, broker: dramatiq.Broker, message: MessageProxy, step: Step, item: ItemGuard) -> None:
        """Send the item back to step 1 if its source changed since step 1 (steps 2 to 6).

        Step 1: hold a message built for an earlier item of the same id until this item's source
        has settled (``_recheck_other_source``). Called by ``StatusWrites`` once this delivery's run
        holds the item, with the guard its start write returned.

        Raises:
            SkipMessage: the source changed; the item was moved back (or had moved on meanwhile).
                Or, at step 1, the item's own source is still changing: the message is held.
        """
        if step is FILE_INFO:
            self._recheck_other_source(broker, message, step, item)
            return
        if not item.source_fingerprint or is_remote(item.source):
            return
        try:
            self._restart_if_changed(broker, message, step, message.args[0], item, item.source_fingerprint)
        except (AutologError, OSError):
            # The step reads the source itself and reports what is wrong with it.
            self.logger.debug("Source check of item %r skipped.", message.args[0], exc_info=True)
        except SQLAlchemyError as ex:
            if not is_store_outage(ex):
                self.logger.debug("Source check of item %r skipped.", message.args[0], exc_info=True)
                return
            # The restart could not be written: the message waits for the store, not run unchecked.
            wait_out(broker, message, ex)
            raise SkipMessage(f"store unavailable: {ex}") from ex

    def _recheck_other_source(self, broker: dramatiq.Broker, message: MessageProxy, step: Step,
                              item: ItemGuard) -> None:
        """Hold a step-1 message whose source is not its item's until the item's own source has settled.

        An item's source never changes, but its id can be freed (a delete) and taken by a new item:
        a message built for the old one checked the old file before the start. The run holds the
        item now (at its status, not cancelled), so no read is needed; a held copy names the right
        source. Rare: its timeline reads ``started`` then ``deferred``.
        """
        carried = message.options.get(SOURCE_OPTION)
        if carried is None or carried == item.source or is_remote(item.source):
            return
        message.options[SOURCE_OPTION] = item.source
        self._check_settled(broker, message, message.args[0], item.source, step, from_message=False)

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        """After a failed step 2-6: if its source changed meanwhile, start the item again at step 1.

        A file replaced while a step read it fails the step (a decode stopped short: a permanent
        ``CorruptMedia``), which would dead-letter a good file. The failure is recorded; then the
        item goes back to ``0 - Pending File Info`` and the message is acknowledged, neither retried
        nor dead-lettered (``SUPERSEDED_OPTION``, honoured by ``Retries``, whose hooks run after these).
        """
        step = message_step(broker, message)
        if (exception is None or step is None or step is FILE_INFO or isinstance(exception, StaleRun)
                or is_store_outage(exception) or not self._services.is_ready):
            return
        item_id = message.args[0]
        try:
            item = self._services.current().store.items.guard(item_id)
            if item.status is not step.from_status or not item.source_fingerprint or is_remote(item.source):
                return
            self._restart_if_changed(broker, message, step, item_id, item, item.source_fingerprint)
        except SkipMessage:
            message.options[SUPERSEDED_OPTION] = True
        except (AutologError, OSError, SQLAlchemyError):
            # The failure stands as it was recorded.
            self.logger.debug("Source check of failed item %r skipped.", item_id, exc_info=True)

    def _hold_until_settled(self, broker: dramatiq.Broker, message: MessageProxy, item_id: str, source: str,
                            step: Step, *, from_message: bool) -> None:
        """Hold ``message`` until ``source`` has settled.

        A source that came with the message, still changing, reads the item first: a cancelled or
        moved item's message is left to ``StatusWrites`` to skip, not held, and one built for an
        earlier item of the same id is checked on (and from now on names) the item's own source.
        """
        settings = self._services.current().settings
        stat = SourceStat.of(source)
        previous: dict[str, Any] = message.options.get(WAIT_OPTION) or {}
        ours = previous.get("reason") == SETTLE_REASON
        last = Sighting.from_dict(previous["seen"]) if ours and "seen" in previous else None
        now_s = time.time()
        remaining_s = settle_remaining_s(stat, now_s=now_s, settle_s=settings.source_settle_s, last=last)
        cut: str | None = None
        if remaining_s <= 0 and settings.source_settle_s > 0 and settings.source_stall_s > 0:
            # Quiet, but visibly cut short: a stalled copy is waited for up to the stall window.
            stalled_s = stall_remaining_s(stat, now_s=now_s, stall_s=settings.source_stall_s, last=last)
            cut = cut_short(source, stat) if stalled_s > 0 else None
            if cut is not None:
                remaining_s = stalled_s
        if remaining_s <= 0:
            if ours:
                # The wait is over: a later retry of this message must not read as a wait.
                message.options.pop(WAIT_OPTION, None)
            return
        if from_message:
            waiting = self._waiting_source(item_id, step)
            if waiting is None:
                return
            if waiting != source:
                # Built for an earlier item of this id (deleted, then taken again): its own source counts.
                message.options[SOURCE_OPTION] = waiting
                self._hold_until_settled(broker, message, item_id, waiting, step, from_message=False)
                return
        seen = last if last is not None and last.stat == stat else Sighting(stat=stat, since_s=now_s)
        delay_ms = max(self.min_delay_ms, int(min(remaining_s, settings.source_settle_s) * 1000))
        # A wait that turns into a stalled copy's starts a new stretch: its first wait records why.
        stretch = ours and (cut is None) == (previous.get(CUT_SHORT_DETAIL) is None)
        wait = {"waits": int(previous.get("waits", 0)) + 1 if stretch else 1, "reason": SETTLE_REASON,
                "wait_ms": delay_ms, "size_bytes": stat.size_bytes, "seen": seen.asdict(),
                **({CUT_SHORT_DETAIL: cut} if cut is not None else {})}
        reason = (f"source of {item_id!r} is still changing ({stat.size_bytes} bytes)" if cut is None else
                  f"source of {item_id!r} looks like a stalled copy: {cut}")
        self.logger.debug("Message %r waits %d ms: %s.", message.message_id, delay_ms, reason)
        wait_again(broker, message, wait, delay_ms=delay_ms, reason=reason)

    def _restart_if_changed(self, broker: dramatiq.Broker, message: MessageProxy, step: Step, item_id: str,
                            item: ItemGuard, stored: dict[str, Any]) -> None:
        context = self._services.current()
        found = source_changed(SourceFingerprint.from_dict(stored), Path(item.source))
        if found is None:
            return
        at = datetime.now(UTC)
        event = NewEvent(item_id=item_id, event="source_changed", step=step.name, message_id=message.message_id,
                         from_status=step.from_status.value, to_status=Status.PENDING_FILE_INFO.value,
                         detail={"stored": stored, "found": found.asdict()}, at=at)
        transition = {"from": step.from_status.value, "to": Status.PENDING_FILE_INFO.value, "applied": True}
        # Step 1's message itself, as a branch point commits its next step (the route's follow-up), not a
        # message to the route: a step's start deletes its message's outbox row, so a relay never sends a
        # delivered one again, where a route message has no start and a copy would route the item twice.
        follow_up = broker.get_actor(self.route_actor).options[FOLLOW_UP_OPTION]
        restart, queued = committed_queued(broker, [(message, None) for message in follow_up(
            {"options": {TRANSITION_OPTION: transition}}, {"item_id": item_id, "source": item.source})], at=at)
        # The restart's message commits with the status (the outbox), so a crash cannot strand the item.
        if context.store.items.transition(item_id, step.from_status, Status.PENDING_FILE_INFO, event=event,
                                          messages=restart, events=queued):
            self.logger.info("Source of item %r changed since step 1; starting again at step 1.", item_id)
            send_committed(broker, context.store.outbox, restart)
        raise SkipMessage(f"source of {item_id!r} changed since step 1")
