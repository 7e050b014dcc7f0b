"""The demo's sample clips: made by the test-media script, only those the demo ingests kept."""

from __future__ import annotations

from pathlib import Path

from ops.demo import DEMO_CLIPS, make_clips


def test_the_demo_folder_holds_only_the_clips_the_demo_ingests(tmp_path: Path) -> None:
    # The demo's folder is a watch folder by default: any other clip there would become an item
    folder = tmp_path / "media" / "demo"

    clips = make_clips(folder)

    assert clips == [folder / name for name in DEMO_CLIPS]
    assert sorted(path.name for path in folder.iterdir()) == sorted([*DEMO_CLIPS, "manifest.json"])
    assert all(clip.stat().st_size for clip in clips if clip.name != "not_media.mp4")
    # A second run keeps what is there
    before = {path: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert make_clips(folder) == clips
    assert {path: path.stat().st_mtime_ns for path in folder.iterdir()} == before
