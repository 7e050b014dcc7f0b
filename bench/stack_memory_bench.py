"""Memory of an idle stack: PSS per process kind, for this checkout and (optionally) another one.

Usage: .venv/bin/python bench/stack_memory_bench.py [--before PATH] [--settle S] [--peak-clips N]
       [--json PATH]

For each checkout it runs ``autolog up`` with the default pools under a scratch folder (no
REDIS_URL: a private Redis), waits until every pool has its worker processes and ``--settle``
seconds more, sums the proportional set size (``Pss`` in ``/proc/<pid>/smaps_rollup``) of every
process of the stack by kind (Redis, gunicorn master and workers, the dramatiq masters of the
pools or worker groups and their worker processes, the sweep), prints the table, and runs
``autolog down``.
``--before`` names another checkout (such as a worktree of an older commit) run with this
checkout's virtualenv, so the two tables are measured in the same run, on the same machine.

``--peak-clips N`` then puts N tiny clips (2 s, 320x240) through this checkout's stack with
``autolog ingest --wait`` and prints the largest total PSS sampled every 0.2 s meanwhile.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
sys.path.insert(0, str(REPO))

from bench._rows import Row, print_rows, save_rows  # noqa: E402  (after the path is set)

#: The pools ``autolog up`` starts (each was its own dramatiq group before worker groups).
POOLS = ("file_info", "thumbnails", "assess", "analysis", "frames", "transcription", "control")


def pss_kib(pid: int) -> int:
    """The process's proportional set size in KiB, 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def processes_under(var: Path) -> dict[int, tuple[int, str]]:
    """Every live process whose command line or environment names ``var``: pid -> (ppid, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] in ("Z", "X"):
            continue
        if str(var) in command or f"AUTOLOG_VAR_DIR={var}".encode() in environ:
            found[int(entry.name)] = (int(stat[1]), command)
    return found


def kind_of(pid: int, processes: dict[int, tuple[int, str]]) -> str:
    """Name a process of the stack by what it is."""
    ppid, command = processes[pid]
    if "redis-server" in command:
        return "redis"
    if "gunicorn" in command:
        return "api (gunicorn master)" if ppid not in processes else "api (gunicorn worker)"
    if "discovery" in command or "ops.agent" in command:
        return "sweep"
    # A pool's (before worker groups) or a worker group's dramatiq master, then the processes it forked.
    master = any(f"{name}.pid" in command for name in POOLS) or "/pools-" in command
    if master and ppid not in processes:
        return "pool masters"
    parent = processes.get(ppid)
    if parent is not None and ("dramatiq" in parent[1] or "actors.lanes" in parent[1]):
        return "pool worker processes"
    return "other"


def pools_up(processes: dict[int, tuple[int, str]]) -> bool:
    """True once every pool master has forked its worker process, and the sweep and the API run."""
    kinds = [kind_of(pid, processes) for pid in processes]
    masters = kinds.count("pool masters")
    return masters > 0 and kinds.count("pool worker processes") >= masters and "sweep" in kinds \
        and "api (gunicorn worker)" in kinds


def measure(checkout: Path, settle_s: float, peak_clips: int = 0) -> tuple[dict[str, tuple[int, int]], int]:
    """Bring a stack of ``checkout`` up; return kind -> (processes, PSS KiB) once idle, and the peak KiB.

    The peak is the largest total PSS while ``peak_clips`` tiny clips go through the stack (0: not run).
    """
    scratch = Path(tempfile.mkdtemp(prefix="autolog-mem-"))
    var = scratch / "var"
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "AUTOLOG_REDIS_URL", "DATABASE_URL", "AUTOLOG_DATABASE_URL")}
    from autolog.local_redis import free_port

    env.update({"AUTOLOG_VAR_DIR": str(var), "AUTOLOG_MEDIA_ROOTS": str(scratch / "media"),
                "AUTOLOG_API_PORT": str(free_port()), "AUTOLOG_METRICS_PORT_BASE": str(free_port() + 100),
                "AUTOLOG_API_KEYS": "memory-bench-key", "AUTOLOG_NAMESPACE": f"autolog-mem-{scratch.name}",
                "PATH": f"{PYTHON.parent}{os.pathsep}{env.get('PATH', '')}"})
    autolog = [str(PYTHON), "-c", "import sys; from ops.cli import main; sys.exit(main())"]
    up = subprocess.run([*autolog, "up"], cwd=checkout, env=env, capture_output=True, text=True, check=False)
    try:
        if up.returncode != 0:
            sys.exit(f"autolog up failed in {checkout}: {up.stdout}{up.stderr}")
        deadline = time.monotonic() + 120
        while not pools_up(processes_under(var)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(settle_s)
        processes = processes_under(var)
        table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for pid in processes:
            row = table[kind_of(pid, processes)]
            row[0] += 1
            row[1] += pss_kib(pid)
        idle = {kind: (count, kib) for kind, (count, kib) in sorted(table.items())}
        return idle, peak_kib(autolog, checkout, env, var, scratch / "media" / "peak", peak_clips)
    finally:
        subprocess.run([*autolog, "down", "--timeout", "30"], cwd=checkout, env=env, capture_output=True,
                       check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def peak_kib(autolog: list[str], checkout: Path, env: dict[str, str], var: Path, clips: Path, count: int) -> int:
    """Return the largest total PSS (KiB) of the stack under ``var`` while ``count`` tiny clips run through it."""
    if not count:
        return 0
    from bench.orchestration_bench import tiny_clips

    clips.mkdir(parents=True)
    tiny_clips(clips, count)
    ingest = subprocess.Popen([*autolog, "ingest", "--wait", "--force-resume", str(clips)], cwd=checkout, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while ingest.poll() is None:
        peak = max(peak, sum(pss_kib(pid) for pid in processes_under(var)))
        time.sleep(0.2)
    if ingest.returncode != 0:
        sys.exit(f"autolog ingest --wait failed: {ingest.stderr.read().decode() if ingest.stderr else ''}")
    return peak


def print_table(title: str, table: dict[str, tuple[int, int]]) -> None:
    total = sum(kib for _, kib in table.values())
    print(f"\n{title}: {sum(count for count, _ in table.values())} processes, {total / 1024:.0f} MiB PSS")
    for kind, (count, kib) in table.items():
        print(f"  {kind:<34} {count:>3} processes {kib / 1024:>8.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout to measure first, for comparison")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait once the pools are up")
    parser.add_argument("--peak-clips", type=int, default=0, help="tiny clips for the peak row (0: skip)")
    parser.add_argument("--json", type=Path, help="also save the rows here (for bench/orchestration_table.py)")
    args = parser.parse_args()
    before: dict[str, tuple[int, int]] = {}
    if args.before:
        before, _ = measure(args.before.resolve(), args.settle)
        print_table(f"before ({args.before})", before)
    after, peak = measure(REPO, args.settle, args.peak_clips)
    print_table("this checkout", after)
    after_kib, after_count = sum(kib for _, kib in after.values()), sum(count for count, _ in after.values())
    before_kib = sum(kib for _, kib in before.values())
    rows = [Row("stack_idle", "idle stack, fresh `autolog up`, PSS", f"{after_kib / 1024:.0f} MiB, {after_count} proc.",
                f"before ({args.before}): {before_kib / 1024:.0f} MiB" if before else "(no --before)",
                after_kib / before_kib if before else None,
                f"{after_kib / before_kib:.2f}×" if before else "-", after_kib / 1024)]
    if peak:
        rows.append(Row("stack_peak", f"stack at peak, {args.peak_clips} tiny clips, PSS", f"{peak / 1024:.0f} MiB",
                        "seed 000's 31 RQ workers: 3-4 GB (not run)", None, "-", peak / 1024))
    print()
    print_rows(rows)
    save_rows(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
