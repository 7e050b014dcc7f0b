"""Shared fixtures: a private Redis, SQLite and PostgreSQL stores, generated clips, workers.

The private Redis starts in ``pytest_configure``, before any test module imports
``actors``, because the broker is built from the environment when ``actors`` is imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from autolog.local_redis import LocalRedis, free_port
from autolog.processes import pid_alive
from autolog.settings import Settings
from autolog.statuses import STEPS, Status
from autolog.store import ItemView, NewItem, Store

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
    # With its append-only file, so a test can kill it and start it again on its data.
    server = LocalRedis(base / "redis")
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
        # A fresh file a test cuts short (a copy that died) waits this long as a stalled copy (default 120 s).
        "AUTOLOG_SOURCE_STALL_S": "3",
        # Pool exporters bind base + index; a free block keeps tests clear of a running stack.
        "AUTOLOG_METRICS_PORT_BASE": str(free_port_block(len(STEPS) + 1)),
    })
    _SESSION.update(base=base, redis=server, url=url)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "redis" in _SESSION:
        _SESSION["redis"].stop()
        shutil.rmtree(_SESSION["base"], ignore_errors=True)


def redis_servers(socket: Path) -> list[int]:
    """The pids of every redis-server listening on ``socket`` (redis-server names its socket in its title)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"redis-server" in command and str(socket).encode() in command and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float = 30.0, what: str = "condition", interval_s: float = 0.02,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail at the deadline.

    ``explain``, if given, is called at the deadline and its text added to the failure (what the test saw).
    """
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}" + (f"\n{explain()}" if explain else ""))
        time.sleep(interval_s)
    return result


def acked(client: redis.Redis, namespace: str, queue: str, message: Any) -> bool:
    """Whether Redis dropped ``message`` (a ``MessageProxy`` or an enqueued message): acknowledged.

    dramatiq's ack removes its Redis id from the queue's ``.msgs`` hash and from the worker's ack
    set (``__acks__.<worker>.<queue>``); a message still queued or held by a worker is in one of them.
    """
    redis_id = message.options["redis_message_id"]
    in_acks = any(client.sismember(key, redis_id) for key in client.scan_iter(match=f"{namespace}:__acks__.*.{queue}"))
    return not in_acks and not client.hexists(f"{namespace}:{queue}.msgs", redis_id)


def fetch(consumer: Any) -> Any:
    """Take a message as a worker's consumer does, without acknowledging it (a ``MessageProxy``); fail after 10 s."""
    deadline = time.monotonic() + 10
    while (message := next(consumer)) is None:
        assert time.monotonic() < deadline, "the consumer fetched nothing within 10 s"
    return message


class SkippingClock:
    """A module's clock (put in place of its ``time``): real time plus what ``sleep`` skipped, or ``skipped_s`` says.

    Code that waits returns at once; ``on_sleep`` acts in its first wait.
    """

    def __init__(self) -> None:
        self.skipped_s = 0.0
        self.on_sleep: Callable[[], None] | None = None

    def time(self) -> float:
        return time.time() + self.skipped_s

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped_s

    def sleep(self, seconds: float) -> None:
        self.skipped_s += seconds
        act, self.on_sleep = self.on_sleep, None
        if act is not None:
            act()


def log_through_pipeline(context: Any, drain: Callable[..., None], path: Path, item_id: str) -> None:
    """Submit a clip as a new item, drain the queues, and check it reached ``7 - Avid Description``."""
    from pipelines import actions  # imports ``actors``, which must wait for pytest_configure's environment

    actions.submit(context, [NewItem(item_id, str(path), force_resume=True)])
    drain()
    item = context.store.items.get(item_id)
    assert item.status is Status.AVID_DESCRIPTION, item.error


def item_view(item_id: str, source: str, **fields: Any) -> ItemView:
    """Return an item as the store holds it: logged, with no probe or error, unless ``fields`` say otherwise."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    item = ItemView(id=item_id, source=source, status=Status.AVID_DESCRIPTION, force_resume=False, prompt=None,
                    probe=None, has_audio=None, error=None, dead_lettered=False, cancelled=False, version=1,
                    created_at=moment, updated_at=moment)
    return dataclasses.replace(item, **fields)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """The session's scratch folder: ``media/`` is the media root, ``var/`` the var dir."""
    base: Path = _SESSION["base"]
    return base


@pytest.fixture(scope="session")
def session_redis() -> LocalRedis:
    """The private redis-server every test talks to (a test that stops it must start it again)."""
    server: LocalRedis = _SESSION["redis"]
    return server


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


@pytest.fixture
def cli_store(pool_settings: Settings) -> Iterator[Store]:
    """The store the in-process ``autolog`` CLI reads and writes in this test."""
    store = Store.open(pool_settings.sqlalchemy_url)
    yield store
    store.close()


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """Return what the CLI printed on stderr, checking it is one ``autolog: error:`` line."""
    err = capsys.readouterr().err
    assert err.startswith("autolog: error: ") and err.count("\n") == 1, err
    return err


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


#: The words of each sentence the footage cases and the sound variants speak, as a recogniser writes them.
SENTENCE1 = frozenset({"welcome", "footage", "logging", "test"})
SENTENCE2 = frozenset({"quick", "brown", "fox", "jumps", "over", "lazy", "dog"})

#: The scripts that make footage clips, and the truth about each clip beside them.
FOOTAGE_SCRIPTS = REPO / "tests" / "footage_cases"


@dataclass(frozen=True)
class FootageCases:
    """Clips made by a script in ``tests/footage_cases/``, and their truth.

    ``truth`` is the JSON beside the script (``cases.json`` for ``make_cases.sh``,
    ``sound_variants.json`` for ``make_sound_variants.sh``): one entry per file name (relative path).
    """

    root: Path
    truth: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name

    def shot_spans(self, name: str) -> list[tuple[int, float, float]]:
        """Return the truth's shots as ``(index, start_s, end_s)``, as step 3 would store them."""
        bounds = [0.0, *self.truth[name]["cuts"], self.truth[name]["duration"]]
        return [(index, start, end) for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False))]


def _make_footage(script: str, truth: str, root: Path) -> FootageCases:
    """Run one of ``FOOTAGE_SCRIPTS`` into ``root`` and read its truth, leaving out the ``_`` notes."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(FOOTAGE_SCRIPTS / script), str(root)], check=True, capture_output=True)
    cases = json.loads((FOOTAGE_SCRIPTS / truth).read_text())
    return FootageCases(root=root, truth={name: case for name, case in cases.items() if not name.startswith("_")})


@pytest.fixture(scope="session")
def footage_cases(session_dir: Path) -> FootageCases:
    """Make the real-world footage cases once per session, inside the media root (about 5 s)."""
    return _make_footage("make_cases.sh", "cases.json", session_dir / "media" / "cases")


@pytest.fixture(scope="session")
def sound_variants(session_dir: Path) -> FootageCases:
    """Make the sound variants (other containers and track layouts) once per session, inside the media root."""
    return _make_footage("make_sound_variants.sh", "sound_variants.json", session_dir / "media" / "sound")


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
