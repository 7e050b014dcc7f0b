"""gunicorn's configuration: ``gunicorn -c web/gunicorn_conf.py``, serving ``web.app:create_app()``.

Threaded workers (``gthread``) keep a slow request, such as stopping the worker pools, from
getting its worker killed by the heartbeat timeout. The schema is migrated once, in the
master, before any worker opens the store. gunicorn's own logs (its error log and the access
log) go through the project's logging configuration, so they are JSON lines like every other log.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

# Imported here, in the master, so the forked workers share these pages instead of each importing them.
import web.app  # noqa: F401
from autolog.logs import build_log_config, secret_values
from autolog.progress import close_streams
from autolog.settings import Settings
from autolog.store import Store

_settings = Settings.from_env()

wsgi_app = "web.app:create_app()"
bind = [f"{_settings.api_host}:{_settings.api_port}"]
workers = _settings.api_workers
threads = _settings.api_threads
worker_class = "gthread"
#: Seconds a worker may go without a heartbeat; requests run on threads, so this is not a request limit.
timeout = 60
graceful_timeout = 30
keepalive = 5
#: The access log has no headers, so API keys and signatures never reach it.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
loglevel = _settings.log_level.lower()
#: No control socket (gunicorn 25.1+, for ``gunicornc``): its default path is one per user
#: (``~/.gunicorn/gunicorn.ctl``), so two stacks on one host would take each other's; ``autolog``
#: starts and stops the API itself.
control_socket_disable = True


def _log_config(settings: Settings) -> dict[str, Any]:
    """Return the project's log configuration, with gunicorn's two loggers sent to its root handler.

    gunicorn lays this over its defaults one top-level key at a time, so without ``loggers`` its
    default ones would stay, naming handlers this configuration does not have (and gunicorn
    would not start). Naming them here with no handlers also drops the text handlers gunicorn
    put on them; their records propagate to the root's JSON handler and its redaction filter.
    """
    config = build_log_config(level=settings.log_level, fmt=settings.log_format, secrets=secret_values(settings))
    config["loggers"] = {
        "gunicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
        # At INFO whatever the level: the access log is one INFO line per request.
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    }
    return config


logconfig_dict = _log_config(_settings)


def on_starting(server: Any) -> None:
    """Migrate the database once, before the workers start."""
    Store.open(_settings.sqlalchemy_url).close()


def post_worker_init(worker: Any) -> None:
    """End this worker's progress streams as soon as it is told to stop.

    A review page keeps a stream open; gunicorn would otherwise wait its whole graceful
    timeout for it and then kill the worker, cutting the stream mid-body. The worker's own
    SIGTERM handler still runs after, so it stops taking requests and drains as before.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        close_streams()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
