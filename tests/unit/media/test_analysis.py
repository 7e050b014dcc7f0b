"""The local analyzer: honest descriptions computed from real pixels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import CorruptMedia
from autolog.media import (
    AnalysisResult,
    Analyzer,
    FrameAnalysis,
    FrameInput,
    LocalAnalyzer,
    detect_scenes,
    extract_frames,
    probe_media,
)

if TYPE_CHECKING:
    from tests.conftest import SampleClips


@pytest.fixture(scope="module")
def scene_frames(test_media: SampleClips, tmp_path_factory: pytest.TempPathFactory) -> list[FrameInput]:
    """The four scene frames of cuts_noaudio.mp4: testsrc2, smptebars, mandelbrot, rgb stripes."""
    path = test_media.path("cuts_noaudio.mp4")
    probe = probe_media(path)
    scenes = detect_scenes(path, probe)
    images = extract_frames(path, probe, scenes, tmp_path_factory.mktemp("frames"))
    return [
        FrameInput(index=scene.index, time_s=scene.sample_s, image=image)
        for scene, image in zip(scenes, images, strict=True)
    ]


@pytest.fixture(scope="module")
def result(scene_frames: list[FrameInput]) -> AnalysisResult:
    """The local analysis of the four scene frames, without a prompt."""
    analyzer: Analyzer = LocalAnalyzer(reason="no Gemini key configured")
    return analyzer.analyze(scene_frames, None)


def test_result_names_the_local_provider_and_model(result: AnalysisResult) -> None:
    assert (result.provider, result.model) == ("local", "autolog-local-1")
    assert (result.input_tokens, result.output_tokens, result.cost_usd) == (0, 0, 0.0)


def test_every_description_says_it_is_a_local_pixel_analysis_not_gemini(result: AnalysisResult) -> None:
    for frame in result.frames:
        assert frame.description.startswith("Local pixel analysis, not Gemini (no Gemini key configured): ")


def test_visibly_different_frames_get_different_descriptors(result: AnalysisResult) -> None:
    # Given the smptebars frame and the mandelbrot frame
    bars, mandelbrot = result.frames[1].descriptors, result.frames[2].descriptors

    # Then their colours, light and detail differ
    assert colour_names(bars) != colour_names(mandelbrot)
    assert "pink" in colour_names(mandelbrot)
    assert bars["brightness"] != mandelbrot["brightness"]
    assert bars["contrast"] != mandelbrot["contrast"]
    assert bars["sharpness"] != mandelbrot["sharpness"]


def test_descriptors_hold_measurements_in_their_documented_ranges(result: AnalysisResult) -> None:
    for frame in result.frames:
        descriptors = frame.descriptors
        assert 0.0 <= as_float(descriptors["brightness"]) <= 1.0
        assert 0.0 <= as_float(descriptors["contrast"]) <= 1.0
        assert as_float(descriptors["sharpness"]) > 0.0
        assert as_float(descriptors["colourfulness"]) > 0.0
        colours = descriptors["dominant_colours"]
        assert isinstance(colours, list) and len(colours) == 3
        assert all(str(colour["hex"]).startswith("#") and len(str(colour["hex"])) == 7 for colour in colours)


def test_change_from_previous_is_none_for_the_first_frame_only(result: AnalysisResult) -> None:
    changes = [frame.descriptors["change_from_previous"] for frame in result.frames]
    assert changes[0] is None
    assert all(0.0 < as_float(change) <= 1.0 for change in changes[1:])


def test_a_hard_cut_is_described_as_a_scene_change(result: AnalysisResult) -> None:
    # Given the smptebars frame after the testsrc2 frame
    frame = result.frames[1]

    # Then both the keywords and the description mention the change
    assert "scene-change" in frame.keywords
    assert "strong change from the previous scene" in frame.description


def test_keywords_include_the_dominant_colour_names(result: AnalysisResult) -> None:
    frame = result.frames[2]
    assert set(colour_names(frame.descriptors)[:2]) <= set(frame.keywords)


def test_without_a_prompt_nothing_is_marked_ignored(result: AnalysisResult) -> None:
    assert all(frame.descriptors["prompt_ignored"] is False for frame in result.frames)


def test_a_prompt_is_recorded_as_ignored_not_pretended(scene_frames: list[FrameInput]) -> None:
    # Given a prompt the local analyzer cannot follow
    # When frames are analyzed with it
    result = LocalAnalyzer().analyze(scene_frames[:1], "List the people in the frame.")

    # Then the result admits the prompt was ignored
    frame = result.frames[0]
    assert frame.descriptors["prompt_ignored"] is True
    assert "prompt was not applied" in frame.description
    assert frame.subjects == ()


def test_an_unreadable_frame_image_raises_corrupt_media(tmp_path: Path) -> None:
    # Given a frame "image" that is text
    image = tmp_path / "frame_0000.jpg"
    image.write_text("not an image")

    # When it is analyzed, Then CorruptMedia names the file
    with pytest.raises(CorruptMedia, match="cannot read frame image"):
        LocalAnalyzer().analyze([FrameInput(index=0, time_s=0.0, image=image)], None)


def test_result_survives_a_round_trip_through_json(result: AnalysisResult) -> None:
    # When a result is written as JSON and read back, Then it is unchanged
    assert AnalysisResult.from_dict(json.loads(json.dumps(result.asdict()))) == result


def test_frame_analysis_from_dict_defaults_optional_fields() -> None:
    frame = FrameAnalysis.from_dict({"index": 1, "description": "A dog.", "keywords": ["dog"]})
    assert frame == FrameAnalysis(index=1, description="A dog.", keywords=("dog",))


def colour_names(descriptors: object) -> list[str]:
    """Return the dominant colour names in a descriptors mapping."""
    assert isinstance(descriptors, dict)
    return [str(colour["name"]) for colour in descriptors["dominant_colours"]]


def as_float(value: object) -> float:
    """Return a descriptor value checked to be a number."""
    assert isinstance(value, int | float)
    return float(value)
