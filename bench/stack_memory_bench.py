"""Memory of an idle stack: PSS per process kind, for this checkout and (optionally) another one.

Usage: .venv/bin/python bench/stack_memory_bench.py [--before PATH] [--settle S]

For each checkout it runs ``autolog up`` with the default pools under a scratch folder (no
REDIS_URL: a private Redis), waits until every pool has its worker processes and ``--settle``
seconds more, sums the proportional set size (``Pss`` in ``/proc/<pid>/smaps_rollup``) of every
process of the stack by kind (Redis, gunicorn master and workers, the dramatiq masters of the
pools or worker groups and their worker processes, the sweep), prints the table, and runs
``autolog down``.
``--before`` names another checkout (such as a worktree of an older commit) run with this
checkout's virtualenv, so the two tables are measured in the same run, on the same machine.
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


def measure(checkout: Path, settle_s: float) -> dict[str, tuple[int, int]]:
    """Bring a stack of ``checkout`` up, and return kind -> (processes, PSS KiB) once idle."""
    scratch = Path(tempfile.mkdtemp(prefix="autolog-mem-"))
    var = scratch / "var"
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "AUTOLOG_REDIS_URL", "DATABASE_URL", "AUTOLOG_DATABASE_URL")}
    sys.path.insert(0, str(REPO))
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
        return {kind: (count, kib) for kind, (count, kib) in sorted(table.items())}
    finally:
        subprocess.run([*autolog, "down", "--timeout", "30"], cwd=checkout, env=env, capture_output=True,
                       check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def print_table(title: str, table: dict[str, tuple[int, int]]) -> None:
    total = sum(kib for _, kib in table.values())
    print(f"\n{title}: {sum(count for count, _ in table.values())} processes, {total / 1024:.0f} MiB PSS")
    for kind, (count, kib) in table.items():
        print(f"  {kind:<34} {count:>3} processes {kib / 1024:>8.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout to measure first, for comparison")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait once the pools are up")
    args = parser.parse_args()
    tables = {}
    if args.before:
        tables["before"] = measure(args.before.resolve(), args.settle)
        print_table(f"before ({args.before})", tables["before"])
    tables["after"] = measure(REPO, args.settle)
    print_table("this checkout", tables["after"])
    if "before" in tables:
        before = sum(kib for _, kib in tables["before"].values())
        after = sum(kib for _, kib in tables["after"].values())
        print(f"\nidle stack PSS: {after / 1024:.0f} MiB vs {before / 1024:.0f} MiB before ({after / before:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
