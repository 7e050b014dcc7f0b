"""Process liveness, by pid and by process group, that does not count zombies as alive.

On Linux ``/proc`` is read, because a zombie still answers ``kill(pid, 0)`` and an orphan
whose parent never reaps it stays a zombie. Elsewhere, signal 0 is the best there is.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Collection
from pathlib import Path

PROC = Path("/proc")

#: How often a stopping process is looked at, in seconds.
POLL_INTERVAL_S = 0.05

#: ``/proc/<pid>/stat`` states of a process that has exited.
EXITED_STATES = frozenset({"Z", "X", "x"})

#: The state ``/proc/net/tcp`` gives a listening socket.
LISTEN_STATE = "0A"

#: This process's pid, set again in a child forked by ``os.fork`` (dramatiq's and gunicorn's workers).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """Return this process's pid, as ``os.getpid`` does, without a system call.

    glibc no longer caches the pid, so each ``os.getpid`` is a system call; the per-message
    paths (each metric's value, each progress event, each status write's worker name) asked
    for it about ten times a message (issue #13). A process started by ``fork`` without
    ``os.fork`` (C code forking without exec) would keep its parent's pid here.
    """
    return _pid


def stat_fields(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name, or None if gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are plain.
    return stat.rsplit(")", 1)[1].split()


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid runs (a zombie does not)."""
    if PROC.is_dir():
        fields = stat_fields(pid)
        return fields is not None and fields[0] not in EXITED_STATES
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Return the pids of the live (non-zombie) processes in process group ``pgid`` (Linux)."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        # After the name: state, ppid, pgrp, ...
        if fields is not None and fields[0] not in EXITED_STATES and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Tell whether any process of group ``pgid`` still runs."""
    if PROC.is_dir():
        return bool(group_members(pgid))
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runs_command_with(pid: int, argument: str) -> bool:
    """Tell whether process ``pid`` was started with ``argument`` on its command line.

    Guards against a stale pid file whose pid now belongs to some other program. Where
    ``/proc`` is missing this cannot be checked, and True is returned.
    """
    if not PROC.is_dir():
        return True
    try:
        command = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return argument.encode() in command


def listens_on(pid: int, port: int) -> bool:
    """Tell whether process ``pid`` holds a TCP socket listening on ``port`` (any address, IPv4 or IPv6).

    Reads ``/proc/<pid>/net/tcp*`` for the listening sockets on the port and looks for one of
    them among the process's open files, so a port another program holds does not count.
    Where ``/proc`` is missing this cannot be checked, and True is returned.
    """
    if not PROC.is_dir():
        return True
    sockets = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            # sl, local address (hex ip:port), remote address, state (0A: LISTEN), ..., inode
            fields = row.split()
            if fields[3] == LISTEN_STATE and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    if not sockets:
        return False
    try:
        descriptors = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(descriptor) in sockets:
                return True
        except OSError:
            continue
    return False


def stop_processes(pids: Collection[int], *, group: bool, timeout_s: float, kill_wait_s: float = 5.0,
                   term_leader_only: bool = False) -> list[int]:
    """Stop processes (or whole process groups) with SIGTERM, then SIGKILL at the deadline.

    SIGTERM lets dramatiq and gunicorn finish what they hold; whatever still runs after
    ``timeout_s`` is killed, and waited for up to ``kill_wait_s`` more.

    Args:
        group: each pid leads a process group: wait for the whole group, and kill it at the deadline.
        term_leader_only: send SIGTERM to the group's leader alone, which passes it on to its
            children once. A dramatiq worker process that gets SIGTERM twice (once from the
            group signal, once from its master) abandons its running messages at once.

    Returns:
        The pids (or group ids) that had to be killed.
    """
    alive = group_alive if group else pid_alive

    def signal_all(targets: Collection[int], signum: signal.Signals) -> None:
        send = os.killpg if group and not (signum == signal.SIGTERM and term_leader_only) else os.kill
        for target in targets:
            try:
                send(target, signum)
            except ProcessLookupError:
                pass

    def wait(targets: Collection[int], seconds: float) -> list[int]:
        deadline = time.monotonic() + seconds
        waiting = [target for target in targets if alive(target)]
        while waiting and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
            waiting = [target for target in waiting if alive(target)]
        return waiting

    signal_all(pids, signal.SIGTERM)
    killed = wait(pids, timeout_s)
    signal_all(killed, signal.SIGKILL)
    wait(killed, kill_wait_s)
    return killed
