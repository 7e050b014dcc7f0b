"""An ALE (and a CSV) of many logged items: wall time and peak Python memory while streaming.

Usage: .venv/bin/python bench/export_bench.py [--items N] [--frames F] [--database URL]

It stores N logged items at 29.97 drop-frame (F shots, frame records and two transcript
segments each) in a scratch SQLite database (or ``--database``) with bulk inserts, then
consumes ``export_selection(..., "ale")`` and ``"csv"`` piece by piece, counting bytes, and
prints the time to the first piece and the total time, then the peak of ``tracemalloc``
during a second, traced run. The peak staying near one page's worth while the file grows with N is what
"streamed, not built whole in memory" means.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402

from autolog.exports import Selection, export_selection  # noqa: E402
from autolog.media.timecode import frame_timecode  # noqa: E402
from autolog.statuses import Status  # noqa: E402
from autolog.store import Store  # noqa: E402
from autolog.store.models import Frame, Item, Scene, TranscriptSegment  # noqa: E402

RATE, START = "30000/1001", "01:00:00;00"


def fill(store: Store, items: int, frames: int) -> None:
    """Insert ``items`` logged items with ``frames`` shots each, in bulk."""
    probe = {"container": "mov", "duration_s": 4.0 * frames, "fps": 29.97, "width": 1920, "height": 1080,
             "video_codec": "prores", "audio_codec": "pcm_s24le", "has_audio": True, "size_bytes": 1,
             "media_kind": "video", "nominal_fps": RATE, "display_width": 1920, "display_height": 1080,
             "audio_tracks": [{"index": 1, "codec": "pcm_s24le", "channels": 2, "sample_rate": 48000,
                               "start_s": 0.0, "duration_s": 4.0 * frames, "language": None}],
             "start_timecode": START, "drop_frame": True, "timecode_source": "tmcd track", "reel": "A001"}
    with store.engine.begin() as connection:
        ids = [f"LF{number:06d}" for number in range(items)]
        connection.execute(insert(Item), [
            {"id": item_id, "source": f"/media/{item_id}.mov", "status": Status.AVID_DESCRIPTION.value,
             "force_resume": False, "probe": probe, "has_audio": True, "media_kind": "video",
             "start_timecode": START, "drop_frame": True, "nominal_fps": RATE, "reel": "A001",
             "dead_lettered": False, "cancelled": False, "version": 1} for item_id in ids])
        connection.execute(insert(Scene), [
            {"item_id": item_id, "position": shot, "start_s": 4.0 * shot, "end_s": 4.0 * shot + 4.0,
             "sample_s": 4.0 * shot + 2.0, "image_path": f"/var/{item_id}/{shot}.jpg"}
            for item_id in ids for shot in range(frames)])
        connection.execute(insert(Frame), [
            {"item_id": item_id, "position": shot, "time_s": 4.0 * shot + 2.0,
             "timecode": frame_timecode(START, RATE, 4.0 * shot + 2.0), "image_path": f"/var/{item_id}/{shot}.jpg",
             "description": f"Shot {shot} of {item_id}: a street at dusk, people crossing.",
             "keywords": ["street", "dusk", "people"], "analysis": {"shot_type": "wide"},
             "transcript": "Over there, by the lights."}
            for item_id in ids for shot in range(frames)])
        connection.execute(insert(TranscriptSegment), [
            {"item_id": item_id, "position": position, "start_s": 1.0 + position, "end_s": 1.8 + position,
             "text": "Over there, by the lights."} for item_id in ids for position in range(2)])


def consume(store: Store, format_name: str) -> tuple[float, float, int]:
    """Consume one export; return (seconds to the first piece, total seconds, bytes)."""
    started = time.perf_counter()
    first_s: float | None = None
    size = 0
    for chunk in export_selection(store, Selection(), format_name).chunks:
        first_s = first_s if first_s is not None else time.perf_counter() - started
        size += len(chunk.encode())
    return first_s or 0.0, time.perf_counter() - started, size


def peak_bytes(store: Store, format_name: str) -> int:
    """Consume one export again under ``tracemalloc`` (which slows it); return the peak traced bytes."""
    tracemalloc.start()
    for _ in export_selection(store, Selection(), format_name).chunks:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--database", help="a SQLAlchemy URL; default: a scratch SQLite file")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="autolog-export-bench-")
    store = Store.open(args.database or f"sqlite:///{scratch}/bench.db")
    try:
        started = time.perf_counter()
        fill(store, args.items, args.frames)
        print(f"stored {args.items} items x {args.frames} shots in {time.perf_counter() - started:.1f} s")
        for format_name in ("ale", "csv"):
            first_s, total_s, size = consume(store, format_name)
            peak = peak_bytes(store, format_name)
            print(f"{format_name}: first piece {first_s * 1000:.0f} ms, all {total_s:.2f} s, "
                  f"{size / 1e6:.1f} MB written, peak traced memory {peak / 1e6:.1f} MB")
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
