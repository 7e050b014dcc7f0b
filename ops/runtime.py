"""Wire a CLI process to Redis, the store and the broker, in the one order that works."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from autolog.context import Context
from autolog.local_redis import resolve_redis_url
from autolog.settings import Settings
from autolog.store import Store


def connect_redis(settings: Settings, *, start: bool = False) -> Settings:
    """Resolve the Redis to use and publish it as ``REDIS_URL``; return settings naming it.

    NOTE(ops): this is the one place that sequences Redis before the broker. ``actors``
    builds its broker from the environment the first time it is imported, and worker
    processes inherit this process's environment, so the URL is resolved (and the private
    server started) first, written to ``REDIS_URL``, and only then may anything import
    ``actors``. Writing is not reading: ``Settings.from_env`` stays the only reader.
    """
    url = resolve_redis_url(settings, start=start)
    os.environ["REDIS_URL"] = url
    return settings.replace(redis_url=url)


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
    """Connect Redis, import the broker and install a ``Context`` for ``pipelines.actions``.

    The context is installed in the broker's ``Services`` so enqueues are recorded on the
    timeline; the previous one, if any, is put back on exit.
    """
    settings = connect_redis(settings)
    # Imported here, not at the top: importing ``actors`` builds the broker from REDIS_URL,
    # which ``connect_redis`` has only just written.
    import actors

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
