"""Fixtures of the end-to-end tests: worker processes the test starts, faults and stops."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.workers import Start, stop_process


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Start]:
    """Start processes in their own groups, logging to ``workers.log``; stop them after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (tmp_path / "workers.log").open("ab") as out:
            started.append(subprocess.Popen(command, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True))
        return started[-1]

    yield start
    for process in started:
        stop_process(process)
