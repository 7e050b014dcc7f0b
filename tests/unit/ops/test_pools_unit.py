"""Pool definitions and command lines, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolog.settings import DEFAULT_POOLS, Pool, Settings
from ops.errors import PoolError
from ops.pools import PROJECT_DIR, PoolManager, pool_specs


def test_one_pool_per_step_queue_plus_control() -> None:
    specs = pool_specs(Settings())

    assert [(spec.name, spec.queue) for spec in specs] == [
        ("file_info", "probe"), ("thumbnails", "thumbnails"), ("assess", "assess"), ("analysis", "analysis"),
        ("frames", "frames"), ("transcription", "transcription"), ("control", "control")]
    assert [(spec.processes, spec.threads) for spec in specs] == [(1, 8), (1, 8), (1, 6), (1, 2), (1, 4), (1, 3),
                                                                  (1, 2)]


def test_pool_sizes_come_from_settings() -> None:
    pools = {**DEFAULT_POOLS, "assess": Pool(threads=3, time_limit_s=60, processes=2)}

    assess = pool_specs(Settings(pools=pools))[2]

    assert (assess.processes, assess.threads, assess.time_limit_s) == (2, 3, 60)


def test_command_runs_the_dramatiq_cli_on_one_queue(tmp_path: Path) -> None:
    manager = PoolManager(Settings(var_dir=tmp_path), dramatiq_bin=Path("/venv/bin/dramatiq"))

    command = manager.command(manager.select(["assess"])[0])

    assert command == [
        "/venv/bin/dramatiq", "actors", "pipelines", "--path", str(PROJECT_DIR), "--queues", "assess",
        "--processes", "1", "--threads", "6", "--pid-file", str(tmp_path.resolve() / "run" / "assess.pid"),
        "--log-file", str(tmp_path.resolve() / "log" / "assess.log"), "--worker-shutdown-timeout", "30000"]


def test_running_steps_get_the_grace_period_and_stop_waits_for_them_to_exit() -> None:
    manager = PoolManager(Settings(stop_grace_s=45))

    assert "--worker-shutdown-timeout" in (command := manager.command(manager.specs[0]))
    assert command[command.index("--worker-shutdown-timeout") + 1] == "45000"
    assert manager.default_stop_timeout_s == 45 + 15


def test_unknown_pool_names_are_refused() -> None:
    with pytest.raises(PoolError, match="unknown pool 'probe'"):
        PoolManager(Settings()).select(["probe"])


def test_pools_are_selected_in_pipeline_order() -> None:
    assert [spec.name for spec in PoolManager(Settings()).select(["control", "file_info"])] == [
        "file_info", "control"]
