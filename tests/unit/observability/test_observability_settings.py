"""Settings and pool wiring for logs and metrics: formats, ports per pool, folders per pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolog.errors import ConfigError
from autolog.settings import Settings
from ops.pools import PoolManager, pool_specs


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


def test_each_pool_gets_its_own_metrics_port_in_pipeline_order() -> None:
    specs = pool_specs(Settings(metrics_port_base=9500))

    assert [(spec.name, spec.metrics_port) for spec in specs] == [
        ("file_info", 9500), ("thumbnails", 9501), ("assess", 9502), ("analysis", 9503), ("frames", 9504),
        ("transcription", 9505), ("control", 9506)]


def test_a_pool_is_started_with_its_name_port_and_metrics_folder(tmp_path: Path) -> None:
    manager = PoolManager(Settings(var_dir=tmp_path))

    env = manager.environment(manager.select(["assess"])[0])

    folder = str((tmp_path / "metrics" / "assess").resolve())
    assert {key: env[key] for key in ("AUTOLOG_WORKER_POOL", "AUTOLOG_METRICS_PORT", "AUTOLOG_METRICS_DIR",
                                      "PROMETHEUS_MULTIPROC_DIR")} == {
        "AUTOLOG_WORKER_POOL": "assess", "AUTOLOG_METRICS_PORT": "9193", "AUTOLOG_METRICS_DIR": folder,
        "PROMETHEUS_MULTIPROC_DIR": folder}
