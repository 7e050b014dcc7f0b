"""Shared fixtures: a private Redis, SQLite and PostgreSQL stores, generated clips, workers.

The private Redis starts in ``pytest_configure``, before any test module imports
``actors``, because the broker is built from the environment when ``actors`` is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from autolog.local_redis import LocalRedis, free_port
from autolog.settings import Settings
from autolog.statuses import STEPS
from autolog.store import Store

REPO = Path(__file__).resolve().parent.parent

#: PostgreSQL on this machine (trust auth on loopback); each test gets its own database.
POSTGRES_ADMIN_URL = os.environ.get("AUTOLOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

_SESSION: dict[str, Any] = {}


def free_port_block(size: int) -> int:
    """Return the first of ``size`` consecutive loopback ports that are all free now."""
    while True:
        base = free_port()
        with contextlib.ExitStack() as bound:
            try:
                for port in range(base, base + size):
                    sock = bound.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base


def pytest_configure(config: pytest.Config) -> None:
    base = Path(tempfile.mkdtemp(prefix="autolog-tests-"))
    server = LocalRedis(base / "redis", persist=False)
    url = server.start()
    (base / "media").mkdir()
    for name in ("DATABASE_URL", "AUTOLOG_DATABASE_URL", "AUTOLOG_API_KEYS", "GEMINI_API_KEY",
                 "AUTOLOG_GEMINI_API_KEY"):
        os.environ.pop(name, None)
    os.environ.update({
        "REDIS_URL": url,
        "AUTOLOG_VAR_DIR": str(base / "var"),
        "AUTOLOG_MEDIA_ROOTS": str(base / "media"),
        "AUTOLOG_NAMESPACE": "autolog-test",
        "AUTOLOG_MAX_RETRIES": "2",
        "AUTOLOG_MIN_BACKOFF_MS": "50",
        "AUTOLOG_MAX_BACKOFF_MS": "200",
        "AUTOLOG_HEARTBEAT_TIMEOUT_MS": "3000",
        "AUTOLOG_MAINTENANCE_CHANCE": "1000000",
        # Clips made by a test are new files: step 1 waits this long for them to settle (default 5 s).
        "AUTOLOG_SOURCE_SETTLE_S": "1",
        # Pool exporters bind base + index; a free block keeps tests clear of a running stack.
        "AUTOLOG_METRICS_PORT_BASE": str(free_port_block(len(STEPS) + 1)),
    })
    _SESSION.update(base=base, redis=server, url=url)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "redis" in _SESSION:
        _SESSION["redis"].stop()
        shutil.rmtree(_SESSION["base"], ignore_errors=True)


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float = 30.0, what: str = "condition", interval_s: float = 0.02
) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
    return result


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """The session's scratch folder: ``media/`` is the media root, ``var/`` the var dir."""
    base: Path = _SESSION["base"]
    return base


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The private Redis every test talks to."""
    url: str = _SESSION["url"]
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the private Redis, flushed before and after the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings() -> Settings:
    """Settings as the workers of this session see them."""
    return Settings.from_env()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in the test's folder."""
    store = Store.open(f"sqlite:///{tmp_path / 'autolog.db'}")
    yield store
    store.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on this machine, dropped after the test."""
    name = f"autolog_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    """A migrated store in a private PostgreSQL database."""
    store = Store.open(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each store test runs against SQLite and against PostgreSQL."""
    fixture = "sqlite_store" if request.param == "sqlite" else "postgres_store"
    chosen: Store = request.getfixturevalue(fixture)
    return chosen


@pytest.fixture
def pool_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis) -> Settings:
    """Settings with a per-test var dir, SQLite file and one-thread pools; worker pools inherit the env."""
    monkeypatch.setenv("AUTOLOG_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'autolog.db'}")
    for step in ("FILE_INFO", "THUMBNAILS", "ASSESS", "ANALYSIS", "FRAMES", "TRANSCRIPTION"):
        monkeypatch.setenv(f"AUTOLOG_POOL_{step}_THREADS", "1")
    return Settings.from_env()


