"""Stopping real gunicorn while a review page holds a progress stream open."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from autolog.local_redis import free_port
from autolog.settings import Settings
from ops.api_server import ApiServer
from tests.web.conftest import KEY


def test_stopping_the_api_ends_an_open_progress_stream_cleanly_without_a_kill(tmp_path: Path) -> None:
    # Given the API under gunicorn, its graceful timeout (30 s) longer than the stop's deadline
    env = {"AUTOLOG_API_PORT": str(free_port()), "AUTOLOG_API_WORKERS": "1", "AUTOLOG_API_KEYS": KEY,
           "AUTOLOG_VAR_DIR": str(tmp_path / "api-var")}
    server = ApiServer(Settings.from_env({**os.environ, **env}), env=env)
    base = server.start().url
    try:
        # And a page's progress stream, open and quiet
        request = urllib.request.Request(f"{base}/ui/progress?ids=NOTHING-YET", headers={"X-API-Key": KEY})
        with urllib.request.urlopen(request, timeout=60) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            assert stream.readline() == b"retry: 2000\n"

            # When the API is told to stop
            killed = server.process.stop(timeout_s=20, group=True, term_leader_only=True)

            # Then the stream ends as a whole body (a kill would cut it: IncompleteRead) and nothing was killed
            rest = stream.read()
        assert not killed, "gunicorn had to be killed: the stream held its worker past the deadline"
        assert rest.strip(b"\n") in (b"", b": keep-alive")
    finally:
        server.stop(timeout_s=5)
