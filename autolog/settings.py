"""Settings: one frozen dataclass, parsed once from the environment at startup.

This is the only module that reads ``os.environ``. Entry points call
``Settings.from_env()``; everything else receives a ``Settings``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autolog.errors import ConfigError
from autolog.statuses import STEPS

#: The worker group every pool is in unless ``AUTOLOG_POOL_<STEP>_GROUP`` names another (``ops.pools``).
DEFAULT_GROUP = "workers"


@dataclass(frozen=True)
class Pool:
    """One step's worker pool: its threads in each worker process of its group, and its time limit.

    ``group`` names the worker group (a ``dramatiq`` process group) that runs it with the other
    pools of that group; ``processes`` asks that group for at least that many worker processes.
    """

    threads: int
    time_limit_s: int
    processes: int = 1
    group: str = DEFAULT_GROUP


#: Seed 000's pool sizes and time limits, by step name.
DEFAULT_POOLS: dict[str, Pool] = {
    "file_info": Pool(threads=8, time_limit_s=600),
    "thumbnails": Pool(threads=8, time_limit_s=600),
    "assess": Pool(threads=6, time_limit_s=1800),
    "analysis": Pool(threads=2, time_limit_s=1800),
    "frames": Pool(threads=4, time_limit_s=1200),
    "transcription": Pool(threads=3, time_limit_s=600),
}


def _default_pools() -> dict[str, Pool]:
    return dict(DEFAULT_POOLS)


@dataclass(frozen=True)
class Settings:
    """Everything autolog can be configured with. Defaults run on one machine."""

    #: Redis for the broker; None starts a private redis-server under ``var_dir``.
    redis_url: str | None = None
    #: SQLAlchemy URL; None means SQLite at ``var_dir/autolog.db``.
    database_url: str | None = None
    var_dir: Path = Path("var")
    #: Local sources must resolve inside one of these folders.
    media_roots: tuple[Path, ...] = ()
    #: Where steps write posters, contact sheets and frames; None means ``var_dir/artifacts``.
    artifacts_dir: Path | None = None
    #: Prefix of every Redis key autolog and its broker write.
    namespace: str = "autolog"
    pools: dict[str, Pool] = field(default_factory=_default_pools)
    #: The worker group of the ``control`` pool (the routing callback).
    control_group: str = DEFAULT_GROUP
    max_retries: int = 3
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 60_000
    #: A worker that has not sent a heartbeat for this long is dead; its messages go back.
    heartbeat_timeout_ms: int = 10_000
    #: Out of 1,000,000 broker commands, how many also run queue maintenance.
    maintenance_chance: int = 100_000
    #: Run step 4 straight after step 3 instead of waiting for a prompt.
    force_resume: bool = False
    #: scdet's scene-change threshold (0-100); hard cuts score far above it.
    scene_threshold: float = 10.0
    #: Minimum shot length in seconds: a cut closer than this to the previous one is
    #: ignored (fast motion makes scdet fire twice around one cut).
    min_shot_s: float = 0.5
    #: Start timecode of a file that carries none (SMPTE ``HH:MM:SS:FF``).
    default_start_timecode: str = "00:00:00:00"
    #: Timecode rate of audio-only files (a BWF time reference is in samples, not frames).
    audio_timecode_rate: str = "25"
    #: A source is probed only once its size and times have not changed for this long (s),
    #: so a file still being copied is waited for, not failed.
    source_settle_s: float = 5.0
    #: A source that is visibly cut short (``autolog.source_state.cut_short``: an MPEG-TS ending
    #: inside a packet, an MP4 or QuickTime file whose boxes run past its end or without a ``moov``)
    #: is probed only once its modification time is this old (s): a copy that stalled is waited
    #: for, not logged or failed from its first part. 0 turns it off, as does a ``source_settle_s`` of 0.
    source_stall_s: float = 120.0
    #: For this long after an item is logged (s), the sweep looks whether its local source has
    #: changed since step 1 and logs it again from step 1 if so: a copy that stalled for longer than
    #: ``source_settle_s`` and then went on. 0 turns it off.
    source_recheck_s: float = 3600.0
    #: ``pocketsphinx`` (offline, the default) or ``gemini`` (needs a Gemini key).
    transcriber: str = "pocketsphinx"
    gemini_api_key: str | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    #: How long one Gemini call may take before it counts as a timeout (retried), in ms.
    gemini_timeout_ms: int = 120_000
    #: Gemini's quota, shared by every worker through Redis: calls and input tokens per
    #: window, and calls in flight. Defaults are the free tier of gemini-2.5-flash.
    gemini_requests_per_window: int = 10
    gemini_tokens_per_window: int = 250_000
    gemini_concurrency: int = 2
    gemini_window_ms: int = 60_000
    api_host: str = "127.0.0.1"
    api_port: int = 8081
    api_keys: tuple[str, ...] = ()
    #: gunicorn worker processes and threads per process for the API.
    api_workers: int = 2
    api_threads: int = 4
    #: Signs the review pages' session cookie; None derives it from ``api_keys`` (so changing
    #: the keys signs everyone out). Every API process must see the same value.
    session_secret: str | None = None
    #: How long a review-page sign-in lasts, in seconds.
    session_ttl_s: int = 12 * 3600
    #: The bearer token MinIO's webhook target sends; None refuses every MinIO event.
    minio_webhook_token: str | None = None
    #: The secret of the signed ingest webhook (GitHub's X-Hub-Signature-256); None refuses it.
    ingest_webhook_secret: str | None = None
    #: S3-compatible object storage for ``s3://`` sources; None endpoint means AWS.
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    #: How often the sweep (discovery) looks for stranded messages, pending and stuck items, in seconds.
    discovery_interval_s: float = 5.0
    #: An item at a step's status with no message in flight for this long is re-queued, in seconds.
    #: A message is in flight from its enqueue to its ack, so only a lost one leaves an item
    #: like this for more than the moment between a status write and the next enqueue.
    discovery_stuck_after_s: float = 15.0
    #: Folders whose new files are ingested once settled (inside the media roots); None means the
    #: demo's folder (``<first media root>/demo``), empty turns watching off.
    watch_folders: tuple[Path, ...] | None = None
    #: How often the watch folders are walked in full, as a safety net for missed events, in seconds.
    watch_scan_interval_s: float = 30.0
    #: How long a stopping worker lets its running steps finish before putting them back, in seconds.
    stop_grace_s: float = 30.0
    log_level: str = "INFO"
    #: ``json`` (one JSON object per line, for log shippers) or ``text`` (for people).
    log_format: str = "json"
    #: The worker pool this process belongs to: the ``pool`` label of the live-worker gauges.
    worker_pool: str | None = None
    #: prometheus_client's multiprocess folder for this worker group (one per pool per host);
    #: None means ``var_dir/metrics/<worker_pool or "default">``.
    metrics_dir: Path | None = None
    #: Where this worker group's metrics exporter listens; with no port, no exporter runs.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    #: The pool manager gives its i-th pool (pipeline order, then control) ``metrics_port_base + i``.
    metrics_port_base: int = 9191

    @property
    def redis_dir(self) -> Path:
        """The private Redis's folder: its Unix socket, pid file, log and append-only file."""
        return (self.var_dir / "redis").resolve()

    @property
    def broker_url(self) -> str:
        """``REDIS_URL``, else the private server's socket under ``var_dir`` (known whether or not it runs).

        Raises:
            ConfigError: the socket's path is too long for a Unix socket.
        """
        return self.redis_url or redis_socket_url(self.redis_dir / "redis.sock")

    @property
    def resolved_watch_folders(self) -> tuple[Path, ...]:
        """The watch folders as absolute paths (default: the demo's folder under the first media root)."""
        if self.watch_folders is None:
            return (self.resolved_media_roots[0] / "demo",)
        return tuple(folder.resolve() for folder in self.watch_folders)

    @property
    def metrics_root(self) -> Path:
        """The multiprocess metrics folder of this process's worker group."""
        return (self.metrics_dir or self.var_dir / "metrics" / (self.worker_pool or "default")).resolve()

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to SQLite under ``var_dir``."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.var_dir / 'autolog.db').resolve()}"

    @functools.cached_property
    def artifacts_root(self) -> Path:
        """The folder step outputs are written under (resolved once: each step message reads it)."""
        return (self.artifacts_dir or self.var_dir / "artifacts").resolve()

    @functools.cached_property
    def resolved_media_roots(self) -> tuple[Path, ...]:
        """The media roots as absolute, symlink-free paths (resolved once: each step message reads them).

        A root's symlink pointed elsewhere later takes effect when the process starts again.
        """
        roots = self.media_roots or (self.var_dir / "media",)
        return tuple(root.resolve() for root in roots)

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def api_key_file(self) -> Path:
        """Where ``autolog up`` keeps the API key it made when none was configured."""
        return api_key_file(self.var_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Parse and validate settings from ``AUTOLOG_*``, ``REDIS_URL`` and ``DATABASE_URL``.

        Raises:
            ConfigError: a variable is set to something that cannot be parsed.
        """
        env = _Env(environ)
        var_dir = Path(env.text("AUTOLOG_VAR_DIR") or "var")
        roots = env.text("AUTOLOG_MEDIA_ROOTS")
        pools = {}
        for step in STEPS:
            base = DEFAULT_POOLS[step.name]
            key = step.name.upper()
            pools[step.name] = Pool(
                threads=env.integer(f"AUTOLOG_POOL_{key}_THREADS", base.threads, minimum=1),
                time_limit_s=env.integer(f"AUTOLOG_POOL_{key}_TIME_LIMIT_S", base.time_limit_s, minimum=1),
                processes=env.integer(f"AUTOLOG_POOL_{key}_PROCESSES", base.processes, minimum=1),
                group=env.name(f"AUTOLOG_POOL_{key}_GROUP") or DEFAULT_GROUP,
            )
        keys = env.text("AUTOLOG_API_KEYS") or read_key_file(api_key_file(var_dir))
        watch = env.text("AUTOLOG_WATCH_FOLDERS")
        artifacts = env.text("AUTOLOG_ARTIFACTS_DIR")
        return cls(
            redis_url=env.text("REDIS_URL") or env.text("AUTOLOG_REDIS_URL"),
            database_url=env.text("DATABASE_URL") or env.text("AUTOLOG_DATABASE_URL"),
            var_dir=var_dir,
            media_roots=tuple(Path(part) for part in roots.split(os.pathsep) if part) if roots else (),
            artifacts_dir=Path(artifacts) if artifacts else None,
            namespace=env.text("AUTOLOG_NAMESPACE") or "autolog",
            pools=pools,
            control_group=env.name("AUTOLOG_POOL_CONTROL_GROUP") or DEFAULT_GROUP,
            max_retries=env.integer("AUTOLOG_MAX_RETRIES", 3, minimum=0),
            min_backoff_ms=env.integer("AUTOLOG_MIN_BACKOFF_MS", 1_000, minimum=1),
            max_backoff_ms=env.integer("AUTOLOG_MAX_BACKOFF_MS", 60_000, minimum=1),
            heartbeat_timeout_ms=env.integer("AUTOLOG_HEARTBEAT_TIMEOUT_MS", 10_000, minimum=1_000),
            maintenance_chance=env.integer("AUTOLOG_MAINTENANCE_CHANCE", 100_000, minimum=0),
            force_resume=env.boolean("AUTOLOG_FORCE_RESUME", False),
            scene_threshold=env.number("AUTOLOG_SCENE_THRESHOLD", 10.0),
            min_shot_s=env.number("AUTOLOG_MIN_SHOT_S", 0.5),
            default_start_timecode=env.text("AUTOLOG_DEFAULT_START_TIMECODE") or "00:00:00:00",
            audio_timecode_rate=env.text("AUTOLOG_AUDIO_TIMECODE_RATE") or "25",
            source_settle_s=env.number("AUTOLOG_SOURCE_SETTLE_S", 5.0),
            source_stall_s=env.number("AUTOLOG_SOURCE_STALL_S", 120.0),
            source_recheck_s=env.number("AUTOLOG_SOURCE_RECHECK_S", 3600.0),
            transcriber=env.choice("AUTOLOG_TRANSCRIBER", "pocketsphinx", ("pocketsphinx", "gemini")),
            gemini_api_key=env.text("AUTOLOG_GEMINI_API_KEY") or env.text("GEMINI_API_KEY"),
            gemini_model=env.text("AUTOLOG_GEMINI_MODEL") or "gemini-2.5-flash",
            gemini_base_url=env.text("AUTOLOG_GEMINI_BASE_URL"),
            gemini_timeout_ms=env.integer("AUTOLOG_GEMINI_TIMEOUT_MS", 120_000, minimum=1),
            gemini_requests_per_window=env.integer("AUTOLOG_GEMINI_REQUESTS_PER_WINDOW", 10, minimum=1),
            gemini_tokens_per_window=env.integer("AUTOLOG_GEMINI_TOKENS_PER_WINDOW", 250_000, minimum=1),
            gemini_concurrency=env.integer("AUTOLOG_GEMINI_CONCURRENCY", 2, minimum=1),
            gemini_window_ms=env.integer("AUTOLOG_GEMINI_WINDOW_MS", 60_000, minimum=100),
            api_host=env.text("AUTOLOG_API_HOST") or "127.0.0.1",
            api_port=env.integer("AUTOLOG_API_PORT", 8081, minimum=1),
            api_keys=tuple(key.strip() for key in (keys or "").split(",") if key.strip()),
            api_workers=env.integer("AUTOLOG_API_WORKERS", 2, minimum=1),
            api_threads=env.integer("AUTOLOG_API_THREADS", 4, minimum=1),
            session_secret=env.text("AUTOLOG_SESSION_SECRET"),
            session_ttl_s=env.integer("AUTOLOG_SESSION_TTL_S", 12 * 3600, minimum=60),
            minio_webhook_token=env.text("AUTOLOG_MINIO_WEBHOOK_TOKEN"),
            ingest_webhook_secret=env.text("AUTOLOG_INGEST_WEBHOOK_SECRET"),
            s3_endpoint_url=env.text("AUTOLOG_S3_ENDPOINT_URL"),
            s3_access_key_id=env.text("AUTOLOG_S3_ACCESS_KEY_ID"),
            s3_secret_access_key=env.text("AUTOLOG_S3_SECRET_ACCESS_KEY"),
            s3_region=env.text("AUTOLOG_S3_REGION") or "us-east-1",
            discovery_interval_s=env.number("AUTOLOG_DISCOVERY_INTERVAL_S", 5.0),
            discovery_stuck_after_s=env.number("AUTOLOG_DISCOVERY_STUCK_AFTER_S", 15.0),
            stop_grace_s=env.number("AUTOLOG_STOP_GRACE_S", 30.0),
            watch_folders=(() if watch.lower() == "off" else tuple(Path(part) for part in watch.split(os.pathsep)
                                                                    if part)) if watch else None,
            watch_scan_interval_s=env.number("AUTOLOG_WATCH_SCAN_INTERVAL_S", 30.0),
            log_level=(env.text("AUTOLOG_LOG_LEVEL") or "INFO").upper(),
            log_format=env.choice("AUTOLOG_LOG_FORMAT", "json", ("json", "text")),
            worker_pool=env.text("AUTOLOG_WORKER_POOL"),
            metrics_dir=Path(metrics_dir) if (metrics_dir := env.text("AUTOLOG_METRICS_DIR")) else None,
            metrics_host=env.text("AUTOLOG_METRICS_HOST") or "127.0.0.1",
            metrics_port=env.integer("AUTOLOG_METRICS_PORT", 0, minimum=0) or None,
            metrics_port_base=env.integer("AUTOLOG_METRICS_PORT_BASE", 9191, minimum=1),
        )


def child_environment(extra: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Return the environment for a child process: this one's, with ``extra`` on top.

    Children (worker pools, gunicorn, discovery) read their own settings from it.
    """
    return {**environ, **extra}


#: The longest path a Unix socket may have on Linux (``sun_path`` less its terminating NUL), in bytes.
MAX_SOCKET_PATH = 107


def redis_socket_url(path: Path) -> str:
    """Return the ``unix://`` URL of a Redis listening on the socket at ``path`` (made absolute).

    Raises:
        ConfigError: the path is longer than a Unix socket allows.
    """
    resolved = path.resolve()
    if len(os.fsencode(resolved)) > MAX_SOCKET_PATH:
        raise ConfigError("AUTOLOG_VAR_DIR", f"the private Redis's socket path {str(resolved)!r} is longer than "
                          f"{MAX_SOCKET_PATH} bytes; choose a shorter var folder or set REDIS_URL")
    return f"unix://{resolved}"


def normalise_database_url(url: str) -> str:
    """Make ``postgres://`` and ``postgresql://`` URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class _Env:
    """Typed reads of an environment mapping, raising ``ConfigError`` on bad values."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def name(self, name: str) -> str | None:
        """A name used in file names: lower-case letters, digits, ``_`` and ``-``."""
        value = self.text(name)
        if value is not None and not re.fullmatch(r"[a-z0-9_-]+", value):
            raise ConfigError(name, f"expected lower-case letters, digits, _ or -, got {value!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as ex:
            raise ConfigError(name, f"expected an integer, got {raw!r}") from ex
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError as ex:
            raise ConfigError(name, f"expected a number, got {raw!r}") from ex

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"expected true or false, got {raw!r}")


def api_key_file(var_dir: Path) -> Path:
    """Return the file of the API key made on first run, under ``var_dir``."""
    return var_dir / "api_key"


def read_key_file(path: Path) -> str | None:
    """Return the keys kept in ``path`` (one per line) as ``AUTOLOG_API_KEYS`` would give them; None if none.

    Read only when ``AUTOLOG_API_KEYS`` is unset, so a configured key always wins.
    """
    try:
        keys = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    return ",".join(keys) or None
