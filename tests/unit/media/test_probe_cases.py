"""Probing real-world footage: the cases in tests/footage_cases/cases.json, and variants of each kind."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import ConfigError
from autolog.media import probe_media
from tests.ffmpeg_runs import H264, make_clip

if TYPE_CHECKING:
    from tests.conftest import FootageCases

PICTURE = ["-f", "lavfi", "-i"]


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clips of the same kinds as the handed cases, in other rates, containers and timecode sources."""
    out = tmp_path_factory.mktemp("variants")
    make_clip(out / "tmcd_23976.mov", *PICTURE, "testsrc=size=64x48:rate=24000/1001", "-t", "1", *H264,
              "-timecode", "00:59:50:00", "-metadata:s:v:0", "reel_name=A001")
    make_clip(out / "tmcd_5994_df.mp4", *PICTURE, "testsrc=size=64x48:rate=60000/1001", "-t", "1", *H264,
              "-timecode", "01:00:00;00")
    make_clip(out / "stream_tag_25.mkv", *PICTURE, "testsrc=size=64x48:rate=25", "-t", "1", *H264,
              "-metadata:s:v:0", "timecode=10:00:00:00")
    make_clip(out / "mxf_header_50.mxf", *PICTURE, "testsrc=size=64x48:rate=50", "-t", "1", "-c:v", "mpeg2video",
              "-timecode", "10:00:00:00")
    make_clip(out / "bwf_bext.wav", *PICTURE, "sine=sample_rate=48000", "-t", "1",
              "-write_bext", "1", "-metadata", "time_reference=172800000")
    # As a phone held upside down: the display matrix is written on a stream-copy remux.
    make_clip(out / "upright.mp4", *PICTURE, "testsrc=size=64x48:rate=25", "-t", "1", *H264)
    make_clip(out / "rot_180.mp4", "-i", str(out / "upright.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=180")
    make_clip(out / "anamorphic.mp4", *PICTURE, "testsrc=size=720x576:rate=25", "-t", "1", "-vf", "setsar=64/45",
              *H264)
    make_clip(out / "late_audio.mkv", *PICTURE, "testsrc=size=64x48:rate=25", "-f", "lavfi", "-itsoffset", "2",
              "-i", "sine=sample_rate=48000", "-t", "4", *H264, "-c:a", "aac", "-map", "0:v", "-map", "1:a")
    return out


@pytest.mark.parametrize(("name", "expected"), [
    ("tmcd_23976.mov", ("00:59:50:00", False, "24000/1001", "tmcd track")),
    ("tmcd_5994_df.mp4", ("01:00:00;00", True, "60000/1001", "tmcd track")),
    ("stream_tag_25.mkv", ("10:00:00:00", False, "25/1", "stream tag")),
    ("mxf_header_50.mxf", ("10:00:00:00", False, "50/1", "format tag")),
    ("bwf_bext.wav", ("01:00:00:00", False, "25/1", "bext time reference")),
])
def test_the_start_timecode_is_read_where_the_file_carries_it(
    variants: Path, name: str, expected: tuple[str, bool, str, str],
) -> None:
    result = probe_media(variants / name)
    assert (result.start_timecode, result.drop_frame, result.nominal_fps, result.timecode_source) == expected


def test_the_reel_name_of_a_timecode_track_is_kept(variants: Path) -> None:
    assert probe_media(variants / "tmcd_23976.mov").reel == "A001"


def test_a_file_without_timecode_starts_at_the_configured_default(footage_cases: FootageCases) -> None:
    result = probe_media(footage_cases.path("09_two_mono_tracks.mov"), default_start_timecode="01:00:00:00")
    assert (result.start_timecode, result.timecode_source, result.drop_frame) == ("01:00:00:00", "default", False)


def test_a_malformed_default_start_timecode_is_a_config_error(footage_cases: FootageCases) -> None:
    with pytest.raises(ConfigError, match="AUTOLOG_DEFAULT_START_TIMECODE"):
        probe_media(footage_cases.path("09_two_mono_tracks.mov"), default_start_timecode="1 o'clock")


def test_the_drop_frame_camera_mov_case(footage_cases: FootageCases) -> None:
    truth = footage_cases.truth["03_ntsc_df_tc.mov"]
    result = probe_media(footage_cases.path("03_ntsc_df_tc.mov"))
    assert (result.start_timecode, result.drop_frame, result.nominal_fps) == (
        truth["start_timecode"], truth["drop_frame"], truth["nominal_fps"])


def test_a_variable_frame_rate_phone_clip_keeps_its_nominal_rate(footage_cases: FootageCases) -> None:
    truth = footage_cases.truth["02_vfr_lowlight.mp4"]
    result = probe_media(footage_cases.path("02_vfr_lowlight.mp4"))
    assert result.fps == truth["nominal_fps"]
    assert result.variable_frame_rate is truth["variable_frame_rate"]
    assert result.average_fps is not None and result.average_fps < 25


def test_a_constant_rate_clip_is_not_variable(footage_cases: FootageCases) -> None:
    assert probe_media(footage_cases.path("12_long_gop.ts")).variable_frame_rate is False


@pytest.mark.parametrize(("name", "display"), [("01_rot_portrait.mp4", (240, 320, 90))])
def test_the_display_matrix_rotation_turns_the_display_size(
    footage_cases: FootageCases, name: str, display: tuple[int, int, int],
) -> None:
    truth = footage_cases.truth[name]
    result = probe_media(footage_cases.path(name))
    assert (result.display_width, result.display_height, result.rotation) == display
    assert (result.display_width, result.display_height) == (truth["display_width"], truth["display_height"])
    assert (result.width, result.height) == (320, 240)


def test_a_rotate_tag_of_180_keeps_the_display_size(variants: Path) -> None:
    result = probe_media(variants / "rot_180.mp4")
    assert (result.rotation, result.display_width, result.display_height) == (180, 64, 48)


def test_anamorphic_pixels_widen_the_display_size(variants: Path) -> None:
    # 720x576 with 64:45 pixels (PAL 16:9) shows as 1024x576
    result = probe_media(variants / "anamorphic.mp4")
    assert (result.sample_aspect_ratio, result.display_width, result.display_height) == ("64:45", 1024, 576)


def test_an_interlaced_stream_reports_its_field_order(footage_cases: FootageCases) -> None:
    result = probe_media(footage_cases.path("06_interlaced_25i.mp4"))
    assert result.field_order == footage_cases.truth["06_interlaced_25i.mp4"]["field_order"]
    assert result.interlaced


def test_an_unflagged_interlaced_stream_is_found_by_idet(tmp_path: Path) -> None:
    # Given Motion JPEG in AVI of woven fields, which carries no field-order flag
    path = make_clip(tmp_path / "woven.avi", *PICTURE, "testsrc2=size=320x240:rate=50,trim=duration=3",
                     "-vf", "tinterlace=mode=interleave_top", "-c:v", "mjpeg", "-q:v", "3")
    # When probed, Then idet calls it interlaced (top field first)
    result = probe_media(path)
    assert result.field_order == "tt" and result.interlaced


def test_an_unflagged_progressive_stream_stays_progressive(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "plain.avi", *PICTURE, "testsrc2=size=320x240:rate=25,trim=duration=3",
                     "-c:v", "mjpeg", "-q:v", "3")
    assert probe_media(path).field_order == "progressive"


def test_an_embedded_thumbnail_listed_first_is_not_the_picture(footage_cases: FootageCases) -> None:
    truth = footage_cases.truth["19_thumb_first.mp4"]
    result = probe_media(footage_cases.path("19_thumb_first.mp4"))
    assert (result.video_stream_index, result.width, result.height) == (1, truth["width"], truth["height"])
    assert result.video_codec == "h264"


def test_sound_that_outlasts_the_picture_gives_a_shorter_video_duration(footage_cases: FootageCases) -> None:
    truth = footage_cases.truth["13_audio_longer.mp4"]
    result = probe_media(footage_cases.path("13_audio_longer.mp4"))
    assert result.video_duration_s == pytest.approx(truth["video_duration"], abs=0.04)
    assert result.duration_s > 6.5


def test_a_live_webm_without_a_duration_gets_one_from_its_packets(footage_cases: FootageCases) -> None:
    truth = footage_cases.truth["14_webm_live.webm"]
    result = probe_media(footage_cases.path("14_webm_live.webm"))
    assert result.duration_s == pytest.approx(truth["duration"], abs=0.04)
    assert result.video_duration_s == pytest.approx(truth["duration"], abs=0.04)


def test_opus_codec_delay_does_not_lengthen_a_clip(footage_cases: FootageCases, tmp_path: Path) -> None:
    # Given the live WebM (175 frames, Opus from -6.5 ms) and the same streams remuxed with a Duration element
    live = footage_cases.path("14_webm_live.webm")
    seekable = make_clip(tmp_path / "seekable.webm", "-i", str(live), "-c", "copy")

    for path in (live, seekable):
        result = probe_media(path)
        # Then each lasts its 175 frames: the pre-skip the decoders drop is not a 176th (the ALE's End read 07:01)
        assert result.start_time_s < 0
        assert round(result.duration_s * 25) == 175
        assert result.duration_s == pytest.approx(7.0, abs=0.02)


def test_an_opus_sound_file_lasts_what_it_plays(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "tone.webm", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                     "-c:a", "libopus", "-b:a", "32k")

    result = probe_media(path)

    assert result.media_kind == "audio" and result.start_time_s < 0
    assert result.duration_s == pytest.approx(3.0, abs=0.005)  # ffprobe: 3.008 s from -0.007 s


@pytest.mark.parametrize("name", ["07_audio_only.wav", "08_cover_art.m4a"])
def test_sound_rolls_and_cover_art_files_are_audio_items(footage_cases: FootageCases, name: str) -> None:
    result = probe_media(footage_cases.path(name))
    assert (result.media_kind, result.video_stream_index, result.fps) == ("audio", None, 0.0)
    assert len(result.audio_tracks) == 1 and result.duration_s == pytest.approx(6.9, abs=0.1)


def test_every_audio_track_is_listed_with_its_index(footage_cases: FootageCases) -> None:
    result = probe_media(footage_cases.path("09_two_mono_tracks.mov"))
    assert [(track.index, track.channels) for track in result.audio_tracks] == [(1, 1), (2, 1)]


def test_a_late_starting_audio_track_has_its_offset(variants: Path) -> None:
    result = probe_media(variants / "late_audio.mkv")
    assert result.audio_tracks[0].start_s == pytest.approx(2.0, abs=0.03)
    assert result.video_start_s == pytest.approx(0.0, abs=0.01)


def test_a_spanned_avchd_clip_keeps_clip_time_from_its_first_timestamp(footage_cases: FootageCases) -> None:
    result = probe_media(footage_cases.path("05_avchd_spanned.m2ts"))
    assert result.start_time_s > 600
    assert result.video_start_s == pytest.approx(0.0, abs=0.05)
    assert result.audio_tracks[0].start_s == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("name", ["11_one_frame.mp4", "11_ten_frames.mp4"])
def test_very_short_clips_probe(footage_cases: FootageCases, name: str) -> None:
    result = probe_media(footage_cases.path(name))
    assert result.video_duration_s is not None and 0 < result.video_duration_s <= 0.4


def test_the_probe_survives_a_round_trip_through_json(footage_cases: FootageCases) -> None:
    from autolog.media import ProbeResult

    result = probe_media(footage_cases.path("09_two_mono_tracks.mov"))
    assert ProbeResult.from_dict(result.asdict()) == result
