"""Process liveness by pid and by group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autolog.processes import group_alive, group_members, pid_alive, runs_command_with


def test_this_process_is_alive_and_in_its_group() -> None:
    assert pid_alive(os.getpid())
    assert os.getpid() in group_members(os.getpgrp())
    assert group_alive(os.getpgrp())


def test_a_reaped_child_is_not_alive() -> None:
    child = subprocess.Popen(["true"], start_new_session=True)
    child.wait()

    assert not pid_alive(child.pid)
    assert not group_alive(child.pid)


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"], start_new_session=True)
    try:
        # Not reaped yet: wait for exit without collecting the status (WNOWAIT leaves a zombie).
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)

        assert not pid_alive(child.pid)
        assert not group_alive(child.pid)
    finally:
        child.wait()


def test_a_pid_is_matched_against_its_command_line() -> None:
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        # Until the child has exec'd, its command line is still this interpreter's.
        deadline = time.monotonic() + 10
        while not runs_command_with(child.pid, "30"):
            assert time.monotonic() < deadline, "sleep never showed up in /proc"
            time.sleep(0.01)

        assert not runs_command_with(child.pid, "/var/run/file_info.pid")
    finally:
        child.kill()
        child.wait()


def test_a_worker_process_whose_master_died_before_it_asked_to_stop_with_it_gets_sigterm_at_once() -> None:
    # The death signal covers a master that dies later; one already gone (here: "pid 1 is not my parent") is
    # caught by the check after prctl.
    code = "from actors.lanes import stop_with_parent; stop_with_parent(1); print('not stopped')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])

    assert (run.returncode, run.stdout) == (-signal.SIGTERM, "")
