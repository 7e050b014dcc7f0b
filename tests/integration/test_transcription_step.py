"""Step 6 through a real worker: every audio track, clip time, and Gemini under the shared limit.

Items are set up at ``6 - Generating Description`` with their real file info and the
shots and frame records steps 3 and 5 would have stored (from the clips' truth), so the
test shows where each phrase lands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google import genai

from actors import services, transcribe
from actors._broker import rate_limits
from actors.analysis import gemini_rate_limit
from actors.transcription import transcription_rate_limit
from autolog.context import Context
from autolog.gemini import GeminiTranscriber
from autolog.media import probe_media
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import FrameView, NewItem, SceneView, Store
from middleware import RateLimit
from tests.conftest import SENTENCE1, SENTENCE2, FootageCases
from tests.gemini_standin import GeminiStandIn

Drain = Callable[..., None]

#: Roomy enough that only the behaviour under test makes anything wait.
LIMIT = RateLimit(key="gemini-transcription-test", requests=50, window_ms=2_000, concurrency=4,
                  tokens_per_call=1_000)


@pytest.fixture
def gemini(context: Context, gemini_client: genai.Client) -> Context:
    """The worker's context with the Gemini transcriber on the stand-in, and a fresh limit."""
    installed = dataclasses.replace(context, transcriber=GeminiTranscriber(client=gemini_client,
                                                                            model="gemini-2.5-flash"))
    services().install(installed)
    rate_limits().limiter.reset(LIMIT.key)
    return installed


def add_transcription_item(store: Store, item_id: str, source: Path, shots: list[tuple[int, float, float]]) -> None:
    """Create an item ready for step 6, with its file info, shots and one frame record per shot."""
    probe = probe_media(source)
    store.items.create([NewItem(item_id, str(source))])
    store.items.update(item_id, probe=probe.asdict(), has_audio=probe.has_audio)
    store.items.transition(item_id, Status.PENDING_FILE_INFO, Status.GENERATING_DESCRIPTION)
    store.results.save_scenes(item_id, [
        SceneView(position=index, start_s=start_s, end_s=end_s, sample_s=(start_s + end_s) / 2, image_path="")
        for index, start_s, end_s in shots])
    store.results.save_frames(item_id, [
        FrameView(position=index, time_s=(start_s + end_s) / 2, timecode="00:00:00:00", image_path="",
                  description="", keywords=[], analysis={}, transcript=None)
        for index, start_s, end_s in shots])


def frame_words(store: Store, item_id: str) -> list[set[str]]:
    return [set((frame.transcript or "").split()) for frame in store.results.frames(item_id)]


def events(context: Context, item_id: str, kind: str) -> list[Any]:
    return [event for event in context.store.timeline.for_item(item_id) if event.event == kind]


def test_a_late_tracks_words_land_on_the_frames_of_their_shot(
    context: Context, drain: Drain, sound_variants: FootageCases, unique_id: Callable[[str], str]
) -> None:
    # Given a Matroska clip whose sound starts 2 s late, shots cut at 5.5 s between the sentences
    item_id = unique_id("late")
    name = "late_audio.mkv"
    add_transcription_item(context.store, item_id, sound_variants.path(name), sound_variants.shot_spans(name))

    transcribe.send(item_id)
    drain()

    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    first, second = frame_words(context.store, item_id)
    assert first and not first & SENTENCE2
    assert second & SENTENCE2
    starts = [segment.start_s for segment in context.store.results.transcript(item_id)]
    assert starts[0] == pytest.approx(sound_variants.truth[name]["sentence1"][0], abs=0.2)


def test_speech_on_the_second_track_reaches_the_frames(
    context: Context, drain: Drain, footage_cases: FootageCases, unique_id: Callable[[str], str]
) -> None:
    # Given camera MOV 09: a noise floor on track 1, speech on track 2, a cut at 3 s
    item_id = unique_id("track2")
    name = "09_two_mono_tracks.mov"
    add_transcription_item(context.store, item_id, footage_cases.path(name), [(0, 0.0, 3.0), (1, 3.0, 7.0)])

    transcribe.send(item_id)
    drain()

    words = set().union(*frame_words(context.store, item_id))
    assert words & set(footage_cases.truth[name]["transcript_contains_any"])


def test_an_audio_only_item_is_transcribed_without_frames(
    context: Context, drain: Drain, footage_cases: FootageCases, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("sound-roll")
    add_transcription_item(context.store, item_id, footage_cases.path("07_audio_only.wav"), [])

    transcribe.send(item_id)
    drain()

    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    words = {word for segment in context.store.results.transcript(item_id) for word in segment.text.split()}
    assert words & (SENTENCE1 | SENTENCE2)


def test_gemini_transcribes_through_the_shared_rate_limit(
    gemini: Context, standin: GeminiStandIn, drain: Drain, sound_variants: FootageCases,
    unique_id: Callable[[str], str],
) -> None:
    item_id = unique_id("gemini-late")
    name = "late_audio.ts"
    add_transcription_item(gemini.store, item_id, sound_variants.path(name), sound_variants.shot_spans(name))

    transcribe.send_with_options(args=(item_id,), rate_limit=dataclasses.asdict(LIMIT))
    drain()

    assert gemini.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    assert [frame.transcript for frame in gemini.store.results.frames(item_id)] == [
        "stand-in phrase 1", "stand-in phrase 2"]
    [call] = standin.calls
    counters = rate_limits().counters(LIMIT.key)
    assert counters.calls == 1
    assert counters.tokens == call.prompt_tokens, "the call's reported tokens replace the estimate"


def test_a_429_pauses_transcription_then_retries_without_spending_a_retry(
    gemini: Context, standin: GeminiStandIn, drain: Drain, footage_cases: FootageCases,
    unique_id: Callable[[str], str],
) -> None:
    item_id = unique_id("gemini-limited")
    add_transcription_item(gemini.store, item_id, footage_cases.path("13_audio_longer.mp4"),
                           [(0, 0.0, 2.0), (1, 2.0, 4.0)])
    standin.answer_next("429", retry_delay_s=0.5)

    transcribe.send_with_options(args=(item_id,), rate_limit=dataclasses.asdict(LIMIT))
    drain()

    item = gemini.store.items.get(item_id)
    assert (item.status, item.error, item.dead_lettered) == (Status.AVID_DESCRIPTION, None, False)
    limited, succeeded = standin.calls
    assert (limited.status, succeeded.status) == (429, 200)
    assert succeeded.arrived_s >= limited.finished_s + 0.5
    assert events(gemini, item_id, "failed") == []
    assert [event.detail["reason"] for event in events(gemini, item_id, "deferred")] == ["paused"]


def test_gemini_transcription_shares_the_analysis_quota_and_pocketsphinx_has_none() -> None:
    gemini_settings = Settings(transcriber="gemini", gemini_api_key="key", gemini_model="gemini-2.5-flash")

    assert transcription_rate_limit(gemini_settings) == gemini_rate_limit(gemini_settings)
    assert transcription_rate_limit(gemini_settings.replace(transcriber="pocketsphinx")) is None
