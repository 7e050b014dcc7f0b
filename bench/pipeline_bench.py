"""Orchestration overhead of steps 1-3: the pipeline beside the bare media work, one run.

Usage: .venv/bin/python bench/pipeline_bench.py [--clips N] [--threads T]

It makes N clips (copies of the three valid sample clips) under a scratch media root, runs
the bare work of steps 1-3 (ffprobe, poster, contact sheet, scdet pass, frame extraction:
the same ``autolog.media`` calls the actors make) on T threads, then the same clips through
the real worker pools (default sizes, a private Redis, SQLite) up to ``Awaiting User
Input``, and prints both wall times, their ratio and the workers' peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEP_POOLS = ("file_info", "thumbnails", "assess", "control")
CLIPS = ("cuts_noaudio.mp4", "cuts_audio.mp4", "speech.mp4")


def make_clips(root: Path, count: int) -> list[Path]:
    """Make the sample clips once and copy them to ``count`` distinct files."""
    source = root / "source"
    subprocess.run(["bash", str(REPO / "ops" / "make_test_media.sh"), str(source)], check=True,
                   capture_output=True)
    paths = []
    for index in range(count):
        name = CLIPS[index % len(CLIPS)]
        path = root / f"clip{index:03d}_{name}"
        shutil.copy(source / name, path)
        paths.append(path)
    return paths


def bare_steps(path: Path, out: Path) -> None:
    """Do steps 1-3's media work for one clip with no queue, store or status in between."""
    from autolog.media import detect_scenes, extract_frames, make_contact_sheet, make_poster, probe_media

    probe = probe_media(path)
    make_poster(path, out / "poster.jpg", at_s=min(probe.duration_s * 0.1, 10.0))
    make_contact_sheet(path, out / "contact_sheet.jpg", duration_s=probe.duration_s)
    scenes = detect_scenes(path, duration_s=probe.duration_s, fps=probe.fps)
    extract_frames(path, scenes, out / "samples")


def peak_rss_kib(pids: list[int]) -> dict[int, int]:
    """Return VmHWM (peak resident set, KiB) of each live pid and its children."""
    peaks = {}
    for pid in pids:
        for task in [pid, *_children(pid)]:
            try:
                status = Path(f"/proc/{task}/status").read_text()
            except FileNotFoundError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[task] = int(line.split()[1])
    return peaks


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--threads", type=int, default=8, help="threads for the bare baseline (step 1's pool)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="autolog-bench-"))
    media = scratch / "media"
    media.mkdir()
    # Entry point: configure before ``actors`` is imported (it builds the broker from env).
    os.environ.update({"AUTOLOG_VAR_DIR": str(scratch / "var"), "AUTOLOG_MEDIA_ROOTS": str(media),
                       "AUTOLOG_NAMESPACE": "autolog-bench"})
    for name in ("REDIS_URL", "DATABASE_URL"):
        os.environ.pop(name, None)

    from autolog.settings import Settings
    from autolog.store import NewItem
    from ops.pools import PoolManager
    from ops.runtime import connect_redis, pipeline_context

    paths = make_clips(media, args.clips + 1)
    warmup, paths = paths[0], paths[1:]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(lambda path: bare_steps(path, scratch / "bare" / path.stem), paths))
    bare_s = time.perf_counter() - started

    settings = connect_redis(Settings.from_env(), start=True)
    pools = PoolManager(settings)
    pools.start(STEP_POOLS)
    try:
        with pipeline_context(settings) as context:
            from pipelines import actions

            def wait(ids: list[str]) -> None:
                deadline = time.monotonic() + 600
                while True:
                    items = [context.store.items.get(item_id) for item_id in ids]
                    if all(item.status.value == "Awaiting User Input" for item in items):
                        return
                    failed = [item.id for item in items if item.error]
                    if failed or time.monotonic() > deadline:
                        sys.exit(f"pipeline did not finish: failed={failed}")
                    time.sleep(0.05)

            # The warm-up item waits for the pools to boot, so boot time is not counted.
            actions.submit(context, [NewItem("warmup", str(warmup))])
            wait(["warmup"])
            ids = [f"bench{index:03d}" for index in range(len(paths))]
            started = time.perf_counter()
            actions.submit(context, [NewItem(item_id, str(path)) for item_id, path in zip(ids, paths, strict=True)])
            wait(ids)
            pipeline_s = time.perf_counter() - started
        masters = [status.pid for status in pools.status(STEP_POOLS) if status.pid]
        peaks = peak_rss_kib(masters)
    finally:
        pools.stop(STEP_POOLS, timeout_s=30)
        from autolog.local_redis import private_redis

        private_redis(settings).stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"clips: {len(paths)}  (steps 1-3, default pools: file_info 8, thumbnails 8, assess 6 threads)")
    print(f"bare media work on {args.threads} threads: {bare_s:.2f} s")
    print(f"through the pipeline:            {pipeline_s:.2f} s")
    print(f"ratio pipeline / bare:           {pipeline_s / bare_s:.2f}x")
    print(f"worker processes: {len(peaks)}, peak RSS max {max(peaks.values()) / 1024:.0f} MiB, "
          f"sum {sum(peaks.values()) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
