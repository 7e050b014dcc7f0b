"""Run a benchmark on a share of the machine's CPU: the regime of a slower or busier machine.

On a quiet 2-core AMD EPYC machine dramatiq's no-op drain is bound by its Redis round trips, not
by CPU, so autolog's drain (which does more CPU work a message) reaches it; on an Intel Xeon
machine with CPU steal both are bound by CPU, and the ratio falls to their CPU per message
(0.19-0.39×, issue #13). A CFS quota on a cgroup (Linux's ``cpu`` controller) makes this machine
CPU-bound the same way, so the slow regime can be measured, and a change tried in it, here.

Needs a writable ``cpu`` controller: cgroup v1's ``/sys/fs/cgroup/cpu``, or cgroup v2 with ``cpu``
delegated to this process's cgroup (root on the machines of this workplace).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

#: The quota's period, in µs: short, as a hypervisor's time slices are, so a thread holding the
#: GIL is stopped for at most a few milliseconds at a time.
PERIOD_US = 10_000


def _own_cgroup() -> tuple[Path, bool] | None:
    """Return this process's cgroup with a ``cpu`` controller it may give a child, and whether it is v1's."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            directory = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
            if (directory / "cpu.cfs_quota_us").exists():
                return directory, True
        elif hierarchy == "0":
            directory = Path("/sys/fs/cgroup") / path.lstrip("/")
            controls = directory / "cgroup.subtree_control"
            if controls.exists() and "cpu" in controls.read_text().split():
                return directory, False
    return None


def _writable_cgroup() -> tuple[Path, bool] | None:
    """Return ``_own_cgroup()`` if this process may make a child cgroup there, else None."""
    own = _own_cgroup()
    return own if own is not None and os.access(own[0], os.W_OK) else None


def cpu_quota_available() -> bool:
    """Tell whether ``cpu_share`` can run here (a writable ``cpu`` controller)."""
    return _writable_cgroup() is not None


@contextlib.contextmanager
def cpu_share(cpus: float) -> Iterator[None]:
    """Run the block, and every process it starts, on ``cpus`` CPUs in all (0.4: 40 % of one core).

    This process moves into a new cgroup with that CFS quota, and back out after the block;
    processes started in the block must have ended by then (the cgroup is removed).

    Raises:
        SystemExit: no writable ``cpu`` controller (not root, or a cgroup v2 without ``cpu`` delegated).
    """
    own = _writable_cgroup()
    if own is None:
        raise SystemExit("--cpus needs a writable cgroup cpu controller (/sys/fs/cgroup/cpu, or cgroup v2 "
                         "with cpu delegated): run as root on a Linux machine")
    parent, v1 = own
    group = parent / f"autolog-bench-{os.getpid()}"
    group.mkdir()
    try:
        quota_us = max(1_000, round(cpus * PERIOD_US))
        if v1:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota_us))
        else:
            (group / "cpu.max").write_text(f"{quota_us} {PERIOD_US}")
        (group / "cgroup.procs").write_text(str(os.getpid()))
        try:
            yield
        finally:
            (parent / "cgroup.procs").write_text(str(os.getpid()))
    finally:
        group.rmdir()
