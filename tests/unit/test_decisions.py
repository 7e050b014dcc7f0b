"""The step graph's decisions, without a broker."""

from __future__ import annotations

import pytest

from autolog.statuses import (
    ANALYSIS,
    ASSESS,
    FILE_INFO,
    FRAMES,
    STEPS,
    THUMBNAILS,
    TRANSCRIPTION,
    Status,
    is_allowed,
)
from pipelines.decisions import has_picture_steps, segment_from, status_after
from tests.conftest import item_view


@pytest.mark.parametrize(("status", "steps"), [
    (Status.PENDING_FILE_INFO, [FILE_INFO]),
    (Status.FILE_INFO_COMPLETE, [THUMBNAILS, ASSESS]),
    (Status.THUMBNAILS_COMPLETE, [ASSESS]),
    (Status.AWAITING_USER_INPUT, []),
    (Status.CREATING_FRAMES, [ANALYSIS, FRAMES]),
    (Status.PROCESSING_FRAME_INFO, [FRAMES]),
    (Status.GENERATING_DESCRIPTION, [TRANSCRIPTION]),
    (Status.AVID_DESCRIPTION, []),
])
def test_segment_runs_up_to_the_next_branch_point(status: Status, steps: list[object]) -> None:
    assert segment_from(status) == steps


def test_every_step_is_reachable_from_pending() -> None:
    reached = set(segment_from(Status.PENDING_FILE_INFO))
    for status in Status:
        reached.update(segment_from(status))
    assert reached == set(STEPS)


@pytest.mark.parametrize(("target", "runs_next"), [
    (Status.FILE_INFO_COMPLETE, [THUMBNAILS, ASSESS]),
    (Status.GENERATING_DESCRIPTION, [TRANSCRIPTION]),
])
def test_step_1_branches_to_the_picture_steps_or_straight_to_transcription(
    target: Status, runs_next: list[object]
) -> None:
    assert is_allowed(FILE_INFO, target)
    assert segment_from(target) == runs_next


@pytest.mark.parametrize(("media_kind", "expected"), [("audio", False), ("video", True), (None, True)])
def test_only_audio_only_items_skip_the_picture_steps(media_kind: str | None, expected: bool) -> None:
    assert has_picture_steps(item_view("x", "/m/x.wav", has_audio=True, media_kind=media_kind)) is expected


def test_applied_transition_routes_to_its_status() -> None:
    data = {"options": {"autolog_transition": {"from": "x", "to": Status.CREATING_FRAMES.value, "applied": True}}}

    assert status_after(data) is Status.CREATING_FRAMES


def test_refused_transition_routes_nowhere() -> None:
    data = {"options": {"autolog_transition": {"from": "x", "to": Status.CREATING_FRAMES.value, "applied": False}}}

    assert status_after(data) is None


def test_message_without_a_transition_routes_nowhere() -> None:
    assert status_after({"options": {}}) is None
