"""Scene detection in one decode pass, and one frame per scene."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import CorruptMedia
from autolog.media import Scene, detect_scenes, extract_frames, probe_media
from autolog.media.scenes import DecodePass, keep_cuts, parse_scdet_output, picture_end_s, scenes_between_cuts

if TYPE_CHECKING:
    from tests.conftest import SampleClips


def scenes_of(test_media: SampleClips, name: str) -> list[Scene]:
    """Detect the scenes of a clip with its own probe."""
    return detect_scenes(test_media.path(name), probe_media(test_media.path(name)))


@pytest.mark.parametrize("name", ["cuts_noaudio.mp4", "cuts_audio.mp4", "speech.mp4"])
def test_detected_cuts_match_the_manifest_within_one_frame(test_media: SampleClips, name: str) -> None:
    # Given a clip with known hard cuts
    truth = test_media.manifest[name]

    # When its scenes are detected
    scenes = scenes_of(test_media, name)

    # Then each scene after the first starts at a manifest cut, within one frame
    assert len(scenes) == truth["scenes"]
    cuts = [scene.start_s for scene in scenes[1:]]
    assert cuts == pytest.approx(truth["cuts"], abs=1.0 / truth["fps"])


def test_scenes_cover_the_clip_and_sample_the_frame_nearest_their_middles(test_media: SampleClips) -> None:
    # Given an 8 s, 25 fps clip cut at 2, 4 and 6 s
    # When its scenes are detected
    scenes = scenes_of(test_media, "cuts_noaudio.mp4")

    # Then they are numbered from 0, run from 0 to the end without gaps, and sample a real
    # frame (a multiple of 1/25 s) within half a frame of the middle
    assert [scene.index for scene in scenes] == [0, 1, 2, 3]
    assert scenes[0].start_s == 0.0
    assert scenes[-1].end_s == pytest.approx(8.0)
    assert all(left.end_s == right.start_s for left, right in zip(scenes, scenes[1:], strict=False))
    assert all(scene.sample_s == pytest.approx((scene.start_s + scene.end_s) / 2, abs=0.02) for scene in scenes)
    assert all(scene.sample_s * 25 == pytest.approx(round(scene.sample_s * 25)) for scene in scenes)


def test_truncated_file_that_probes_fine_raises_corrupt_media_on_decode(test_media: SampleClips) -> None:
    # Given a file whose header claims 6 s but whose data stops about half way
    # When its scenes are detected
    with pytest.raises(CorruptMedia) as caught:
        scenes_of(test_media, "truncated_partial.mp4")

    # Then the error says how far decoding got
    assert caught.value.reason.startswith("decoding stopped at ")
    assert caught.value.reason.endswith(" s of 6.00 s")


def test_a_file_that_is_not_video_raises_corrupt_media_quoting_ffmpeg(test_media: SampleClips) -> None:
    # Given a text file in place of a clip that probed fine
    probe = probe_media(test_media.path("cuts_audio.mp4"))

    # When its scenes are detected, Then ffmpeg's complaint is reported
    with pytest.raises(CorruptMedia, match="could not decode the video: .+"):
        detect_scenes(test_media.path("not_media.mp4"), probe)


def test_scdet_output_gives_every_frame_time_and_the_cuts_with_their_scores() -> None:
    # Given metadata=print output for three frames, the second a cut
    # (three hours in, where pts_time and lavfi.scd.time keep only 6 significant digits)
    text = (
        "frame:0    pts:10800000000 pts_time:10800\nlavfi.scd.mafd=0.000\nlavfi.scd.score=0.000\n"
        "frame:1    pts:10800040000 pts_time:10800\nlavfi.scd.mafd=31.2\nlavfi.scd.score=31.2\n"
        "lavfi.scd.time=10800\n"
        "frame:2    pts:10800080000 pts_time:10800.1\nlavfi.scd.mafd=2.0\nlavfi.scd.score=0.1\n"
    )

    # When parsed, Then the exact frame times (from the microsecond pts) and the scored cut come back
    assert parse_scdet_output(text) == DecodePass(frame_times_s=(10800.0, 10800.04, 10800.08),
                                                  cuts=((10800.04, 31.2),))


def test_the_picture_ends_one_frame_gap_after_the_last_frame() -> None:
    # Given frames slowing from 30 to 15 fps at the end, or a single frame at 25 fps
    # When the picture's end is computed, Then the last frame lasts as long as the gap before it
    assert picture_end_s([0.0, 1 / 30, 2 / 30, 4 / 30], fps=30.0) == pytest.approx(6 / 30)
    assert picture_end_s([0.0], fps=25.0) == pytest.approx(0.04)


def test_of_a_cluster_of_cuts_the_strongest_is_kept() -> None:
    # Given scdet firing on a cut at 2.0 s and again on the next frame, as fast motion makes it
    cuts = [(2.0, 44.4), (2.04, 21.9), (4.4, 34.6)]

    # When cuts are kept for a minimum shot of 0.5 s
    kept = keep_cuts(cuts, start_s=0.0, end_s=6.9, min_shot_s=0.5)

    # Then the weaker detection next to the strong one is dropped
    assert kept == [2.0, 4.4]


def test_no_shot_is_shorter_than_the_minimum_at_the_ends_either() -> None:
    # Given cuts 0.3 s from the start and 0.2 s from the end of a 5 s clip, and one exactly 0.5 s from a cut
    cuts = [(0.3, 50.0), (2.0, 20.0), (2.5, 15.0), (4.8, 50.0)]

    # When cuts are kept for a minimum shot of 0.5 s
    # Then the shots at the ends are merged, and a shot of exactly the minimum stays
    assert keep_cuts(cuts, start_s=0.0, end_s=5.0, min_shot_s=0.5) == [2.0, 2.5]


def test_a_zero_minimum_keeps_every_cut_inside_the_clip_once() -> None:
    # Given cuts at the very start, twice at 1 s and past the end of a 2 s clip
    cuts = [(0.0, 30.0), (1.0, 30.0), (1.0, 20.0), (2.5, 30.0)]

    # When kept with no minimum, Then only the cut at 1 s remains
    assert keep_cuts(cuts, start_s=0.0, end_s=2.0, min_shot_s=0.0) == [1.0]


def test_scenes_between_cuts_sample_the_frame_nearest_each_middle() -> None:
    # Given 10 fps frames over 2 s and a cut at 1.2 s
    frames = [index / 10 for index in range(20)]

    # When scenes are built
    scenes = scenes_between_cuts([1.2], frames, end_s=2.0)

    # Then each samples a real frame: the middle 0.6 s, and 1.6 s
    assert scenes == [
        Scene(index=0, start_s=0.0, end_s=1.2, sample_s=0.6),
        Scene(index=1, start_s=1.2, end_s=2.0, sample_s=1.6),
    ]


def test_scene_survives_a_round_trip_through_a_dict() -> None:
    scene = Scene(index=3, start_s=4.0, end_s=6.0, sample_s=5.0)
    assert Scene.from_dict(scene.asdict()) == scene


def test_extract_frames_writes_one_numbered_jpeg_per_scene(test_media: SampleClips, tmp_path: Path) -> None:
    # Given the four scenes of a clip
    clip = test_media.path("cuts_noaudio.mp4")
    probe = probe_media(clip)
    scenes = detect_scenes(clip, probe)

    # When their frames are extracted into a folder that does not exist yet
    frames = extract_frames(clip, probe, scenes, tmp_path / "frames")

    # Then there is exactly one non-empty JPEG per scene, named by scene index
    assert [path.name for path in frames] == [f"frame_{index:04d}.jpg" for index in range(4)]
    assert sorted(path.name for path in (tmp_path / "frames").iterdir()) == [path.name for path in frames]
    assert all(path.read_bytes()[:3] == b"\xff\xd8\xff" for path in frames)


def test_extract_frames_past_the_decodable_end_raises_corrupt_media(test_media: SampleClips, tmp_path: Path) -> None:
    # Given a scene whose sample time lies beyond the data of a truncated file
    clip = test_media.path("truncated_partial.mp4")
    scenes = [Scene(index=2, start_s=4.0, end_s=6.0, sample_s=5.0)]

    # When its frame is extracted, Then the missing output is reported
    with pytest.raises(CorruptMedia, match="frame of scene 2 at 5.00 s"):
        extract_frames(clip, probe_media(clip), scenes, tmp_path)
