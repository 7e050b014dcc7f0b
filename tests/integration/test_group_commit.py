"""Group commit on SQLite: writes of many threads share transactions, and each keeps its own outcome."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, select, update

from autolog.errors import StoreUnavailable
from autolog.statuses import Status
from autolog.store import NewEvent, NewItem, Store
from autolog.store.driver_sql import driver_cursor
from autolog.store.group_commit import GroupCommit
from autolog.store.models import Item
from tests.conftest import wait_for


class Interrupted(BaseException):
    """Stands for dramatiq's time limit: an exception raised into a thread from outside."""


def set_prompt(item_id: str, prompt: str, *, before: Callable[[], None] = lambda: None) -> Callable[[Connection], int]:
    def write(connection: Connection) -> int:
        before()
        return connection.execute(update(Item).where(Item.id == item_id).values(prompt=prompt)).rowcount

    return write


def prompts(store: Store) -> dict[str, str | None]:
    with store.sessions() as session:
        return {row.id: row.prompt for row in session.execute(select(Item.id, Item.prompt))}


class Writers:
    """Threads each running one write through ``group``; their outcomes by name."""

    def __init__(self, group: GroupCommit) -> None:
        self.group = group
        self.outcomes: dict[str, Any] = {}
        self.threads: dict[str, threading.Thread] = {}

    def start(self, name: str, write: Callable[[Connection], Any], *, idempotent: bool = False) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = self.group.run(write, idempotent=idempotent)
            except BaseException as ex:  # noqa: BLE001 - the outcome under test
                self.outcomes[name] = ex

        self.threads[name] = threading.Thread(target=run, name=name)
        self.threads[name].start()

    def queue(self, name: str, write: Callable[[Connection], Any], *, idempotent: bool = False) -> None:
        """Start a writer and wait until its write waits, after those queued before it, for the next batch."""
        queued = self.group.queued + 1
        self.start(name, write, idempotent=idempotent)
        wait_for(lambda: self.group.queued == queued, timeout_s=10, what=f"{name} queued")

    def join(self) -> None:
        for thread in self.threads.values():
            thread.join(timeout=30)
            assert not thread.is_alive()


@pytest.fixture
def blocked(sqlite_store: Store) -> tuple[Writers, threading.Event]:
    """A group whose first write (its leader's) blocks until the event is set, so later writes queue up."""
    sqlite_store.items.create([NewItem(f"LF{index}", "/a") for index in range(5)])
    release = threading.Event()
    writers = Writers(sqlite_store.items.group)
    writers.start("leader", set_prompt("LF0", "leader", before=lambda: release.wait(30)))
    wait_for(lambda: writers.group.queued == 0 and writers.group.leading, timeout_s=10, what="the leader runs")
    return writers, release


