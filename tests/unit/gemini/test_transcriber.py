"""The Gemini transcriber: the real google-genai client against the stand-in server.

The stand-in answers a request carrying audio with one phrase per stretch of sound in the
audio it received, timed in that audio's seconds, so the phrase times show where the sent
audio put the speech.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from google import genai

from autolog.context import make_transcriber
from autolog.errors import ConfigError, MalformedTranscript, UpstreamRateLimited, UpstreamRejected
from autolog.gemini import GeminiTranscriber, parse_segments
from autolog.media import PocketsphinxTranscriber, Segment, map_segments_to_frames, probe_media
from autolog.media.transcribe import Transcript
from autolog.settings import Settings
from tests.gemini_standin import AUDIO_TOKENS_PER_S, GeminiStandIn, sound_stretches

if TYPE_CHECKING:
    from tests.conftest import FootageCases, SampleClips


@pytest.fixture
def transcriber(gemini_client: genai.Client) -> GeminiTranscriber:
    """The transcriber on the stand-in's client."""
    return GeminiTranscriber(client=gemini_client, model="gemini-2.5-flash")


def transcribe(transcriber: GeminiTranscriber, path: Path) -> Transcript:
    return transcriber.transcribe(path, probe_media(path).audio_tracks)


def test_the_speech_track_goes_out_as_audio_in_one_call_and_timed_phrases_come_back(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, footage_cases: FootageCases
) -> None:
    # Given a camera MOV with a noise floor on track 1 and speech on track 2
    transcript = transcribe(transcriber, footage_cases.path("09_two_mono_tracks.mov"))

    [call] = standin.calls
    assert (call.model, call.api_key) == ("gemini-2.5-flash", "test-key")
    [(mime_type, audio)] = call.audio
    assert mime_type == "audio/ogg" and len(audio) < 40_000, "7 s of 16 kbit/s Opus"
    assert transcript.track_indexes == (2,)
    assert [segment.text for segment in transcript.segments] == ["stand-in phrase 1", "stand-in phrase 2"]
    assert transcript.segments[0].start_s == pytest.approx(0.5, abs=0.1)
    assert transcript.input_tokens == 7 * AUDIO_TOKENS_PER_S + len(call.prompt) // 4
    assert transcript.output_tokens == 24


def test_the_audio_sent_starts_at_clip_time_0_so_a_late_tracks_words_land_on_their_shot(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, sound_variants: FootageCases
) -> None:
    # Given an MPEG-TS whose sound starts 2 s after the picture, cut at 5.5 s
    name = "late_audio.ts"
    truth = sound_variants.truth[name]

    transcript = transcribe(transcriber, sound_variants.path(name))
    texts = map_segments_to_frames(transcript.segments, sound_variants.shot_spans(name))

    [(_, audio)] = standin.calls[0].audio
    duration_s, _ = sound_stretches(audio)
    assert duration_s == pytest.approx(truth["duration"], abs=0.1)
    assert [segment.start_s for segment in transcript.segments] == pytest.approx(
        [truth["sentence1"][0], truth["sentence2"][0]], abs=0.15)
    assert texts == {0: "stand-in phrase 1", 1: "stand-in phrase 2"}


def test_two_speech_tracks_go_out_mixed_in_one_audio(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, sound_variants: FootageCases
) -> None:
    transcript = transcribe(transcriber, sound_variants.path("two_lavs.mov"))

    assert len(standin.calls) == 1 and len(standin.calls[0].audio) == 1
    assert transcript.track_indexes == (1, 2)
    assert len(transcript.segments) == 2


def test_a_clip_without_sound_is_not_sent(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, test_media: SampleClips
) -> None:
    assert transcribe(transcriber, test_media.path("cuts_noaudio.mp4")) == Transcript(segments=(), track_indexes=())
    assert standin.calls == []


def test_a_429_raises_rate_limited_with_the_servers_retry_delay(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, footage_cases: FootageCases
) -> None:
    standin.answer_next("429", retry_delay_s=7)

    with pytest.raises(UpstreamRateLimited) as caught:
        transcribe(transcriber, footage_cases.path("13_audio_longer.mp4"))

    assert caught.value.retry_after_s == 7.0
    assert len(standin.calls) == 1, "the SDK must not retry on its own"


def test_a_400_is_rejected_permanently_with_the_servers_reason(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, footage_cases: FootageCases
) -> None:
    standin.answer_next("400", reason="Unsupported audio format.")

    with pytest.raises(UpstreamRejected, match="INVALID_ARGUMENT: Unsupported audio format"):
        transcribe(transcriber, footage_cases.path("13_audio_longer.mp4"))


def test_output_that_is_not_json_is_a_malformed_transcript(
    transcriber: GeminiTranscriber, standin: GeminiStandIn, footage_cases: FootageCases
) -> None:
    standin.answer_next("malformed")

    with pytest.raises(MalformedTranscript, match="gemini output is not valid JSON"):
        transcribe(transcriber, footage_cases.path("07_audio_only.wav"))


def test_phrases_come_back_in_time_order_without_blank_ones_and_cut_to_the_audio() -> None:
    answer = {"segments": [{"start_s": 4.0, "end_s": 7.4, "text": " the quick  brown fox "},
                           {"start_s": 0.5, "end_s": 2.5, "text": "welcome"},
                           {"start_s": 3.0, "end_s": 3.5, "text": "  "}]}

    segments = parse_segments(json.dumps(answer), duration_s=7.0)

    assert segments == (Segment(0.5, 2.5, "welcome"), Segment(4.0, 7.0, "the quick brown fox"))


@pytest.mark.parametrize("entry, problem", [
    ({"start_s": 3.0, "end_s": 2.0, "text": "backwards"}, "ends before it starts"),
    ({"start_s": 8.5, "end_s": 9.0, "text": "made up"}, "runs 8.5-9 s, past the 7.00 s of audio"),
    ({"start_s": "0:01", "end_s": 2.0, "text": "a string time"}, "no valid start_s"),
    ({"start_s": 1.0, "end_s": 2.0}, "is not an object with a text"),
])
def test_times_that_do_not_fit_the_audio_are_a_malformed_transcript(entry: dict[str, object], problem: str) -> None:
    with pytest.raises(MalformedTranscript, match=problem):
        parse_segments(json.dumps({"segments": [entry]}), duration_s=7.0)


def test_an_answer_without_a_segment_list_is_a_malformed_transcript() -> None:
    with pytest.raises(MalformedTranscript, match="no list of segments"):
        parse_segments(json.dumps({"frames": []}), duration_s=7.0)


def test_settings_choose_gemini_only_with_a_key() -> None:
    assert isinstance(make_transcriber(Settings()), PocketsphinxTranscriber)
    assert isinstance(make_transcriber(Settings(transcriber="gemini", gemini_api_key="key")), GeminiTranscriber)
    with pytest.raises(ConfigError, match="AUTOLOG_TRANSCRIBER"):
        make_transcriber(Settings(transcriber="gemini"))
