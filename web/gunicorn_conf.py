"""gunicorn's configuration: ``gunicorn -c web/gunicorn_conf.py``, serving ``web.app:create_app()``.

Threaded workers (``gthread``) keep a slow request, such as stopping the worker pools, from
getting its worker killed by the heartbeat timeout. The schema is migrated once, in the
master, before any worker opens the store.
"""

from __future__ import annotations

from typing import Any

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


def on_starting(server: Any) -> None:
    """Migrate the database once, before the workers start."""
    Store.open(_settings.sqlalchemy_url).close()
