"""Multiprocess metrics: switched on at boot whatever was imported first, stale files pruned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from autolog.metrics_multiproc import mark_process_dead, multiprocess_registry, prune_stale_files

#: Run in a fresh interpreter: prometheus_client is imported (in-memory mode) before the
#: folder is known, then enabled at "boot", as in a worker whose libraries imported it first.
_CHILD = """
import sys
import prometheus_client
from prometheus_client import Counter, values
assert not getattr(values.ValueClass, "_multiprocess", False)
from pathlib import Path
from autolog.metrics_multiproc import enable_multiprocess, is_multiprocess
enable_multiprocess(Path(sys.argv[1]))
assert is_multiprocess()
Counter("autolog_test_things", "Things.", ["queue_name"], registry=None).labels("probe").inc(int(sys.argv[2]))
"""


def run_child(folder: Path, count: int) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(count)], check=True, env=env)


def test_values_from_processes_that_imported_prometheus_first_are_summed(tmp_path: Path) -> None:
    run_child(tmp_path, 2)
    run_child(tmp_path, 3)

    registry = multiprocess_registry(tmp_path)

    assert registry.get_sample_value("autolog_test_things_total", {"queue_name": "probe"}) == 5


def test_pruning_removes_dead_and_own_pid_files_and_keeps_live_ones(tmp_path: Path) -> None:
    for name in ("counter_111.db", "histogram_111.db", "counter_222.db", "gauge_livesum_333.db", "notes.txt"):
        (tmp_path / name).write_bytes(b"")

    removed = prune_stale_files(tmp_path, own_pid=333, is_alive=lambda pid: pid == 222)

    assert sorted(path.name for path in removed) == ["counter_111.db", "gauge_livesum_333.db", "histogram_111.db"]
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == [
        "counter_222.db", "notes.txt"]


def test_a_dead_process_leaves_its_counters_but_not_its_live_gauges(tmp_path: Path) -> None:
    for name in ("counter_444.db", "gauge_livesum_444.db", "gauge_livesum_555.db"):
        (tmp_path / name).write_bytes(b"")

    mark_process_dead(tmp_path, 444)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["counter_444.db", "gauge_livesum_555.db"]


#: A worker that counted before a fork (a ``dramatiq`` master importing and booting, then forking its
#: workers): the parent's and the child's counts go to files of their own pids, and both are summed.
_FORKING = """
import os, sys
from pathlib import Path
from prometheus_client import Counter
from autolog.metrics_multiproc import enable_multiprocess
from autolog.processes import current_pid
enable_multiprocess(Path(sys.argv[1]))
things = Counter("autolog_test_things", "Things.", ["queue_name"], registry=None).labels("probe")
things.inc(2)
child = os.fork()
if child == 0:
    things.inc(3)
    os._exit(0 if current_pid() == os.getpid() else 1)
_, status = os.waitpid(child, 0)
assert os.waitstatus_to_exitcode(status) == 0, "the child's current_pid was its parent's"
print(child)
"""


def test_a_forked_child_counts_in_files_of_its_own_pid_and_both_processes_are_summed(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", _FORKING, str(tmp_path)], check=True, env=env,
                          capture_output=True, text=True)

    child = int(done.stdout)
    assert (tmp_path / f"counter_{child}.db").exists()
    registry = multiprocess_registry(tmp_path)
    assert registry.get_sample_value("autolog_test_things_total", {"queue_name": "probe"}) == 5