@dataclass(frozen=True)
class SampleClips:
    """The clips made by ``ops/make_test_media.sh`` and the truth about them."""

    root: Path
    manifest: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def test_media(session_dir: Path) -> SampleClips:
    """Generate the deterministic test clips once per session, inside the media root."""
    root = session_dir / "media" / "clips"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(REPO / "ops" / "make_test_media.sh"), str(root)], check=True, capture_output=True)
    return SampleClips(root=root, manifest=json.loads((root / "manifest.json").read_text()))


@dataclass(frozen=True)
class FootageCases:
    """The real-world footage cases made by ``tests/footage_cases/make_cases.sh``, and their truth.

    ``truth`` is ``cases.json`` beside the script: one entry per file name (relative path).
    """

    root: Path
    truth: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def footage_cases(session_dir: Path) -> FootageCases:
    """Make the footage cases once per session, inside the media root (about 5 s)."""
    root = session_dir / "media" / "cases"
    root.mkdir(parents=True, exist_ok=True)
    script = REPO / "tests" / "footage_cases" / "make_cases.sh"
    subprocess.run(["bash", str(script), str(root)], check=True, capture_output=True)
    truth = json.loads((script.parent / "cases.json").read_text())
    return FootageCases(root=root, truth={name: case for name, case in truth.items() if not name.startswith("_")})


@pytest.fixture
def standin() -> Iterator[Any]:
    """A stand-in Gemini ``generateContent`` server on loopback, closed after the test."""
    from tests.gemini_standin import GeminiStandIn

    server = GeminiStandIn()
    yield server
    server.close()


@pytest.fixture
def gemini_client(standin: Any) -> Any:
    """The real google-genai client, pointed at the stand-in, with no SDK retries."""
    # Imported here: google-genai takes ~0.8 s to import, and most tests never use it.
    from google import genai
    from google.genai import types

    return genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url=standin.base_url, timeout=5_000, retry_options=types.HttpRetryOptions(attempts=1)))


@pytest.fixture
def unique_id() -> Callable[[str], str]:
    """Make item ids unique per test, so tests sharing a store never collide."""
    token = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{token}"


@pytest.fixture
def context(settings: Settings, sqlite_store: Store, redis_client: redis.Redis) -> Iterator[Any]:
    """This process's step context on a per-test SQLite store, installed into the broker."""
    from actors import broker, services
    from autolog.context import Context

    built = Context.build(settings, store=sqlite_store)
    broker.flush_all()
    services().install(built)
    yield built
    services().uninstall()


@pytest.fixture
def worker(context: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real dramatiq worker in this process, consuming every queue of the private Redis.

    Booting it switches prometheus_client to multiprocess mode for this process (the metrics
    middleware does that at worker boot); both switches are put back after the test, so
    later tests and the processes they spawn do not inherit them.
    """
    import dramatiq
    from prometheus_client import values

    from actors import broker

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    value_class = values.ValueClass
    running = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    running.start()
    yield running
    running.stop()
    values.ValueClass = value_class


@pytest.fixture
def drain(worker: Any) -> Callable[..., None]:
    """Wait until no message is queued, delayed or in flight, or fail at a deadline.

    Messages are moved into a worker's ack set when fetched and leave it only after the
    pipeline or callback that follows them has enqueued its next message, so "every queue
    and every ack set empty" is a state the pipeline only reaches when it is done.
    """
    from actors import broker

    def wait(timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not _broker_is_idle(broker):
            if time.monotonic() > deadline:
                pytest.fail(f"queues not drained within {timeout_s} s")
            time.sleep(0.02)
        worker.join()

    return wait


#: Idle means no message in any queue, delay queue or ack set. One script, so the check is
#: atomic: read key by key, a message moving from its queue to an ack set could slip between.
_IDLE_SCRIPT = """
for _, key in ipairs(redis.call("keys", ARGV[1] .. ":__acks__.*")) do
    if redis.call("scard", key) > 0 then return 0 end
end
for i = 2, #ARGV do
    if redis.call("llen", ARGV[1] .. ":" .. ARGV[i]) > 0 then return 0 end
end
return 1
"""


def _broker_is_idle(broker: Any) -> bool:
    queues = sorted(broker.get_declared_queues())
    names = queues + [f"{queue}.DQ" for queue in queues]
    return bool(broker.client.eval(_IDLE_SCRIPT, 0, broker.namespace, *names))
