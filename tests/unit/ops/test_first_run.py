"""First run: with no keys configured, one is made, kept owner-only under the var folder, and used."""

from __future__ import annotations

import stat
from pathlib import Path

from autolog.settings import Settings
from ops.first_run import ensure_api_key


def test_up_with_no_keys_makes_one_kept_owner_only_and_read_by_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({"AUTOLOG_VAR_DIR": str(tmp_path / "var")})
    assert settings.api_keys == ()

    key = ensure_api_key(settings)

    assert key is not None and len(key) >= 32
    assert stat.S_IMODE(settings.api_key_file.stat().st_mode) == 0o600
    assert Settings.from_env({"AUTOLOG_VAR_DIR": str(tmp_path / "var")}).api_keys == (key,)


def test_the_key_is_made_once_and_shown_once(tmp_path: Path) -> None:
    settings = Settings.from_env({"AUTOLOG_VAR_DIR": str(tmp_path / "var")})
    first = ensure_api_key(settings)

    again = ensure_api_key(settings)

    assert first is not None and again is None
    assert settings.api_key_file.read_text() == f"{first}\n"


def test_configured_keys_win_and_nothing_is_made(tmp_path: Path) -> None:
    settings = Settings.from_env({"AUTOLOG_VAR_DIR": str(tmp_path / "var"), "AUTOLOG_API_KEYS": "mine-0123456789"})

    assert ensure_api_key(settings) is None
    assert not settings.api_key_file.exists()
    assert settings.api_keys == ("mine-0123456789",)
