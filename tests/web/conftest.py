"""Web fixtures: the API built on the session's real Redis and a per-test SQLite store.

``web`` is imported inside the fixtures: it imports ``actors``, whose broker is built from
the environment that the root conftest's ``pytest_configure`` sets after this file loads.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from falcon.testing import TestClient

from autolog.settings import Settings
from autolog.store import Store

if TYPE_CHECKING:
    from web.app import AutologApi

#: The API keys, MinIO token and ingest secret the test API is configured with.
KEY, OTHER_KEY = "test-key-0123456789", "second-key-9876543210"
MINIO_TOKEN = "minio-token-abcdef"
INGEST_SECRET = "ingest-secret-xyz"


@pytest.fixture
def api_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The session's settings with keys, webhook secrets and per-test var and artifact folders."""
    return settings.replace(api_keys=(KEY, OTHER_KEY), minio_webhook_token=MINIO_TOKEN,
                            ingest_webhook_secret=INGEST_SECRET, var_dir=tmp_path / "var",
                            artifacts_dir=tmp_path / "var" / "artifacts")


@pytest.fixture
def api(api_settings: Settings, sqlite_store: Store, redis_client: redis.Redis) -> Iterator[AutologApi]:
    """The API on the private Redis (flushed) and the test's SQLite store."""
    from actors import broker
    from web.app import create_app

    broker.flush_all()
    app = create_app(api_settings, store=sqlite_store)
    yield app
    app.services.discovery.stop()
    app.close()


@pytest.fixture
def client(api: AutologApi) -> TestClient:
    """A test client that sends the API key."""
    return TestClient(api, headers={"X-API-Key": KEY})


@pytest.fixture
def anonymous(api: AutologApi) -> TestClient:
    """A test client without credentials."""
    return TestClient(api)


@pytest.fixture
def media_root(api_settings: Settings) -> Path:
    """The first media root."""
    return api_settings.resolved_media_roots[0]


@pytest.fixture
def media_file(media_root: Path, unique_id: Callable[[str], str]) -> Callable[[str], Path]:
    """Make a small file under the media root named after an id; returns its path."""
    def make(item_id: str, suffix: str = ".mp4") -> Path:
        path = media_root / "web" / f"{item_id}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not really footage")
        return path

    return make


def http(method: str, url: str, *, body: object = None, headers: dict[str, str] | None = None,
         timeout_s: float = 30.0) -> tuple[int, Any]:
    """Send one request with urllib; return the status and the decoded JSON body (or text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as ex:
        status, raw = ex.code, ex.read()
        ex.close()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@pytest.fixture
def serve_api(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """Start real gunicorn serving the API with extra environment; returns its base URL. Stopped after."""
    from autolog.local_redis import free_port
    from ops.api_server import ApiServer

    servers: list[ApiServer] = []

    def start(env: dict[str, str]) -> str:
        full = {"AUTOLOG_API_PORT": str(free_port()), "AUTOLOG_API_WORKERS": "1", "AUTOLOG_API_KEYS": KEY,
                "AUTOLOG_VAR_DIR": str(tmp_path / "api-var"), **env}
        settings = Settings.from_env({**os.environ, **full})
        server = ApiServer(settings, env=full)
        servers.append(server)
        return server.start().url

    yield start
    for server in servers:
        server.stop(timeout_s=20)
