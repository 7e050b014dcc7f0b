"""A fresh store at an older schema revision, for tests of what a later migration does with its rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection

from autolog.store.engine import alembic_config, create_store_engine


@contextmanager
def store_at_revision(request: pytest.FixtureRequest, tmp_path: Path, database: str,
                      revision: str) -> Iterator[tuple[str, Connection]]:
    """Yield the URL of a new ``database`` ("sqlite" or "postgresql") store migrated to ``revision``, and a
    connection in a transaction on it (committed on exit). ``Store.open(url)`` afterwards migrates it to the head.
    """
    url = (f"sqlite:///{tmp_path / 'old.db'}" if database == "sqlite" else
           request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://"))
    engine = create_store_engine(url)
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            yield url, connection
    finally:
        engine.dispose()
