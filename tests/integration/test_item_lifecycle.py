"""Item lifecycle through a real worker: cancel stops the running step, rerun re-logs from a chosen step."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

import pytest
from dramatiq.broker import MessageProxy

from actors import analyze, broker, services
from autolog.context import Context
from autolog.media._run import run_process
from autolog.media.analysis import AnalysisResult, FrameInput
from autolog.statuses import Status
from autolog.steps import run_folder
from autolog.stops import StepCancelled, stop_requested, stop_when
from autolog.store import NewItem
from middleware import RUN_OPTION, StepStops
from pipelines import actions
from tests.conftest import SampleClips

Drain = Callable[..., None]

#: Two minutes of silence at real time: an ffmpeg that only a kill ends within a test's time.
LONG_FFMPEG = ["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "anullsrc", "-t", "120", "-f", "null", "-"]


class ToolAnalyzer:
    """An analyzer that runs a long ffmpeg, as one shelling out to a local model would."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def analyze(self, frames: Sequence[FrameInput], prompt: str | None) -> AnalysisResult:
        self.started.set()
        run_process(LONG_FFMPEG, capture_output=True, timeout=300, check=False)
        raise AssertionError("the long ffmpeg was not killed")


def test_a_tool_is_killed_at_once_when_its_step_is_stopped() -> None:
    with stop_when(lambda: True), pytest.raises(StepCancelled, match="ffmpeg killed"):
        run_process(LONG_FFMPEG, capture_output=True, timeout=300, check=False)


def test_cancel_stops_the_running_step_kills_its_ffmpeg_and_keeps_nothing(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    analyzer = ToolAnalyzer()
    services().install(dataclasses.replace(context, analyzer=analyzer))
    item_id = unique_id("stopme")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    assert analyzer.started.wait(60), "step 4 never started"

    actions.cancel(context, item_id)
    # Within 30 s: the ffmpeg alone would run for 120.
    drain(timeout_s=30)

    item = context.store.items.get(item_id)
    assert (item.status, item.cancelled, item.dead_lettered, item.error) == (
        Status.CREATING_FRAMES, True, False, None)
    kinds = [(event.event, event.step) for event in context.store.timeline.for_item(item_id)]
    assert ("stopped", "analysis") in kinds
    assert not {("succeeded", "analysis"), ("failed", "analysis"), ("queued", "frames")} & set(kinds)
    assert context.store.results.analysis(item_id) is None


def test_uncancel_queues_a_stopped_item_and_it_finishes(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("back")
    context.store.items.create([NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    actions.cancel(context, item_id)

    answer = actions.uncancel(context, item_id)
    drain()

    assert (answer.queued, answer.job_id is not None) == (True, True)
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION


def test_rerun_from_step_3_relogs_a_finished_item(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("again")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    drain()
    frames_before = len(context.store.results.frames(item_id))

    answer = actions.rerun(context, item_id, "step3_assess")
    drain()

    assert answer.item.status is Status.THUMBNAILS_COMPLETE
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    kinds = [(event.event, event.step) for event in context.store.timeline.for_item(item_id)]
    assert kinds.count(("started", "assess")) == 2 and kinds.count(("started", "file_info")) == 1
    assert ("rerun_requested", "assess") in kinds
    assert len(context.store.results.frames(item_id)) == frames_before


def test_a_stopped_run_keeps_none_of_the_files_it_wrote(context: Context, unique_id: Callable[[str], str]) -> None:
    item_id = unique_id("partial")
    context.store.items.create([NewItem(item_id, "/m/partial.mp4")])
    message = MessageProxy(analyze.message_with_options(args=(item_id,), **{RUN_OPTION: "run-1"}))
    folder = run_folder(context.settings.artifacts_root, item_id, "analysis", "run-1")
    folder.mkdir(parents=True)
    (folder / "frame_0001.jpg").write_bytes(b"half a jpeg")
    stops = StepStops(services=services())
    stops.before_process_message(broker, message)

    actions.cancel(context, item_id)
    stopped = stop_requested()
    stops.after_skip_message(broker, message)

    assert stopped and not stop_requested()
    assert not folder.exists()
    assert [event.event for event in context.store.timeline.for_item(item_id)][-1] == "stopped"
