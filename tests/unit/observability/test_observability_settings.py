"""Settings and pool wiring for logs and metrics: formats, ports per pool, folders per pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolog.errors import ConfigError
from autolog.settings import Settings
from ops.pools import PoolManager


def test_logs_default_to_json_and_accept_text() -> None:
    assert Settings.from_env({}).log_format == "json"
    assert Settings.from_env({"AUTOLOG_LOG_FORMAT": "TEXT"}).log_format == "text"


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="AUTOLOG_LOG_FORMAT"):
        Settings.from_env({"AUTOLOG_LOG_FORMAT": "xml"})


def test_metrics_settings_are_parsed() -> None:
    settings = Settings.from_env({"AUTOLOG_METRICS_PORT": "9300", "AUTOLOG_METRICS_HOST": "0.0.0.0",
                                  "AUTOLOG_METRICS_DIR": "/run/autolog/m", "AUTOLOG_WORKER_POOL": "assess"})

    assert (settings.metrics_port, settings.metrics_host, settings.worker_pool) == (9300, "0.0.0.0", "assess")
    assert settings.metrics_root == Path("/run/autolog/m")
    assert Settings.from_env({}).metrics_port is None


def test_the_default_metrics_folder_is_per_pool_under_the_var_dir(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, worker_pool="frames")

    assert settings.metrics_root == (tmp_path / "metrics" / "frames").resolve()


def test_every_pool_writes_to_one_metrics_folder_and_runs_no_exporter_of_its_own(tmp_path: Path) -> None:
    manager = PoolManager(Settings(var_dir=tmp_path, metrics_port=9300))

    envs = [manager.environment()]

    folder = str((tmp_path / "metrics" / "pools").resolve())
    assert {(env["AUTOLOG_METRICS_DIR"], env["PROMETHEUS_MULTIPROC_DIR"]) for env in envs} == {(folder, folder)}
    # An empty port overrides one inherited from the environment: the sweep process is the exporter.
    assert {Settings.from_env(env).metrics_port for env in envs} == {None}
