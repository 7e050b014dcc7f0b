"""Wire a CLI process to Redis, the store and the broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import actors
from autolog.context import Context
from autolog.local_redis import private_redis
from autolog.settings import Settings
from autolog.store import Store


def ensure_redis(settings: Settings) -> None:
    """Start the private Redis (on its data, at its fixed socket) unless ``REDIS_URL`` names one, or it runs.

    Raises:
        RedisServerError: the private redis-server did not start.
    """
    if not settings.redis_url:
        private_redis(settings).start()


def migrate_store(settings: Settings) -> None:
    """Bring the database schema up to date once, so workers can open it without migrating."""
    Store.open(settings.sqlalchemy_url).close()


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """Open (and migrate) the store for a command that only reads or writes rows."""
    store = Store.open(settings.sqlalchemy_url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def pipeline_context(settings: Settings) -> Iterator[Context]:
    """Install a ``Context`` for ``pipelines.actions`` in the broker's ``Services``.

    Enqueues are then recorded on the timeline; the previous context, if any, is put back on exit.
    """
    context = Context.build(settings, store=Store.open(settings.sqlalchemy_url))
    services = actors.services()
    previous = services.current() if services.is_ready else None
    services.install(context)
    try:
        yield context
    finally:
        if previous is None:
            services.uninstall()
        else:
            services.install(previous)
        context.close()
