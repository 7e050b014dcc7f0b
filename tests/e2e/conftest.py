"""Fixtures of the end-to-end tests: worker processes the test starts, faults and stops."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from autolog.context import Context
from autolog.settings import Settings
from autolog.store import Store
from tests.conftest import REPO
from tests.e2e.workers import Start, stop_process


@contextmanager
def installed(settings: Settings, database_url: str) -> Iterator[Context]:
    """A context on ``database_url``, installed so this process's enqueues are recorded; closed after."""
    from actors import broker, services

    store = Store.open(database_url)
    built = Context.build(settings, store=store)
    broker.flush_all()
    services().install(built)
    try:
        yield built
    finally:
        services().uninstall()
        store.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The SQLite database the test's worker processes and the test share."""
    return f"sqlite:///{tmp_path / 'autolog.db'}"


@pytest.fixture
def processes_context(settings: Settings, database_url: str, redis_client: object) -> Iterator[Context]:
    """A context on the test's database, installed so this process's enqueues are recorded."""
    with installed(settings, database_url) as context:
        yield context


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
