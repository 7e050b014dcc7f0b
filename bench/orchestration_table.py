"""Every row of issue #13's table in one command, each against its baseline from the same run.

Usage: .venv/bin/python bench/orchestration_table.py [--postgres URL | --no-postgres] [--before PATH]
       [--slow-cpus X] [--quick]

Runs three benchmarks one after another, each in its own process (each configures autolog
from its environment before importing ``actors``), and prints their rows in one table with
the issue's target for each and whether this run met it:

- ``bench/orchestration_bench.py``: no-op drain with the full middleware stack on SQLite and
  PostgreSQL vs dramatiq's default middleware; hop latency p50 of a pipeline link and of a
  branch point vs a raw dramatiq hop; CPU per item of tiny clips vs the same media work bare.
- ``bench/orchestration_bench.py --cpus X`` (``--slow-cpus``, default 0.4; 0 skips it): the SQLite
  drains again with the bench and its Redis on X CPUs in all (a cgroup's CPU quota), the
  CPU-bound regime of a slower or busier machine (``bench/_cpu_quota.py``), in ``SLOW_ROUNDS`` alternated
  rounds; skipped, with the
  reason, where no cgroup ``cpu`` controller is writable.
- ``bench/stack_memory_bench.py``: PSS of an idle ``autolog up`` (vs ``--before``, another
  checkout, when given) and the stack's peak PSS while tiny clips go through it.
- ``bench/intake_bench.py``: ``POST /run/lf_queue_batch`` with 1,000 and 10,000 ids vs a bare
  insert plus a pipelined push; reads at 100,000 items vs the same at 1,000.

``--quick`` shrinks every size (for trying the command, not for figures). A benchmark that
fails is reported and its rows are missing; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._cpu_quota import cpu_quota_available  # noqa: E402  (after the path is set)
from bench._rows import Row, load_rows  # noqa: E402


@dataclass(frozen=True)
class Target:
    """The issue's goal for a row: its wording and the check of a measured row."""

    text: str
    met: Callable[[Row], bool]


def _ratio_at_most(limit: float) -> Callable[[Row], bool]:
    return lambda row: row.ratio is not None and row.ratio <= limit


def _value_below(limit: float) -> Callable[[Row], bool]:
    return lambda row: row.value is not None and row.value < limit


#: Targets of issue #13, by row key (reads rows share the "flat" target, by prefix).
TARGETS: dict[str, Target] = {
    "drain_": Target(">= 0.5×", lambda row: row.ratio is not None and row.ratio >= 0.5),
    "hop_link": Target("<= 2×", _ratio_at_most(2.0)),
    "hop_branch": Target("<= 2×", _ratio_at_most(2.0)),
    "cpu_orchestration": Target("<= +5 %", _ratio_at_most(1.05)),
    "stack_idle": Target("< 400 MiB", _value_below(400)),
    "intake_batch": Target("< 1 s", _value_below(1.0)),
    "intake_all": Target("a few s (< 10 s)", _value_below(10.0)),
    "reads_": Target("flat (<= 1.5×)", _ratio_at_most(1.5)),
}


def target_for(row: Row) -> Target | None:
    """Return the target of ``row``: by its key, else by the longest key prefix that names one."""
    if row.key in TARGETS:
        return TARGETS[row.key]
    prefixes = [key for key in TARGETS if key.endswith("_") and row.key.startswith(key)]
    return TARGETS[max(prefixes, key=len)] if prefixes else None


def benches(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The benchmark scripts to run, with their arguments."""
    database = ["--no-postgres"] if args.no_postgres else ["--postgres", args.postgres]
    orchestration = ["--messages", "300", "--hops", "10", "--clips", "4"] if args.quick else []
    memory = ["--peak-clips", "4" if args.quick else "20", "--settle", "2" if args.quick else "5"]
    if args.before:
        memory += ["--before", str(args.before)]
    intake = ["--sizes", "100,1000", "--batches", "2"] if args.quick else []
    if not args.no_postgres:
        intake += ["--postgres", args.postgres]
    slow = []
    if args.slow_cpus:
        if cpu_quota_available():
            slow = [("orchestration_bench.py", [*orchestration, "--cpus", str(args.slow_cpus), "--clips", "0",
                                                "--hops", "0", "--no-postgres", "--rounds", str(SLOW_ROUNDS)])]
        else:
            print("skipping the drains on a CPU quota: no writable cgroup cpu controller (run as root)")
    return [("orchestration_bench.py", orchestration + database), *slow, ("stack_memory_bench.py", memory),
            ("intake_bench.py", intake)]


#: Rounds of the drains on a CPU quota: one run's rounds there read from 0.42× to 0.65× of the same
#: baseline (2026-12-03), three times the spread of the free-running drains' rounds, so their median
#: takes five.
SLOW_ROUNDS = 5


def print_table(rows: list[Row]) -> None:
    """Print rows with their targets: what, autolog, baseline, ratio, target, met."""
    width = max(len(row.what) for row in rows)
    print(f"\n{'what':<{width}}  {'autolog':<24}  {'baseline (same run)':<46}  {'ratio':<12}  target")
    for row in rows:
        target = target_for(row)
        verdict = "" if target is None else f"{target.text}: {'met' if target.met(row) else 'NOT met'}"
        print(f"{row.what:<{width}}  {row.autolog:<24}  {row.baseline:<46}  {row.ratio_text:<12}  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("AUTOLOG_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--before", type=Path, help="another checkout for the idle-memory row's baseline")
    parser.add_argument("--slow-cpus", type=float, default=0.4,
                        help="also drain on this many CPUs in all (a cgroup quota), the slow regime; 0: skip")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the command")
    args = parser.parse_args()
    rows: list[Row] = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="autolog-table-") as scratch:
        for index, (script, extra) in enumerate(benches(args)):
            saved = Path(scratch) / f"{index}-{script}.json"
            print(f"== {script} {' '.join(extra)}", flush=True)
            done = subprocess.run([sys.executable, str(REPO / "bench" / script), *extra, "--json", str(saved)],
                                  cwd=REPO, check=False)
            if done.returncode != 0:
                failed.append(f"{script} (exit {done.returncode})")
            rows += load_rows(saved)
    if rows:
        print_table(rows)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
