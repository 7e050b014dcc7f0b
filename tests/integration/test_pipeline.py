"""The footage pipeline end to end through a real dramatiq worker on the private Redis."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import pytest

from actors import services
from autolog.context import Context
from autolog.errors import TransientError
from autolog.media import AnalysisResult, FrameInput, LocalAnalyzer
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines import actions
from tests.conftest import SampleClips

Drain = Callable[..., None]


def ingest(context: Context, test_media: SampleClips, name: str, item_id: str, *, force_resume: bool) -> None:
    actions.submit(context, [NewItem(item_id, str(test_media.path(name)), force_resume=force_resume)])


def events(context: Context, item_id: str, kind: str) -> list[str | None]:
    return [event.step for event in context.store.timeline.for_item(item_id) if event.event == kind]


def test_clip_without_audio_ends_at_avid_description_without_step_6(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("noaudio")

    ingest(context, test_media, "cuts_noaudio.mp4", item_id, force_resume=True)
    drain()

    item = context.store.items.get(item_id)
    assert item.status is Status.AVID_DESCRIPTION
    assert item.has_audio is False
    assert events(context, item_id, "succeeded") == ["file_info", "thumbnails", "assess", "analysis", "frames"]
    frames = context.store.results.frames(item_id)
    assert len(frames) == test_media.manifest["cuts_noaudio.mp4"]["scenes"]
    assert [frame.timecode for frame in frames][:2] == ["00:00:01:00", "00:00:03:00"]
    assert all("local" in frame.description.lower() for frame in frames)


def test_default_mode_halts_for_input_and_a_prompt_resumes_through_step_6(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("audio")
    ingest(context, test_media, "cuts_audio.mp4", item_id, force_resume=False)
    drain()
    assert context.store.items.get(item_id).status is Status.AWAITING_USER_INPUT

    actions.prompt(context, item_id, "Describe the test patterns")
    drain()

    item = context.store.items.get(item_id)
    assert item.status is Status.AVID_DESCRIPTION
    assert item.prompt == "Describe the test patterns"
    assert events(context, item_id, "succeeded")[-3:] == ["analysis", "frames", "transcription"]


def test_speech_clip_transcript_holds_its_key_words(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("speech")

    ingest(context, test_media, "speech.mp4", item_id, force_resume=True)
    drain()

    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    text = " ".join(segment.text for segment in context.store.results.transcript(item_id)).lower()
    assert sum(word in text for word in ("quick", "brown", "fox", "lazy", "dog", "scene", "footage")) >= 3
    assert any(frame.transcript for frame in context.store.results.frames(item_id))


@pytest.mark.parametrize(("name", "status", "error_type", "step"), [
    ("not_media.mp4", Status.PENDING_FILE_INFO, "NotMedia", "file_info"),
    ("empty.mp4", Status.PENDING_FILE_INFO, "EmptyMedia", "file_info"),
    ("truncated_nomoov.mp4", Status.PENDING_FILE_INFO, "NotMedia", "file_info"),
    ("truncated_partial.mp4", Status.THUMBNAILS_COMPLETE, "CorruptMedia", "assess"),
])
def test_bad_media_keeps_its_status_and_is_dead_lettered_without_retries(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str],
    name: str, status: Status, error_type: str, step: str,
) -> None:
    item_id = unique_id("bad")

    ingest(context, test_media, name, item_id, force_resume=True)
    drain()

    item = context.store.items.get(item_id)
    assert item.status is status
    assert item.error is not None
    assert (item.error["type"], item.error["step"], item.error["permanent"]) == (error_type, step, True)
    assert name in item.error["message"]
    assert item.dead_lettered
    assert events(context, item_id, "started").count(step) == 1
    assert events(context, item_id, "dead_lettered") == [step]


def test_racing_deliveries_advance_an_item_once(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    from pipelines.footage import enqueue_from

    item_id = unique_id("race")
    ingest(context, test_media, "cuts_noaudio.mp4", item_id, force_resume=True)
    enqueue_from(item_id, Status.PENDING_FILE_INFO)
    enqueue_from(item_id, Status.PENDING_FILE_INFO)

    drain()

    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    succeeded = events(context, item_id, "succeeded")
    assert succeeded == ["file_info", "thumbnails", "assess", "analysis", "frames"]
    assert context.store.results.counts(item_id)["frames"] == test_media.manifest["cuts_noaudio.mp4"]["scenes"]


def test_a_redelivered_step_creates_no_duplicates(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    from actors import make_frames

    item_id = unique_id("again")
    ingest(context, test_media, "cuts_noaudio.mp4", item_id, force_resume=True)
    drain()
    before = context.store.results.counts(item_id)

    make_frames(item_id)
    make_frames(item_id)

    assert context.store.results.counts(item_id) == before


def test_missing_source_fails_readably_without_retries(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("gone")
    # Submit refuses a missing file, so the item is stored as if its file vanished after submit.
    [stored] = context.store.items.create([NewItem(item_id, str(test_media.path(f"{item_id}-missing.mp4")),
                                                   force_resume=True)])

    actions.queue_items(context, [stored])
    drain()

    item = context.store.items.get(item_id)
    assert item.error is not None and item.error["type"] == "MediaMissing"
    assert item.status is Status.PENDING_FILE_INFO
    assert events(context, item_id, "started") == ["file_info"]


class FlakyAnalyzer:
    """Stands in for an upstream service that fails transiently a set number of times."""

    provider = "local"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def analyze(self, frames: Sequence[FrameInput], prompt: str | None) -> AnalysisResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientError(f"upstream busy (call {self.calls})")
        return LocalAnalyzer().analyze(frames, prompt)


def test_transient_failure_is_retried_and_the_item_completes(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    services().install(dataclasses.replace(context, analyzer=FlakyAnalyzer(failures=2)))
    item_id = unique_id("flaky")

    ingest(context, test_media, "cuts_noaudio.mp4", item_id, force_resume=True)
    drain()

    item = context.store.items.get(item_id)
    assert item.status is Status.AVID_DESCRIPTION
    assert item.error is None
    assert events(context, item_id, "failed") == ["analysis", "analysis"]
    assert events(context, item_id, "retried") == ["analysis", "analysis"]
    attempts = [event.attempt for event in context.store.timeline.for_item(item_id)
                if event.event == "started" and event.step == "analysis"]
    assert attempts == [1, 2, 3]


def test_transient_failures_past_the_retry_budget_are_dead_lettered(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str], settings: Settings
) -> None:
    services().install(dataclasses.replace(context, analyzer=FlakyAnalyzer(failures=99)))
    item_id = unique_id("down")

    ingest(context, test_media, "cuts_noaudio.mp4", item_id, force_resume=True)
    drain()

    item = context.store.items.get(item_id)
    assert item.status is Status.CREATING_FRAMES
    assert item.dead_lettered
    assert item.error is not None
    assert (item.error["type"], item.error["permanent"]) == ("TransientError", False)
    assert item.error["attempt"] == settings.max_retries + 1
    assert events(context, item_id, "dead_lettered") == ["analysis"]
