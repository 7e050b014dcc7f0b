"""Pool definitions and command lines, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolog.errors import ConfigError
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


def test_every_pool_is_in_one_worker_group_by_default_and_a_group_takes_its_largest_pools_processes() -> None:
    pools = {**DEFAULT_POOLS, "assess": Pool(threads=3, time_limit_s=60, processes=2),
             "transcription": Pool(threads=3, time_limit_s=600, group="speech")}

    specs = pool_specs(Settings(pools=pools))

    assert {spec.group for spec in pool_specs(Settings())} == {"workers"}
    assert [(spec.name, spec.group, spec.processes) for spec in specs] == [
        ("file_info", "workers", 2), ("thumbnails", "workers", 2), ("assess", "workers", 2),
        ("analysis", "workers", 2), ("frames", "workers", 2), ("transcription", "speech", 1), ("control", "workers", 2)]


def test_groups_come_from_the_environment_and_must_be_plain_names() -> None:
    settings = Settings.from_env({"AUTOLOG_POOL_TRANSCRIPTION_GROUP": "speech", "AUTOLOG_POOL_CONTROL_GROUP": "ctl"})

    assert (settings.pools["transcription"].group, settings.pools["frames"].group) == ("speech", "workers")
    assert list(PoolManager(settings).groups) == ["workers", "speech", "ctl"]
    with pytest.raises(ConfigError, match="AUTOLOG_POOL_FRAMES_GROUP"):
        Settings.from_env({"AUTOLOG_POOL_FRAMES_GROUP": "../x"})


def test_command_runs_a_worker_group_on_its_wanted_pools_each_queue_a_lane(tmp_path: Path) -> None:
    manager = PoolManager(Settings(var_dir=tmp_path), program=["/venv/bin/python", "-c", "entry"])
    manager.run_dir.mkdir(parents=True)
    for spec in manager.select(["assess", "control"]):
        manager.wanted_file(spec).touch()

    command = manager.command("workers")

    assert command == [
        "/venv/bin/python", "-c", "entry", "--lanes", "assess:assess:6,control:control:2", "actors", "pipelines",
        "--path", str(PROJECT_DIR), "--queues", "assess", "control", "--processes", "1", "--threads", "8",
        "--pid-file", str(tmp_path.resolve() / "run" / "pools-workers.pid"),
        "--log-file", str(tmp_path.resolve() / "log" / "pools-workers.log"), "--worker-shutdown-timeout", "30000"]


def test_running_steps_get_the_grace_period_and_stop_waits_for_them_to_exit() -> None:
    manager = PoolManager(Settings(stop_grace_s=45))

    assert "--worker-shutdown-timeout" in (command := manager.command("workers"))
    assert command[command.index("--worker-shutdown-timeout") + 1] == "45000"
    assert manager.default_stop_timeout_s == 45 + 15


def test_unknown_pool_names_are_refused() -> None:
    with pytest.raises(PoolError, match="unknown pool 'probe'"):
        PoolManager(Settings()).select(["probe"])


def test_pools_are_selected_in_pipeline_order() -> None:
    assert [spec.name for spec in PoolManager(Settings()).select(["control", "file_info"])] == [
        "file_info", "control"]
