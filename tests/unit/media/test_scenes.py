"""Scene detection in one decode pass, and one frame per scene."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import CorruptMedia
from autolog.media import Scene, detect_scenes, extract_frames, probe_media
from autolog.media.scenes import parse_scdet_output, scenes_between_cuts

if TYPE_CHECKING:
    from tests.conftest import SampleClips


def scenes_of(test_media: SampleClips, name: str) -> list[Scene]:
    """Detect the scenes of a clip using its probed duration and frame rate."""
    probe = probe_media(test_media.path(name))
    return detect_scenes(test_media.path(name), duration_s=probe.duration_s, fps=probe.fps)


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


def test_scenes_cover_the_clip_and_sample_their_middles(test_media: SampleClips) -> None:
    # Given an 8 s clip cut at 2, 4 and 6 s
    # When its scenes are detected
    scenes = scenes_of(test_media, "cuts_noaudio.mp4")

    # Then they are numbered from 0, run from 0 to the end without gaps, and sample the middle
    assert [scene.index for scene in scenes] == [0, 1, 2, 3]
    assert scenes[0].start_s == 0.0
    assert scenes[-1].end_s == pytest.approx(8.0)
    assert all(left.end_s == right.start_s for left, right in zip(scenes, scenes[1:], strict=False))
    assert all(scene.sample_s == pytest.approx((scene.start_s + scene.end_s) / 2) for scene in scenes)


def test_truncated_file_that_probes_fine_raises_corrupt_media_on_decode(test_media: SampleClips) -> None:
    # Given a file whose header claims 6 s but whose data stops about half way
    # When its scenes are detected
    with pytest.raises(CorruptMedia) as caught:
        scenes_of(test_media, "truncated_partial.mp4")

    # Then the error says how far decoding got
    assert caught.value.reason.startswith("decoding stopped at ")
    assert caught.value.reason.endswith(" s of 6.00 s")


def test_a_file_that_is_not_video_raises_corrupt_media_quoting_ffmpeg(test_media: SampleClips) -> None:
    # Given a text file, When its scenes are detected, Then ffmpeg's complaint is reported
    with pytest.raises(CorruptMedia, match="could not decode the video: .+"):
        detect_scenes(test_media.path("not_media.mp4"), duration_s=6.0, fps=25.0)


def test_scdet_output_gives_cut_times_and_the_last_frame_time() -> None:
    # Given metadata=print output for three frames, the second a cut
    text = (
        "frame:0    pts:0       pts_time:0\nlavfi.scd.score=0.000\n"
        "frame:1    pts:512     pts_time:0.04\nlavfi.scd.score=31.2\nlavfi.scd.time=0.04\n"
        "frame:2    pts:1024    pts_time:0.08\nlavfi.scd.score=0.1\n"
    )

    # When parsed, Then the cut and the last frame time come back
    assert parse_scdet_output(text) == ([0.04], 0.08)


def test_scenes_between_cuts_ignores_cuts_outside_the_clip_and_repeats() -> None:
    # Given cuts at the very start, twice at 1 s and past the end
    # When scenes are built for a 2 s clip
    scenes = scenes_between_cuts([0.0, 1.0, 1.0, 2.5], duration_s=2.0)

    # Then only the cut at 1 s splits the clip
    assert scenes == [
        Scene(index=0, start_s=0.0, end_s=1.0, sample_s=0.5),
        Scene(index=1, start_s=1.0, end_s=2.0, sample_s=1.5),
    ]


def test_scene_survives_a_round_trip_through_a_dict() -> None:
    scene = Scene(index=3, start_s=4.0, end_s=6.0, sample_s=5.0)
    assert Scene.from_dict(scene.asdict()) == scene


def test_extract_frames_writes_one_numbered_jpeg_per_scene(test_media: SampleClips, tmp_path: Path) -> None:
    # Given the four scenes of a clip
    scenes = scenes_of(test_media, "cuts_noaudio.mp4")

    # When their frames are extracted into a folder that does not exist yet
    frames = extract_frames(test_media.path("cuts_noaudio.mp4"), scenes, tmp_path / "frames")

    # Then there is exactly one non-empty JPEG per scene, named by scene index
    assert [path.name for path in frames] == [f"frame_{index:04d}.jpg" for index in range(4)]
    assert sorted(path.name for path in (tmp_path / "frames").iterdir()) == [path.name for path in frames]
    assert all(path.read_bytes()[:3] == b"\xff\xd8\xff" for path in frames)


def test_extract_frames_past_the_decodable_end_raises_corrupt_media(test_media: SampleClips, tmp_path: Path) -> None:
    # Given a scene whose sample time lies beyond the data of a truncated file
    scenes = [Scene(index=2, start_s=4.0, end_s=6.0, sample_s=5.0)]

    # When its frame is extracted, Then the missing output is reported
    with pytest.raises(CorruptMedia, match="frame of scene 2 at 5.00 s"):
        extract_frames(test_media.path("truncated_partial.mp4"), scenes, tmp_path)
