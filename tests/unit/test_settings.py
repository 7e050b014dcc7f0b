"""Settings parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolog.errors import ConfigError
from autolog.settings import DEFAULT_POOLS, Settings


def test_defaults_follow_seed_000() -> None:
    settings = Settings.from_env({})

    assert settings.pools == DEFAULT_POOLS
    assert (settings.pools["file_info"].threads, settings.pools["assess"].time_limit_s) == (8, 1800)
    assert settings.redis_url is None
    assert settings.sqlalchemy_url.endswith("var/autolog.db")


def test_database_url_for_postgres_uses_psycopg() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgres://u@h/db"})

    assert settings.sqlalchemy_url == "postgresql+psycopg://u@h/db"


def test_pool_sizes_and_media_roots_are_configurable() -> None:
    settings = Settings.from_env({"AUTOLOG_POOL_ANALYSIS_THREADS": "5", "AUTOLOG_MEDIA_ROOTS": "/a:/b"})

    assert settings.pools["analysis"].threads == 5
    assert settings.media_roots == (Path("/a"), Path("/b"))


@pytest.mark.parametrize(("name", "value"), [
    ("AUTOLOG_MAX_RETRIES", "many"),
    ("AUTOLOG_POOL_FRAMES_THREADS", "0"),
    ("AUTOLOG_FORCE_RESUME", "perhaps"),
    ("AUTOLOG_SCENE_THRESHOLD", "high"),
])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_api_keys_are_split_on_commas() -> None:
    assert Settings.from_env({"AUTOLOG_API_KEYS": "a, ,b"}).api_keys == ("a", "b")


def test_watch_folders_default_to_the_demo_folder_and_can_be_listed_or_turned_off(tmp_path: Path) -> None:
    media = tmp_path / "media"
    default = Settings.from_env({"AUTOLOG_MEDIA_ROOTS": str(media)})
    listed = Settings.from_env({"AUTOLOG_WATCH_FOLDERS": f"{tmp_path / 'a'}:{tmp_path / 'b'}"})

    assert default.resolved_watch_folders == ((media / "demo").resolve(),)
    assert listed.resolved_watch_folders == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    assert Settings.from_env({"AUTOLOG_WATCH_FOLDERS": "off"}).resolved_watch_folders == ()


def test_the_sqlite_busy_timeout_is_30_s_unless_the_environment_says_otherwise() -> None:
    from autolog.store.engine import sqlite_busy_timeout_ms

    assert sqlite_busy_timeout_ms({}) == 30_000
    assert sqlite_busy_timeout_ms({"AUTOLOG_SQLITE_BUSY_TIMEOUT_MS": "2000"}) == 2_000
    for bad in ("0", "-5", "2.5", "soon"):
        with pytest.raises(ConfigError, match="AUTOLOG_SQLITE_BUSY_TIMEOUT_MS"):
            sqlite_busy_timeout_ms({"AUTOLOG_SQLITE_BUSY_TIMEOUT_MS": bad})
