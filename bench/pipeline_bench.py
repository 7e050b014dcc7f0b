"""Orchestration overhead of steps 1-3: the pipeline beside the bare media work, one run.

Usage: .venv/bin/python bench/pipeline_bench.py [--clips N] [--threads T] [--picture-repeats R]

It makes N clips (copies of the three valid sample clips) under a scratch media root, runs
the bare work of steps 1-3 (ffprobe, poster, contact sheet, scdet pass, frame extraction:
the same ``autolog.media`` calls the actors make) on T threads, then the same clips through
the real worker pools (default sizes, a private Redis, SQLite) up to ``Awaiting User
Input``, and prints both wall times, their ratio and the workers' peak RSS (VmHWM).

Then it prices the picture filters on clips that need them (720p, 10 s, cuts every 2.5 s):
interlaced 50i, HDR PQ and HDR HLG. Each clip's steps 2-3 media work runs R times with its
probe, and R times with a probe that says the clip needs no filter; the difference is what
deinterlacing or tone-mapping costs that clip.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._proc import descendants  # noqa: E402  (after the path is set)

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


#: Picture-filter clips: name, the lavfi picture, and encoder options. Each is 10 s of four
#: shots (cuts at 2.5, 5 and 7.5 s) at 1280x720.
_SHOTS = ("testsrc2", "smptebars", "mandelbrot", "testsrc")
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-threads", "1"]
_X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le"]
_HDR_FROM_SDR = "format=gbrp,zscale=tin=bt709:min=gbr:pin=bt709:rin=full:t={transfer}:m=bt2020nc:p=bt2020:r=tv:npl=100"
PICTURE_CLIPS = (
    ("interlaced_50i.mp4", 50, "tinterlace=mode=interleave_top,setfield=tff,format=yuv420p",
     [*_X264, "-flags", "+ildct+ilme", "-field_order", "tt", "-x264-params", "tff=1"]),
    ("hdr_pq.mp4", 25, _HDR_FROM_SDR.format(transfer="smpte2084"),
     [*_X265, "-x265-params", "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"]),
    ("hdr_hlg.mp4", 25, _HDR_FROM_SDR.format(transfer="arib-std-b67"),
     [*_X265, "-x265-params", "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"]),
)


def bare_steps(path: Path, out: Path) -> None:
    """Do steps 1-3's media work for one clip with no queue, store or status in between."""
    from autolog.media import probe_media

    picture_steps(path, probe_media(path), out)


def picture_steps(path: Path, probe: Any, out: Path) -> None:
    """Do steps 2-3's media work for one probed clip, as ``autolog.steps`` does."""
    from autolog.media import detect_scenes, extract_frames, make_contact_sheet, make_poster, poster_time_s

    make_poster(path, probe, out / "poster.jpg", at_s=poster_time_s(probe))
    make_contact_sheet(path, probe, out / "contact_sheet.jpg")
    scenes = detect_scenes(path, probe)
    extract_frames(path, probe, scenes, out / "samples")


def make_picture_clip(root: Path, name: str, rate: int, filters: str, codec: list[str]) -> Path:
    """Make one 10-s, 720p clip of four shots that needs a picture filter."""
    inputs = []
    for shot in _SHOTS:
        inputs += ["-f", "lavfi", "-i", f"{shot}=size=1280x720:rate={rate},trim=duration=2.5"]
    graph = "".join(f"[{index}:v]" for index in range(len(_SHOTS))) + f"concat=n={len(_SHOTS)}:v=1:a=0,{filters}[v]"
    path = root / name
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
                    *codec, str(path)], check=True)
    return path


def picture_costs(root: Path, repeats: int) -> list[tuple[str, float, float]]:
    """Time steps 2-3 on each picture clip with and without its filters: (name, with, without).

    Times are the CPU seconds of the ffmpeg processes (user + system), per run: unlike
    wall time, they do not depend on what else the machine is doing.
    """
    from autolog.media import probe_media

    costs = []
    for name, rate, filters, codec in PICTURE_CLIPS:
        path = make_picture_clip(root, name, rate, filters, codec)
        probe = probe_media(path)
        plain = dataclasses.replace(probe, field_order="progressive", color_transfer=None)
        assert probe.interlaced or probe.hdr, f"{name} should need a picture filter"
        timings = []
        for variant in (probe, plain):
            started = _children_cpu_s()
            for repeat in range(repeats):
                picture_steps(path, variant, root / "out" / f"{path.stem}{repeat}")
            timings.append((_children_cpu_s() - started) / repeats)
        costs.append((name, timings[0], timings[1]))
    return costs


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_kib(pids: list[int]) -> dict[int, int]:
    """Return VmHWM (peak resident set, KiB) of each live pid and of every process below it."""
    peaks = {}
    for pid in pids:
        for task in [pid, *descendants(pid)]:
            try:
                status = Path(f"/proc/{task}/status").read_text()
            except FileNotFoundError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[task] = int(line.split()[1])
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--threads", type=int, default=8, help="threads for the bare baseline (step 1's pool)")
    parser.add_argument("--picture-repeats", type=int, default=3, help="runs per picture-filter clip (0: skip)")
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
    from ops.runtime import ensure_redis, pipeline_context

    paths = make_clips(media, args.clips + 1)
    warmup, paths = paths[0], paths[1:]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(lambda path: bare_steps(path, scratch / "bare" / path.stem), paths))
    bare_s = time.perf_counter() - started

    settings = Settings.from_env()
    ensure_redis(settings)
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
        masters = sorted({status.pid for status in pools.status(STEP_POOLS) if status.pid})
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
    if args.picture_repeats > 0:
        scratch = Path(tempfile.mkdtemp(prefix="autolog-bench-picture-"))
        try:
            costs = picture_costs(scratch, args.picture_repeats)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"picture filters, steps 2-3 media work per 10 s 720p clip, ffmpeg CPU s (mean of "
              f"{args.picture_repeats}):")
        for name, with_s, without_s in costs:
            print(f"  {name:20s} with filter {with_s:.2f} s, without {without_s:.2f} s, "
                  f"filter costs {with_s - without_s:+.2f} s ({with_s / without_s - 1:+.0%})")


if __name__ == "__main__":
    main()
