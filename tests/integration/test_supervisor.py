"""The pool supervisor: a pool that died is started again with backoff; one that keeps dying is left marked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from autolog.settings import Settings
from ops.cli import main
from ops.pools import PoolManager
from ops.supervisor import PoolSupervisor
from tests.conftest import wait_for


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def crashing(tmp_path: Path) -> Iterator[PoolManager]:
    """Pools whose ``dramatiq`` dies at once, as a pool with a broken deployment does; stopped and reaped after."""
    binary = tmp_path / "dramatiq"
    binary.write_text("#!/bin/sh\nexit 3\n")
    binary.chmod(0o755)
    manager = PoolManager(Settings(var_dir=tmp_path / "var"), program=[str(binary)])
    yield manager
    # A pool started last may not have exited yet: reap it here, not in a later test's garbage collection.
    manager.stop(timeout_s=5)


def test_a_dead_pool_is_restarted_with_doubling_backoff_then_marked_as_crash_looping(crashing: PoolManager) -> None:
    clock = Clock()
    supervisor = PoolSupervisor(crashing, max_restarts=3, window_s=600, base_backoff_s=1, clock=clock)
    process = crashing.group_processes[crashing.select(["assess"])[0].group]
    crashing.start(["assess"])

    def died() -> bool:
        return process.pid() is None

    restarts = []
    for wait_s in (0, 1, 2):
        wait_for(died, what="the pool to die")
        clock.now += wait_s - 0.01
        assert supervisor.check() == ([] if wait_s else ["assess"])
        if wait_s:
            clock.now += 0.01
            assert supervisor.check() == ["assess"]
        restarts.append(process.recorded_pid())

    # A fourth death within the window: not restarted, marked, and shown in its status
    wait_for(died, what="the pool to die")
    clock.now += 60
    assert supervisor.check() == []
    (status,) = crashing.status(["assess"])
    assert not status.alive and status.crash_loop and "died 4 times" in status.crash_loop
    assert len(set(restarts)) == 3

    # A start by hand clears the mark, and supervision resumes
    crashing.start(["assess"])
    assert crashing.status(["assess"])[0].crash_loop is None


def test_a_pool_stopped_on_purpose_or_never_started_is_left_alone(crashing: PoolManager) -> None:
    supervisor = PoolSupervisor(crashing, clock=Clock())
    process = crashing.group_processes[crashing.select(["frames"])[0].group]
    crashing.start(["frames"])
    wait_for(lambda: process.pid() is None, what="the pool to die")
    # (a group is wanted while one of its pools is: it keeps no mark of its own)
    assert process.wanted and sorted(path.name for path in crashing.run_dir.glob("*.wanted")) == ["frames.wanted"]
    crashing.stop(["frames"], timeout_s=1)

    assert supervisor.check() == []
    assert not process.wanted and process.recorded_pid() is None


def test_workers_report_exits_1_while_a_started_pool_is_down_or_crash_looping_and_0_once_stopped_on_purpose(
    crashing: PoolManager, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given `autolog workers` reading this machine's pools, and one pool started whose group died
    monkeypatch.setenv("AUTOLOG_VAR_DIR", str(crashing.settings.var_dir))
    process = crashing.group_processes[crashing.select(["assess"])[0].group]
    crashing.start(["assess"])
    wait_for(lambda: process.pid() is None, what="the pool to die")

    # Then the report exits 1 and names it (the pools never started here are not down)
    assert main(["workers"]) == 1
    assert capsys.readouterr().err.startswith("autolog: pools down: assess (")

    # and so while the supervisor has given up on it
    assert PoolSupervisor(crashing, max_restarts=0, clock=Clock()).check() == []
    assert main(["workers", "--json"]) == 1
    (assess,) = [pool for pool in json.loads(capsys.readouterr().out) if pool["name"] == "assess"]
    assert assess["crash_loop"] and not assess["alive"]

    # When it is stopped on purpose, it is no longer down
    crashing.stop(["assess"], timeout_s=1)
    assert main(["workers"]) == 0
    assert capsys.readouterr().err == ""
