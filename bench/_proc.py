"""CPU time and trees of other processes, read from ``/proc`` (Linux): what the benchmarks add to their own."""

from __future__ import annotations

import os
from collections.abc import Iterable

from autolog.processes import PROC, stat_fields

#: Clock ticks a second: the unit of ``/proc/<pid>/stat``'s CPU times.
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def processes_cpu_s(pids: Iterable[int]) -> float:
    """Return the CPU seconds (user + system) the processes have used so far; one that is gone counts nothing."""
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS_PER_S


def descendants(pid: int) -> list[int]:
    """Return the pids of every process below ``pid`` (children, theirs, ...), from one read of ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))  # after the name: state, ppid
    found: list[int] = []
    below = children.get(pid, [])
    while below:
        found += below
        below = [child for parent in below for child in children.get(parent, [])]
    return found


def pids_named(prefix: str) -> list[int]:
    """Return the pids of the processes whose name (``/proc/<pid>/comm``) starts with ``prefix``."""
    found = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text()
        except OSError:  # gone meanwhile
            continue
        if name.startswith(prefix):
            found.append(int(entry.name))
    return found
