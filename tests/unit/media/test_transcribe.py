"""Offline speech recognition and attaching speech to frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from autolog.media import PocketsphinxTranscriber, Segment, Transcriber, map_segments_to_frames, probe_media
from autolog.media.recognise import MAX_WINDOW_S, padded_windows
from autolog.media.transcribe import Transcript

if TYPE_CHECKING:
    from tests.conftest import SampleClips

#: Words of the espeak-ng sentence that pocketsphinx 5.1.1 recognises on this clip
#: (it also hears "welcome", "logging", "over", "start"; "test", "jumps", "scene" and
#: "now" come back wrong). Asserting on any three leaves room for small model drift.
KEY_WORDS = {"footage", "quick", "brown", "fox", "lazy", "dog"}


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    """One transcriber for the module, so the model loads once."""
    return PocketsphinxTranscriber()


@pytest.fixture(scope="module")
def speech_segments(transcriber: Transcriber, test_media: SampleClips) -> list[Segment]:
    """The transcript of speech.mp4."""
    path = test_media.path("speech.mp4")
    return list(transcriber.transcribe(path, probe_media(path).audio_tracks).segments)


def words_of(segments: list[Segment]) -> list[str]:
    """Return every word of a transcript, in order."""
    return [word for segment in segments for word in segment.text.split()]


def test_transcriber_is_named_pocketsphinx(transcriber: Transcriber) -> None:
    assert transcriber.name == "pocketsphinx"


def test_speech_clip_transcript_contains_its_key_words(speech_segments: list[Segment]) -> None:
    assert len(KEY_WORDS & set(words_of(speech_segments))) >= 3


def test_speech_is_timed_after_its_half_second_lead_in(speech_segments: list[Segment], test_media: SampleClips) -> None:
    # Given speech that starts 0.5 s into the clip
    truth = test_media.manifest["speech.mp4"]

    # Then every phrase starts after 0.4 s, ends within the clip, and phrases are in order
    assert speech_segments
    assert all(0.4 < segment.start_s < segment.end_s <= truth["duration"] for segment in speech_segments)
    starts = [segment.start_s for segment in speech_segments]
    assert starts == sorted(starts)


def test_key_words_are_in_the_phrase_after_the_cut(speech_segments: list[Segment]) -> None:
    # Given "the quick brown fox ..." is spoken after the 3 s cut
    # Then the phrase holding "fox" starts near or after the cut
    fox = next(segment for segment in speech_segments if "fox" in segment.text.split())
    assert fox.start_s > 2.5


def test_transcript_has_no_filler_tokens(speech_segments: list[Segment]) -> None:
    for word in words_of(speech_segments):
        assert word.isalpha() or "'" in word, word


def test_a_tone_over_noise_yields_few_words(transcriber: Transcriber, test_media: SampleClips) -> None:
    path = test_media.path("cuts_audio.mp4")
    assert len(words_of(list(transcriber.transcribe(path, probe_media(path).audio_tracks).segments))) < 5


def test_a_clip_without_audio_has_an_empty_transcript(transcriber: Transcriber, test_media: SampleClips) -> None:
    path = test_media.path("cuts_noaudio.mp4")
    assert transcriber.transcribe(path, probe_media(path).audio_tracks) == Transcript(segments=(), track_indexes=())


def test_segment_survives_a_round_trip_through_a_dict() -> None:
    segment = Segment(start_s=0.5, end_s=1.25, text="quick brown fox")
    assert Segment.from_dict(segment.asdict()) == segment


def test_a_segment_inside_one_frame_maps_to_that_frame_only() -> None:
    segments = [Segment(start_s=0.5, end_s=1.5, text="hello there")]
    assert map_segments_to_frames(segments, [(0, 0.0, 2.0), (1, 2.0, 4.0)]) == {0: "hello there", 1: ""}


def test_a_segment_across_a_cut_maps_to_both_frames() -> None:
    segments = [Segment(start_s=1.5, end_s=2.5, text="across the cut")]
    texts = map_segments_to_frames(segments, [(0, 0.0, 2.0), (1, 2.0, 4.0)])
    assert texts == {0: "across the cut", 1: "across the cut"}


def test_a_segment_touching_a_frame_boundary_does_not_overlap_it() -> None:
    segments = [Segment(start_s=2.0, end_s=3.0, text="after")]
    assert map_segments_to_frames(segments, [(0, 0.0, 2.0), (1, 2.0, 4.0)]) == {0: "", 1: "after"}


def test_several_segments_in_a_frame_are_joined_in_order() -> None:
    segments = [Segment(start_s=0.1, end_s=0.9, text="one"), Segment(start_s=1.0, end_s=1.9, text="two")]
    assert map_segments_to_frames(segments, [(7, 0.0, 2.0)]) == {7: "one two"}


def test_no_segments_map_every_frame_to_empty_text() -> None:
    assert map_segments_to_frames([], [(0, 0.0, 1.0), (1, 1.0, 2.0)]) == {0: "", 1: ""}


def test_speech_windows_are_padded_without_overlapping_their_neighbours() -> None:
    # Given two stretches of speech 0.3 s apart, When they are padded by 0.3 s
    windows = padded_windows([(0.5, 2.7), (3.0, 8.1)], pad_s=0.3, total_s=9.0)

    # Then each grows by the pad, but they meet in the middle of the gap
    assert [bound for window in windows for bound in window] == pytest.approx([0.2, 2.85, 2.85, 8.4])


def test_a_long_stretch_of_speech_is_decoded_in_pieces() -> None:
    # Given 70 s of continuous "speech", When it is windowed, Then no piece exceeds the limit
    windows = padded_windows([(0.0, 70.0)], pad_s=0.3, total_s=70.0)
    assert len(windows) == 3
    assert all(end_s - start_s <= MAX_WINDOW_S for start_s, end_s in windows)
    assert (windows[0][0], windows[-1][1]) == (0.0, 70.0)