def test_concurrent_compare_and_sets_each_win_once(sqlite_store: Store) -> None:
    sqlite_store.items.create([NewItem("SHARED", "/a"), *(NewItem(f"OWN{index}", "/a") for index in range(16))])
    outcomes: dict[str, tuple[bool, bool]] = {}

    def step(index: int) -> None:
        mine = sqlite_store.items.transition(f"OWN{index}", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                             event=NewEvent(item_id=f"OWN{index}", event="succeeded"))
        shared = sqlite_store.items.start_run("SHARED", Status.PENDING_FILE_INFO, f"run{index}",
                                              event=NewEvent(item_id="SHARED", event="started")) is not None and \
            sqlite_store.items.transition("SHARED", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
        outcomes[f"OWN{index}"] = (mine, shared)

    threads = [threading.Thread(target=step, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(mine for mine, _ in outcomes.values()) and len(outcomes) == 16
    assert sum(shared for _, shared in outcomes.values()) == 1
    assert [event.event for event in sqlite_store.timeline.for_item("SHARED")].count("transition") == 1
    assert all(sqlite_store.items.get(f"OWN{index}").status is Status.FILE_INFO_COMPLETE for index in range(16))


def test_a_failing_write_rolls_back_alone(sqlite_store: Store, blocked: tuple[Writers, threading.Event]) -> None:
    writers, release = blocked
    runs: list[str] = []

    def failing(connection: Connection) -> int:
        runs.append("LF2")
        raise ValueError("refused")

    writers.queue("first", set_prompt("LF1", "first", before=lambda: runs.append("LF1")))
    writers.queue("failing", failing)
    writers.queue("last", set_prompt("LF3", "last"))
    release.set()
    writers.join()

    assert isinstance(writers.outcomes["failing"], ValueError)
    assert (writers.outcomes["leader"], writers.outcomes["first"], writers.outcomes["last"]) == (1, 1, 1)
    # One batch of three, rolled back, then each alone: the first write ran twice, committed once.
    assert runs == ["LF1", "LF2", "LF1", "LF2"]
    assert prompts(sqlite_store) == {"LF0": "leader", "LF1": "first", "LF2": None, "LF3": "last", "LF4": None}


def test_an_interrupted_leader_fails_its_batch_as_an_outage_and_passes_the_lead(
    sqlite_store: Store, blocked: tuple[Writers, threading.Event],
) -> None:
    # Given a batch whose leader will be interrupted, with a write and an idempotent write (a step's save) behind it
    writers, release = blocked

    def interrupted(connection: Connection) -> int:
        raise Interrupted

    writers.queue("interrupted", interrupted)
    writers.queue("follower", set_prompt("LF1", "follower"))
    writers.queue("save", set_prompt("LF3", "saved"), idempotent=True)

    # When the leader's thread is interrupted mid-batch
    release.set()
    writers.join()

    # Then the write's caller is told of an outage, the idempotent write ran again and committed, and the lead passed on
    assert isinstance(writers.outcomes["interrupted"], Interrupted)
    assert isinstance(writers.outcomes["follower"], StoreUnavailable)
    assert writers.outcomes["save"] == 1
    assert not writers.group.leading
    assert sqlite_store.items.group.run(set_prompt("LF4", "after")) == 1
    assert prompts(sqlite_store)["LF1"] is None
    assert prompts(sqlite_store)["LF3"] == "saved"


def test_a_waiter_interrupted_when_handed_the_lead_passes_it_on(
    sqlite_store: Store, blocked: tuple[Writers, threading.Event],
) -> None:
    writers, release = blocked
    writers.queue("interrupted", set_prompt("LF1", "never"))
    writers.queue("follower", set_prompt("LF2", "follower"))
    # As dramatiq's TimeLimit does: the exception is raised in the thread once its wait returns.
    thread_id = writers.threads["interrupted"].ident
    assert ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(Interrupted)) == 1
    release.set()
    writers.join()

    assert isinstance(writers.outcomes["interrupted"], Interrupted)
    assert writers.outcomes["follower"] == 1
    assert not writers.group.leading
    assert prompts(sqlite_store)["LF1"] is None


def test_batches_run_on_one_kept_connection_that_close_gives_back(sqlite_store: Store) -> None:
    sqlite_store.items.create([NewItem("KEPT", "/a")])
    group = sqlite_store.items.group
    pool = sqlite_store.engine.pool

    for prompt in ("one", "two", "three"):
        assert group.run(set_prompt("KEPT", prompt)) == 1
    assert pool.checkedout() == 1  # type: ignore[attr-defined]

    group.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert group.run(set_prompt("KEPT", "after close")) == 1
    assert prompts(sqlite_store) == {"KEPT": "after close"}


def test_a_forked_child_writes_on_a_connection_of_its_own(sqlite_store: Store) -> None:
    sqlite_store.items.create([NewItem("PARENT", "/a"), NewItem("CHILD", "/a")])
    group = sqlite_store.items.group
    assert group.run(set_prompt("PARENT", "before fork")) == 1
    inherited = group._kept

    pid = os.fork()
    if pid == 0:  # The child: its parent's kept connection must not be touched.
        code = 1
        try:
            wrote = group.run(set_prompt("CHILD", "from child")) == 1
            code = 0 if wrote and group._kept is not inherited else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert group.run(set_prompt("PARENT", "after fork")) == 1
    assert prompts(sqlite_store) == {"PARENT": "after fork", "CHILD": "from child"}


def set_prompt_on_driver(item_id: str, prompt: str, *, then_fail: bool = False) -> Callable[[Connection], int]:
    """A write on the driver's cursor only, as the step writes are: SQLAlchemy begins no transaction for it."""
    def write(connection: Connection) -> int:
        cursor = driver_cursor(connection)
        cursor.execute("UPDATE items SET prompt = ? WHERE id = ?", (prompt, item_id))
        if then_fail:
            raise ValueError("refused after its change")
        return int(cursor.rowcount)

    return write


def test_driver_writes_commit_once_and_a_refused_one_leaves_nothing(
    sqlite_store: Store, blocked: tuple[Writers, threading.Event],
) -> None:
    # Given a batch of writes on the driver's cursor behind a blocked leader, one of which fails after its change
    writers, release = blocked
    writers.queue("first", set_prompt_on_driver("LF1", "first"))
    writers.queue("refused", set_prompt_on_driver("LF2", "refused", then_fail=True))
    writers.queue("last", set_prompt_on_driver("LF3", "last"))

    # When the batch runs
    release.set()
    writers.join()

    # Then the others are committed and the refused write's change is rolled back, in the batch and alone
    assert isinstance(writers.outcomes["refused"], ValueError)
    assert (writers.outcomes["first"], writers.outcomes["last"]) == (1, 1)
    assert prompts(sqlite_store) == {"LF0": "leader", "LF1": "first", "LF2": None, "LF3": "last", "LF4": None}
    # And the next write starts clean, on a connection with no transaction left open
    assert sqlite_store.items.group.run(set_prompt_on_driver("LF4", "after")) == 1
    assert prompts(sqlite_store)["LF4"] == "after"
