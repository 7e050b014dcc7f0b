"""CPU time of other processes, read from ``/proc`` (Linux): what the benchmarks add to their own."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")

#: Clock ticks a second: the unit of ``/proc/<pid>/stat``'s CPU times.
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def processes_cpu_s(pids: Iterable[int]) -> float:
    """Return the CPU seconds (user + system) the processes have used so far; one that is gone counts nothing."""
    total = 0
    for pid in pids:
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS_PER_S


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
