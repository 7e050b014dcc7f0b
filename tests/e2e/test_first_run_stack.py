"""First run through the real commands: ``autolog demo`` and ``autolog up`` make the API key and the API serves it.

Each test runs the installed ``autolog`` as a subprocess with no ``AUTOLOG_API_KEYS`` and no
``REDIS_URL`` (a private Redis under the test's var folder), on its own ports, and stops the
stack with ``autolog down`` at the end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from autolog.settings import Settings
from autolog.statuses import STEPS
from ops.api_server import ApiServer
from ops.demo import DEMO_CLIPS
from ops.discovery import DiscoveryProcess
from tests.conftest import SampleClips, free_port_block, wait_for
from tests.web.conftest import http

pytestmark = pytest.mark.slow

#: The installed command, run by its path as a fresh clone's user would (`.venv/bin/autolog`).
AUTOLOG = str(Path(sys.executable).parent / "autolog")

KEY_LINE = re.compile(r"API key \(made because AUTOLOG_API_KEYS is unset; kept in (\S+), "
                      r"readable only by you; shown this once\): (\S+)")


@dataclass(frozen=True)
class FreshClone:
    """A var folder, media root and ports of their own; the environment the commands run in."""

    root: Path
    env: dict[str, str]
    settings: Settings

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AUTOLOG, *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=300, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture
def fresh(tmp_path: Path, test_media: SampleClips) -> Iterator[FreshClone]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AUTOLOG_") and name not in ("REDIS_URL", "DATABASE_URL")}
    # No autolog on PATH, as in a fresh clone before the venv is activated.
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep)
                                  if not (Path(part) / "autolog").exists())
    base = free_port_block(len(STEPS) + 2)
    env.update({"AUTOLOG_VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{tmp_path / 'autolog.db'}",
                "AUTOLOG_MEDIA_ROOTS": str(tmp_path / "media"), "AUTOLOG_NAMESPACE": f"first-run-{tmp_path.name}",
                "AUTOLOG_API_PORT": str(base), "AUTOLOG_METRICS_PORT_BASE": str(base + 1),
                "AUTOLOG_API_WORKERS": "1", "AUTOLOG_WATCH_FOLDERS": "off"})
    for step in STEPS:
        env[f"AUTOLOG_POOL_{step.name.upper()}_THREADS"] = "1"
    demo = tmp_path / "media" / "demo"
    demo.mkdir(parents=True)
    for name in (*DEMO_CLIPS, "manifest.json"):
        os.link(test_media.path(name), demo / name)
    clone = FreshClone(root=tmp_path, env=env, settings=Settings.from_env(env))
    try:
        yield clone
    finally:
        clone.run("down", "--timeout", "10")


def the_printed_key(output: str, clone: FreshClone) -> str:
    (match,) = KEY_LINE.findall(output)
    path, key = match
    key_file = clone.settings.api_key_file
    assert Path(path) == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == f"{key}\n"
    return key


def test_demo_on_a_fresh_clone_makes_and_prints_the_key_once_and_the_api_accepts_it(fresh: FreshClone) -> None:
    # When `make demo` runs (`.venv/bin/autolog demo`) with no key configured
    demo = fresh.run("demo", "--timeout", "1")

    # Then it prints the key once, kept owner-only in var/api_key, and the served API accepts it
    key = the_printed_key(demo.stdout, fresh)
    assert http("GET", f"{fresh.api_url}/queues", headers={"X-API-Key": key})[0] == 200
    assert http("GET", f"{fresh.api_url}/queues")[0] == 401
    # and its last words name the command as it was run, since `autolog` is not on PATH
    assert f"stop it with `{AUTOLOG} down`" in demo.stdout

    # and `up` afterwards neither makes nor shows another key
    again = fresh.run("up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "API key" not in again.stdout
    assert http("GET", f"{fresh.api_url}/queues", headers={"X-API-Key": key})[0] == 200

    # and `down` says it stopped the API and the sweep too
    down = fresh.run("down", "--timeout", "10")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "sweep: stopped" in down.stdout and f"API: stopped ({fresh.api_url})" in down.stdout


def test_up_on_a_stack_whose_api_started_without_a_key_restarts_the_api_so_the_new_key_works(
    fresh: FreshClone,
) -> None:
    # Given an API running with no key configured (as an older demo left it)
    old = ApiServer(fresh.settings, env={name: value for name, value in fresh.env.items()
                                          if name.startswith("AUTOLOG_") or name == "DATABASE_URL"})
    first_pid = old.start().pid
    assert http("GET", f"{fresh.api_url}/queues", headers={"X-API-Key": "anything"})[0] == 401

    # When `autolog up` makes the key
    up = fresh.run("up")

    # Then the API was restarted, and the key it printed works against it
    assert up.returncode == 0, up.stdout + up.stderr
    key = the_printed_key(up.stdout, fresh)
    assert "restarted to serve the new API key" in up.stdout
    wait_for(lambda: old.process.exited() is not None, what="the API started without a key to have exited")
    assert old.status().pid not in (None, first_pid)
    assert http("GET", f"{fresh.api_url}/queues", headers={"X-API-Key": key})[0] == 200
    assert f"stop it with `{AUTOLOG} down`" in up.stdout


def accepts_connections(port: int) -> bool:
    """Tell whether something accepts a TCP connection on the loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_up_with_the_api_port_taken_by_another_process_exits_1_naming_it_each_time(fresh: FreshClone) -> None:
    # Given another program serving HTTP on the API's port
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(fresh.settings.api_port), "--bind", "127.0.0.1"],
                             cwd=fresh.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: accepts_connections(fresh.settings.api_port), what="the other server to listen")

        for attempt in ("first", "second"):
            # When `autolog up` runs
            up = fresh.run("up")

            # Then it exits 1 and says the API does not run, naming the port's holder and gunicorn's log
            assert up.returncode == 1, f"{attempt} up: {up.stdout}{up.stderr}"
            (api_line,) = [line for line in up.stdout.splitlines() if line.startswith("API: ")]
            assert "NOT RUNNING" in api_line, api_line
            assert f"port {fresh.settings.api_port} is taken by another process" in api_line
            assert str((fresh.settings.var_dir / "log" / "api.log").resolve()) in api_line
            assert "The stack is NOT fully running" in up.stdout
        # and the other program still has its port
        assert other.poll() is None
    finally:
        other.terminate()
        other.wait(timeout=10)


