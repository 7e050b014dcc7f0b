"""prometheus_client's multiprocess mode, switched on explicitly instead of by import order.

prometheus_client chooses where metric values live when ``prometheus_client.values`` is
first imported: in memory, or in per-process files under ``PROMETHEUS_MULTIPROC_DIR``. A
worker process that imported it (through any library) before that variable was set would
silently keep its counts to itself. ``enable_multiprocess`` makes the choice at process boot
instead, whatever was imported first, and ``prune_stale_files`` does the "wipe the folder at
start" that a ``dramatiq`` master cannot do for us, without touching live siblings' files.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_process_dead

from autolog.processes import current_pid, pid_alive

#: The files prometheus_client writes: ``<type>[_<gauge mode>]_<pid>.db``.
_VALUE_FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")

#: Taken while pruning, so a sibling never deletes files another sibling has just created.
_LOCK_FILE = ".prune.lock"


def enable_multiprocess(directory: Path) -> None:
    """Keep this process's metric values in files under ``directory`` from now on.

    Metrics created afterwards in this process write there, even if ``prometheus_client``
    was imported earlier without ``PROMETHEUS_MULTIPROC_DIR``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    # NOTE(metrics): prometheus_client's file-backed values read this variable when they open
    # their file, so it is written here, at process boot, not read at import anywhere.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # NOTE(metrics): ``values.ValueClass`` is what every metric instantiates for its samples;
    # installing a fresh file-backed class is what prometheus_client itself does at import
    # when the variable is set. tests/unit/observability pins this against upgrades.
    # Each value asks for the pid on every change (to start new files in a forked child): the fork-aware
    # ``current_pid``, not a system call each time (issue #13).
    values.ValueClass = values.MultiProcessValue(current_pid)  # type: ignore[no-untyped-call]


def is_multiprocess() -> bool:
    """Tell whether new metrics in this process are file-backed."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prune_stale_files(
    directory: Path, *, own_pid: int | None = None, is_alive: Callable[[int], bool] = pid_alive,
) -> list[Path]:
    """Delete the value files of processes that are gone; return what was deleted.

    Args:
        directory: the multiprocess folder.
        own_pid: also delete this pid's files: a process just started owns none yet, so any
            file with its pid was left by an earlier process that had the same pid.
        is_alive: tells whether a pid is running.
    """
    directory.mkdir(parents=True, exist_ok=True)
    removed: list[Path] = []
    with open(directory / _LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for path in sorted(directory.iterdir()):
            match = _VALUE_FILE.match(path.name)
            if match is None:
                continue
            pid = int(match.group(1))
            if pid == own_pid or (pid != os.getpid() and not is_alive(pid)):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def mark_process_dead(directory: Path, pid: int | None = None) -> None:
    """Drop a finished process's live gauges (messages in progress) from the folder."""
    if directory.is_dir():
        _mark_process_dead(pid if pid is not None else os.getpid(), str(directory))  # type: ignore[no-untyped-call]


def multiprocess_registry(directory: Path) -> CollectorRegistry:
    """Return a registry that sums the values every process wrote under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry
