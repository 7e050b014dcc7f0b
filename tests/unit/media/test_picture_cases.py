"""Steps 2-3's pictures of the footage cases (tests/footage_cases/cases.json), against their truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from autolog.media import detect_scenes, probe_media
from tests.unit.media.pictures import (
    SAME_PICTURE,
    Pictures,
    combing,
    difference,
    image_size,
    make_pictures,
    pixels,
    reference_frame,
)

if TYPE_CHECKING:
    from tests.conftest import FootageCases


@pytest.fixture(scope="module")
def pictures_of(
    footage_cases: FootageCases, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Pictures]:
    """Make (once per module) every image steps 2-3 make for a footage case."""
    made: dict[str, Pictures] = {}

    def make(name: str) -> Pictures:
        if name not in made:
            made[name] = make_pictures(footage_cases.path(name), tmp_path_factory.mktemp(Path(name).stem))
        return made[name]

    return make


def cuts_of(pictures: Pictures) -> list[float]:
    """Return the start of every shot after the first."""
    return [scene.start_s for scene in pictures.scenes[1:]]


@pytest.mark.parametrize("name", [
    "01_rot_portrait.mp4", "02_vfr_lowlight.mp4", "12_long_gop.ts", "13_audio_longer.mp4",
    "14_webm_live.webm", "19_thumb_first.mp4", "20_high_motion.mp4",
])
def test_cuts_are_the_truth_within_one_frame(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures], name: str
) -> None:
    # Given a case with known hard cuts, When steps 2-3 run
    pictures = pictures_of(name)

    # Then each shot after the first starts at a true cut, within one frame
    assert cuts_of(pictures) == pytest.approx(footage_cases.truth[name]["cuts"], abs=1.0 / pictures.probe.fps)


def test_high_motion_footage_makes_no_one_frame_shots(pictures_of: Callable[[str], Pictures]) -> None:
    # Given fractal zoom and cellular automata between hard cuts (scdet fires twice at 2.0 s)
    # When steps 2-3 run
    pictures = pictures_of("20_high_motion.mp4")

    # Then no shot is shorter than the 0.5 s minimum
    assert min(scene.end_s - scene.start_s for scene in pictures.scenes) >= 0.5


def test_without_a_minimum_shot_scdet_alone_makes_a_one_frame_shot(footage_cases: FootageCases) -> None:
    # Given the high-motion case, When shots are found with no minimum length
    clip = footage_cases.path("20_high_motion.mp4")
    scenes = detect_scenes(clip, probe_media(clip), min_shot_s=0.0)

    # Then the motion-sensitive detector's second firing makes a one-frame shot: the minimum is what removes it
    assert min(scene.end_s - scene.start_s for scene in scenes) == pytest.approx(0.04)


def test_a_portrait_phone_clip_gives_upright_images(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures], tmp_path: Path
) -> None:
    # Given a 320x240 picture with a display matrix turning it a quarter clockwise
    truth = footage_cases.truth["01_rot_portrait.mp4"]
    pictures = pictures_of("01_rot_portrait.mp4")
    shown = (truth["display_width"], truth["display_height"])

    # Then the poster and the sample frames are 240x320, and the contact sheet's tiles portrait
    assert image_size(pictures.poster) == shown
    assert [image_size(sample) for sample in pictures.samples] == [shown] * len(pictures.samples)
    assert image_size(pictures.sheet) == (4 * 160, 3 * 214)
    # And each shows what a player shows at its time (ffmpeg's own rotation of a full decode)
    for scene, sample in zip(pictures.scenes, pictures.samples, strict=True):
        expected = reference_frame(footage_cases.path("01_rot_portrait.mp4"), pictures.probe, scene.sample_s,
                                   tmp_path / f"ref{scene.index}.png")
        assert difference(pixels(sample), expected) < SAME_PICTURE


@pytest.mark.parametrize("name", ["02_vfr_lowlight.mp4", "12_long_gop.ts", "14_webm_live.webm"])
def test_every_sample_frame_and_the_poster_are_the_picture_at_their_own_time(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures], tmp_path: Path, name: str
) -> None:
    # Given a clip where seeking is inexact (long GOP in MPEG-TS, no index in a live WebM) or
    # the rate varies, When steps 2-3 run
    clip = footage_cases.path(name)
    pictures = pictures_of(name)
    references = [reference_frame(clip, pictures.probe, scene.sample_s, tmp_path / f"ref{scene.index}.png")
                  for scene in pictures.scenes]

    # Then each sample is the frame a full decode gives at its time, and not another shot's
    for index, sample in enumerate(pictures.samples):
        differences = [difference(pixels(sample), reference) for reference in references]
        assert differences[index] < SAME_PICTURE
        assert all(other > 4 * SAME_PICTURE for position, other in enumerate(differences) if position != index)
    # And so is the poster, at its stated time
    poster_reference = reference_frame(clip, pictures.probe, pictures.poster_s, tmp_path / "poster.png")
    assert difference(pixels(pictures.poster), poster_reference) < SAME_PICTURE


def test_the_long_gop_shots_are_the_known_source_pictures(pictures_of: Callable[[str], Pictures]) -> None:
    # Given the long-GOP case: colour test pattern, SMPTE bars, fractal, moving test pattern
    pictures = pictures_of("12_long_gop.ts")
    samples = [pixels(sample) for sample in pictures.samples]

    # Then the bars' shot has the bars' grey top-left, and the fractal's shot its pink-and-green field
    assert samples[1][20, 20] == pytest.approx([192, 192, 192], abs=24)
    mean_colour = samples[2].mean(axis=(0, 1))
    assert mean_colour[1] > mean_colour[2]
    assert difference(samples[0], samples[3]) > 4 * SAME_PICTURE


def test_an_interlaced_clip_gives_images_without_combing(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures], tmp_path: Path
) -> None:
    # Given 25i top-field-first footage of a moving picture
    clip = footage_cases.path("06_interlaced_25i.mp4")
    pictures = pictures_of("06_interlaced_25i.mp4")
    woven = reference_frame(clip, pictures.probe, pictures.poster_s, tmp_path / "woven.png")

    # Then the raw frame combs, and the poster and the sample frames do not (the contact
    # sheet's tiles halve the height, which blends a woven frame's fields instead of combing
    # them: test_picture_variants checks tiles of unscaled height)
    assert combing(woven) > 0.01
    for image in (pictures.poster, *pictures.samples):
        assert combing(pixels(image)) < combing(woven) / 4, image.name


@pytest.mark.parametrize("name", ["11_one_frame.mp4", "11_ten_frames.mp4"])
def test_one_frame_and_sub_second_clips_are_logged_as_one_shot(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures], tmp_path: Path, name: str
) -> None:
    # Given a clip of one frame or ten, When steps 2-3 run
    pictures = pictures_of(name)

    # Then there is one shot over the whole picture, with its sample, poster and contact sheet
    assert len(pictures.scenes) == footage_cases.truth[name]["scenes"]
    assert pictures.scenes[0].end_s == pytest.approx(pictures.probe.video_duration_s)
    assert image_size(pictures.samples[0]) == image_size(pictures.poster) == (320, 240)
    assert image_size(pictures.sheet) == (640, 360)
    first = reference_frame(footage_cases.path(name), pictures.probe, 0.0, tmp_path / "first.png")
    assert pixels(pictures.sheet)[:120, :160].mean() == pytest.approx(
        pixels(tmp_path / "first.png", size=(160, 120)).mean(), abs=SAME_PICTURE)
    assert first.shape == (240, 320, 3)


def test_sound_that_outlasts_the_picture_is_healthy(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures]
) -> None:
    # Given 4 s of picture and 6.9 s of sound, When steps 2-3 run (no "truncated" error)
    truth = footage_cases.truth["13_audio_longer.mp4"]
    pictures = pictures_of("13_audio_longer.mp4")

    # Then the shots end with the picture, and every sample lies within it
    assert pictures.scenes[-1].end_s == pytest.approx(truth["video_duration"], abs=0.04)
    assert all(scene.sample_s < truth["video_duration"] for scene in pictures.scenes)


def test_a_live_webm_without_a_duration_is_split_to_its_end(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures]
) -> None:
    # Given a WebM written live, with no Duration element, When steps 2-3 run
    pictures = pictures_of("14_webm_live.webm")

    # Then the last shot ends where the 7 s picture does
    assert pictures.scenes[-1].end_s == pytest.approx(footage_cases.truth["14_webm_live.webm"]["duration"], abs=0.04)


def test_an_embedded_thumbnail_listed_first_is_never_the_picture(
    footage_cases: FootageCases, pictures_of: Callable[[str], Pictures]
) -> None:
    # Given a drone file whose stream 0 is a plain red 160x120 thumbnail
    truth = footage_cases.truth["19_thumb_first.mp4"]
    pictures = pictures_of("19_thumb_first.mp4")

    # Then every image is of the 320x240 video, none of the red thumbnail
    assert image_size(pictures.poster) == (truth["width"], truth["height"])
    for image in (pictures.poster, *pictures.samples):
        red, green, blue = pixels(image).mean(axis=(0, 1))
        assert not (red > 200 and green < 60 and blue < 60), image.name
    assert np.ptp(pixels(pictures.sheet)) > 200