def test_down_on_a_stack_already_down_says_nothing_is_running_without_warnings(fresh: FreshClone) -> None:
    # Given a stack brought up and down
    up = fresh.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    first = fresh.run("down", "--timeout", "10")
    assert first.returncode == 0, first.stdout + first.stderr

    # When `autolog down` runs again
    again = fresh.run("down", "--timeout", "10")

    # Then it says calmly that nothing runs, and warns of nothing
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout == "Nothing is running: the stack is already down.\n"
    assert again.stderr == ""


def test_down_after_the_sweep_died_says_so_and_names_its_log(fresh: FreshClone) -> None:
    # Given a stack whose sweep was killed behind its back (the OOM killer, a slip of `kill`)
    up = fresh.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    sweep = DiscoveryProcess(fresh.settings)
    pid = sweep.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not sweep.status().running, timeout_s=10, what="the sweep to be gone")

    # When `autolog down` runs
    down = fresh.run("down", "--timeout", "10")

    # Then it stops the rest, and says the sweep had died before, where to read why, and that it did not stop it
    assert down.returncode == 0, down.stdout + down.stderr
    assert "sweep: stopped" not in down.stdout
    (line,) = [line for line in down.stdout.splitlines() if line.startswith("sweep: ")]
    assert line.startswith("sweep: had stopped on its own"), line
    assert str((fresh.settings.var_dir / "log" / "discovery.log").resolve()) in line
    assert f"API: stopped ({fresh.api_url})" in down.stdout
    # and a second `down` finds nothing, the sweep no longer counted as started
    assert fresh.run("down", "--timeout", "10").stdout == "Nothing is running: the stack is already down.\n"
