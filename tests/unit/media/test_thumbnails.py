"""Posters and contact sheets: real JPEGs, written atomically, never silently empty."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from autolog.errors import CorruptMedia
from autolog.media import make_contact_sheet, make_poster, probe_media
from tests.ffmpeg_runs import H264, make_clip

if TYPE_CHECKING:
    from tests.conftest import SampleClips

JPEG_MAGIC = b"\xff\xd8\xff"


def poster(clip: Path, out: Path, *, at_s: float) -> Path:
    """Make a poster of a clip with its own probe."""
    return make_poster(clip, probe_media(clip), out, at_s=at_s)


def jpeg_size(path: Path) -> tuple[int, int]:
    """Return the pixel size of a file, checking it really is a JPEG."""
    assert path.read_bytes()[:3] == JPEG_MAGIC
    with Image.open(path) as image:
        assert image.format == "JPEG"
        return image.size


def test_poster_is_a_jpeg_at_the_clip_size(test_media: SampleClips, tmp_path: Path) -> None:
    # Given a 320x240 clip
    # When a poster is made one second in
    poster_path = poster(test_media.path("cuts_audio.mp4"), tmp_path / "poster.jpg", at_s=1.0)

    # Then it is a JPEG at the clip's size (small clips are not scaled up)
    assert poster_path == tmp_path / "poster.jpg"
    assert jpeg_size(poster_path) == (320, 240)


def test_poster_of_a_wide_clip_is_scaled_down_to_640(tmp_path: Path) -> None:
    # Given a one-second 1280x720 clip
    source = make_clip(tmp_path / "wide.mp4", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=1", *H264)

    # When a poster is made
    poster_path = poster(source, tmp_path / "poster.jpg", at_s=0.5)

    # Then it is 640 wide and keeps the aspect ratio
    assert jpeg_size(poster_path) == (640, 360)


def test_poster_creates_missing_folders(test_media: SampleClips, tmp_path: Path) -> None:
    # Given an output path under folders that do not exist yet
    out = tmp_path / "items" / "abc" / "poster.jpg"

    # When a poster is made, Then the folders are created and the file written
    assert poster(test_media.path("cuts_audio.mp4"), out, at_s=1.0).is_file()


def test_poster_rerun_overwrites_and_leaves_no_temporary_files(test_media: SampleClips, tmp_path: Path) -> None:
    # Given a poster already made
    out = tmp_path / "poster.jpg"
    poster(test_media.path("cuts_audio.mp4"), out, at_s=1.0)

    # When it is made again at another time
    poster(test_media.path("cuts_audio.mp4"), out, at_s=3.0)

    # Then only the new poster is in the folder
    assert [path.name for path in tmp_path.iterdir()] == ["poster.jpg"]
    assert jpeg_size(out) == (320, 240)


def test_poster_past_the_decodable_end_of_a_truncated_file_raises_corrupt_media(
    test_media: SampleClips, tmp_path: Path
) -> None:
    # Given a file whose header claims 6 s but whose data stops near 2 s
    # When a poster is asked for at 4 s (ffmpeg exits 0 there and writes nothing)
    with pytest.raises(CorruptMedia, match=r"decoded no frame for the poster at 4\.00 s"):
        poster(test_media.path("truncated_partial.mp4"), tmp_path / "poster.jpg", at_s=4.0)

    # Then no poster and no temporary file is left
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_is_a_jpeg_grid_of_160_pixel_tiles(test_media: SampleClips, tmp_path: Path) -> None:
    # Given a 6 s clip
    clip = test_media.path("cuts_audio.mp4")

    # When a default 4x3 contact sheet is made
    sheet = make_contact_sheet(clip, probe_media(clip), tmp_path / "sheet.jpg")

    # Then it is a JPEG 4 tiles of 160x120 wide and 3 high
    assert jpeg_size(sheet) == (4 * 160, 3 * 120)


def test_contact_sheet_layout_follows_columns_and_rows(test_media: SampleClips, tmp_path: Path) -> None:
    # Given an 8 s clip, When a 2x2 sheet is made, Then it is 2 tiles wide and 2 high
    clip = test_media.path("cuts_noaudio.mp4")
    sheet = make_contact_sheet(clip, probe_media(clip), tmp_path / "sheet.jpg", columns=2, rows=2)
    assert jpeg_size(sheet) == (2 * 160, 2 * 120)


def test_contact_sheet_of_a_file_that_is_not_video_raises_corrupt_media(
    test_media: SampleClips, tmp_path: Path
) -> None:
    # Given a text file in place of a clip that probed fine
    probe = probe_media(test_media.path("cuts_audio.mp4"))

    # When a contact sheet is made, Then ffmpeg's complaint is reported
    with pytest.raises(CorruptMedia, match="could not make the 4x3 contact sheet"):
        make_contact_sheet(test_media.path("not_media.mp4"), probe, tmp_path / "sheet.jpg")
