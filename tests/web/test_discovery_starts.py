"""Concurrent ``POST /run/lf_discovery`` on a real gunicorn with two workers start one sweep, and ``down`` stops it."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autolog.processes import pid_alive
from autolog.settings import Settings
from ops.stack import Stack
from tests.conftest import wait_for
from tests.web.conftest import KEY, http


def sweeps(pid_file: Path) -> list[int]:
    """The live processes started with ``pid_file`` on their command line (sweeps of this var folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(pid_file).encode() in command and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_eight_concurrent_starts_leave_one_sweep_and_down_leaves_none(
    serve_api: Callable[[dict[str, str]], str], tmp_path: Path, redis_client: object,
) -> None:
    env = {"AUTOLOG_API_WORKERS": "2", "DATABASE_URL": f"sqlite:///{tmp_path / 'starts.db'}"}
    base = serve_api(env)
    settings = Settings.from_env({**os.environ, **env, "AUTOLOG_VAR_DIR": str(tmp_path / "api-var")})
    pid_file = (tmp_path / "api-var" / "run" / "discovery.pid").resolve()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: http("POST", f"{base}/run/lf_discovery", headers={"X-API-Key": KEY}),
                                range(8)))

    assert {status for status, _ in answers} == {200}
    assert len({body["pid"] for _, body in answers}) == 1
    assert sweeps(pid_file) == [answers[0][1]["pid"]]

    Stack(settings).down(timeout_s=10)
    wait_for(lambda: not sweeps(pid_file), what="every sweep to stop")
