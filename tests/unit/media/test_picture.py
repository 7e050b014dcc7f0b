"""The picture filters chosen from a probe, and what taking a frame at its time costs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import UnsupportedMedia
from autolog.media import (
    ProbeResult,
    detect_scenes,
    display_filters,
    extract_frames,
    image_size,
    make_contact_sheet,
    make_poster,
    picture_filters,
    probe_media,
)
from autolog.media.scenes import Scene
from tests.ffmpeg_runs import recording_runner

if TYPE_CHECKING:
    from tests.conftest import SampleClips

ORDINARY = ProbeResult(
    container="mov,mp4,m4a,3gp,3g2,mj2", duration_s=4.0, fps=25.0, width=1920, height=1080, video_codec="h264",
    audio_codec=None, has_audio=False, size_bytes=1000, video_stream_index=0, nominal_fps="25/1",
    video_duration_s=4.0, display_width=1920, display_height=1080,
)


def test_an_ordinary_clip_needs_no_filter_and_gets_only_its_scale() -> None:
    # Given a progressive, SDR, upright, square-pixel clip
    # Then it needs no picture filter, and its images are only sized
    assert picture_filters(ORDINARY) == []
    assert display_filters(ORDINARY, max_width=640) == "scale=640:360,setsar=1"


@pytest.mark.parametrize(("field_order", "field"), [("tt", "top"), ("bt", "top"), ("bb", "bottom"), ("tb", "bottom")])
def test_an_interlaced_clip_keeps_the_field_shown_first(field_order: str, field: str) -> None:
    probe = dataclasses.replace(ORDINARY, field_order=field_order)
    assert picture_filters(probe) == [f"field=type={field}"]


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_an_hdr_clip_is_tone_mapped_after_the_scale(transfer: str) -> None:
    # Given a PQ or HLG clip
    probe = dataclasses.replace(ORDINARY, color_transfer=transfer)

    # Then its images are tone-mapped to BT.709, on the scaled image's pixels
    chain = display_filters(probe, width=160)
    assert chain.startswith(f"scale=160:90,zscale=tin={transfer}:")
    assert "tonemap=mobius" in chain and chain.endswith("zscale=t=bt709:m=bt709:r=tv,format=yuv420p,setsar=1")


def test_a_bt709_tagged_clip_is_not_tone_mapped() -> None:
    assert picture_filters(dataclasses.replace(ORDINARY, color_transfer="bt709")) == []


@pytest.mark.parametrize(("rotation", "turn"), [(90, "transpose=clock"), (180, "hflip,vflip"),
                                                (270, "transpose=cclock")])
def test_a_rotated_clip_is_turned_clockwise_after_deinterlacing(rotation: int, turn: str) -> None:
    probe = dataclasses.replace(ORDINARY, rotation=rotation, field_order="tt")
    assert picture_filters(probe) == ["field=type=top", turn]


def test_image_sizes_follow_the_display_size() -> None:
    # Given an anamorphic PAL 16:9 picture shown at 1024x576, and a portrait phone picture
    anamorphic = dataclasses.replace(ORDINARY, width=720, height=576, display_width=1024, display_height=576,
                                     sample_aspect_ratio="64:45")
    portrait = dataclasses.replace(ORDINARY, rotation=90, display_width=1080, display_height=1920)

    # Then images keep the display proportions, never scaled up past it, with even heights
    assert image_size(anamorphic) == (1024, 576)
    assert image_size(anamorphic, max_width=640) == (640, 360)
    assert image_size(anamorphic, width=160) == (160, 90)
    assert image_size(portrait, max_width=640) == (640, 1138)
    assert image_size(dataclasses.replace(ORDINARY, display_width=320, display_height=240), max_width=640) == (
        320, 240)


def test_an_audio_only_probe_has_no_image_size() -> None:
    with pytest.raises(ValueError, match="no picture size"):
        image_size(dataclasses.replace(ORDINARY, display_width=0, display_height=0))


def test_a_frame_of_an_indexed_mp4_takes_one_seek(test_media: SampleClips, tmp_path: Path) -> None:
    # Given an MP4 (an exact seek index) and a runner that counts ffmpeg runs
    clip = test_media.path("cuts_noaudio.mp4")
    runs: list[list[str]] = []

    # When the frames of two shots well into the clip are taken
    scenes = [Scene(index=0, start_s=2.0, end_s=4.0, sample_s=3.0), Scene(index=1, start_s=6.0, end_s=8.0,
                                                                           sample_s=7.0)]
    extract_frames(clip, probe_media(clip), scenes, tmp_path, run=recording_runner(runs))

    # Then each took one ffmpeg run, seeking half a second before its frame: no decode from the start
    assert len(runs) == 2
    assert [run[run.index("-ss") + 1] for run in runs] == ["2.500000", "6.500000"]


def test_picture_steps_refuse_an_audio_only_item_permanently(tmp_path: Path) -> None:
    # Given the probe of a sound roll: no video stream
    audio = dataclasses.replace(ORDINARY, media_kind="audio", video_stream_index=None, display_width=0,
                                display_height=0)
    clip = tmp_path / "roll.wav"

    # When any picture step runs, Then it is refused as unsupported (a permanent error), before ffmpeg runs
    with pytest.raises(UnsupportedMedia, match="no video stream"):
        make_poster(clip, audio, tmp_path / "poster.jpg", at_s=0.0)
    with pytest.raises(UnsupportedMedia, match="no video stream"):
        make_contact_sheet(clip, audio, tmp_path / "sheet.jpg")
    with pytest.raises(UnsupportedMedia, match="no video stream"):
        detect_scenes(clip, audio)
