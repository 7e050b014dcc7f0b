"""gunicorn's own logs (error and access) are JSON lines, like every other log, and carry no key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import wait_for
from tests.web.conftest import KEY, http


def log_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_gunicorn_writes_its_start_and_access_logs_as_json_lines(serve_api: Callable[[dict[str, str]], str],
                                                               tmp_path: Path) -> None:
    # Given the API served by real gunicorn
    base = serve_api({"AUTOLOG_LOG_FORMAT": "json", "AUTOLOG_LOG_LEVEL": "INFO"})
    log_file = tmp_path / "api-var" / "log" / "api.log"

    # When a request with a key is answered
    assert http("GET", f"{base}/queue/status", headers={"X-API-Key": KEY})[0] == 200

    # Then its access line, and every other line gunicorn wrote, is one JSON object with no key in it
    def access_logged() -> bool:
        return any('"gunicorn.access"' in line and "/queue/status" in line for line in log_lines(log_file))

    wait_for(access_logged, timeout_s=20, what="the access log line")
    records: list[dict[str, Any]] = [json.loads(line) for line in log_lines(log_file)]
    loggers = {record["logger"] for record in records}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers
    access = [record for record in records if record["logger"] == "gunicorn.access"]
    assert any('"GET /queue/status HTTP/1.1" 200' in record["message"] for record in access)
    assert KEY not in log_file.read_text()


def test_gunicorn_opens_no_control_socket_another_stack_of_the_user_would_take(
    serve_api: Callable[[dict[str, str]], str], tmp_path: Path,
) -> None:
    # gunicorn 25.1+ opens one at a per-user default path unless told not to: two stacks would share it
    home, runtime = tmp_path / "home", tmp_path / "run"
    runtime.mkdir()
    base = serve_api({"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)})

    assert http("GET", f"{base}/health")[0] in (200, 503)
    assert not (runtime / "gunicorn.ctl").exists() and not (home / ".gunicorn").exists()
