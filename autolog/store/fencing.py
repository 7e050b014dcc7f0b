"""Fenced writes: a step run's work is stored only while the run is the item's current one.

When a delivery of a step starts, the item takes that run's token (``Items.start_run``)
if it is at the step's status. Every write of the run, made through ``Store.fenced``,
first re-checks in its own transaction that the item is still at that status with that
token, and locks the item's row while it writes: a run that a newer delivery superseded
(a worker frozen past its heartbeat, then resumed) or whose item moved on stores nothing
and gets ``StaleRun``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table, bindparam, update

from autolog.errors import StaleRun
from autolog.statuses import Status
from autolog.store.driver_sql import CompiledFor
from autolog.store.models import Item


@dataclass(frozen=True)
class RunFence:
    """One step run of one item: the token it took and the status it runs from."""

    item_id: str
    token: str
    status: Status


_ITEMS = cast("Table", Item.__table__)

#: The fence check, built once: building and compiling the statement on each call cost
#: about three times as much as running it (SQLite, ~0.3 of ~0.4 ms, five calls an item), and
#: it runs on the driver's cursor (``autolog.store.driver_sql``). A Core statement, not an ORM
#: one: the sessions it runs in hold no ``Item`` to keep in step.
_HOLD = CompiledFor(update(_ITEMS)
                    .where(_ITEMS.c.id == bindparam("fenced_item"), _ITEMS.c.run_token == bindparam("token"),
                           _ITEMS.c.status == bindparam("fenced_status"))
                    .values(run_token=bindparam("held_token")))


def hold_fence(connection: Connection, fence: RunFence | None, item_id: str) -> None:
    """Check, in ``connection``'s transaction, that ``fence``'s run still holds ``item_id``, and lock its row.

    Writes for other items, or with no fence, pass unchecked.

    Raises:
        StaleRun: the item is at another status or another run holds it.
    """
    if fence is None or fence.item_id != item_id:
        return
    # A no-op update, not a read: it takes the row's write lock (PostgreSQL) or the
    # database's (SQLite) until commit, so no newer run can take over mid-write.
    cursor = _HOLD.run(connection, {"fenced_item": item_id, "token": fence.token,
                                    "fenced_status": fence.status.value, "held_token": fence.token})
    if not cursor.rowcount:
        raise StaleRun(item_id, fence.token)
