"""Resting states, the progress line and waiting against a deadline (with a fake clock)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from autolog.statuses import Status
from autolog.store import ItemView
from ops.progress import awaiting_prompt_hint, error_summary, is_resting, is_success, progress_line, wait_for_items

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def item(status: Status, *, error: dict[str, Any] | None = None, dead_lettered: bool = False,
         cancelled: bool = False, item_id: str = "LF1409") -> ItemView:
    return ItemView(id=item_id, source="/media/LF1409.mov", status=status, force_resume=True, prompt=None,
                    probe=None, has_audio=None, error=error, dead_lettered=dead_lettered, cancelled=cancelled,
                    version=0, created_at=NOW, updated_at=NOW)


TRANSIENT = {"step": "file_info", "type": "ToolFailed", "message": "ffprobe: timed out", "permanent": False}
PERMANENT = {"step": "file_info", "type": "NotMedia", "message": "x.mp4: not media\nmore", "permanent": True}


def test_progress_line_shows_a_bar_steps_done_id_and_status() -> None:
    assert progress_line(item(Status.THUMBNAILS_COMPLETE)) == "[###-------] 2/6 LF1409 2 - Thumbnails Complete"
    assert progress_line(item(Status.AVID_DESCRIPTION)) == "[##########] 6/6 LF1409 7 - Avid Description"


def test_progress_line_names_a_failure() -> None:
    line = progress_line(item(Status.PENDING_FILE_INFO, error=PERMANENT, dead_lettered=True))

    assert line == "[----------] 0/6 LF1409 0 - Pending File Info (failed: file_info: NotMedia: x.mp4: not media)"


@pytest.mark.parametrize(("view", "resting", "success"), [
    (item(Status.AVID_DESCRIPTION), True, True),
    (item(Status.AWAITING_USER_INPUT), True, True),
    (item(Status.THUMBNAILS_COMPLETE), False, False),
    (item(Status.PENDING_FILE_INFO, error=TRANSIENT), False, False),
    (item(Status.PENDING_FILE_INFO, error=TRANSIENT, dead_lettered=True), True, False),
    (item(Status.PENDING_FILE_INFO, error=PERMANENT), True, False),
    (item(Status.FILE_INFO_COMPLETE, cancelled=True), True, False),
])
def test_resting_states(view: ItemView, resting: bool, success: bool) -> None:
    assert (is_resting(view), is_success(view)) == (resting, success)


def test_error_summary_is_one_line_and_bounded() -> None:
    assert error_summary(None) == ""
    assert error_summary({"step": "assess", "type": "CorruptMedia", "message": "m" * 100}, width=30) == (
        "assess: CorruptMedia: mmmmmmm…")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_prints_each_change_once_and_ends_when_all_rest() -> None:
    script = iter([[item(Status.PENDING_FILE_INFO)], [item(Status.PENDING_FILE_INFO)],
                   [item(Status.FILE_INFO_COMPLETE)], [item(Status.AVID_DESCRIPTION)]])
    out = io.StringIO()
    clock = FakeClock()

    outcome = wait_for_items(lambda: next(script), timeout_s=10, out=out, clock=clock, sleep=clock.sleep)

    assert outcome.ok and not outcome.timed_out
    assert [line.split()[3] for line in out.getvalue().splitlines()] == ["0", "1", "7"]
    assert clock.now == pytest.approx(0.9)


def test_waiting_gives_up_at_the_deadline() -> None:
    out = io.StringIO()
    clock = FakeClock()

    outcome = wait_for_items(lambda: [item(Status.THUMBNAILS_COMPLETE)], timeout_s=2, out=out, clock=clock,
                             sleep=clock.sleep)

    assert outcome.timed_out and not outcome.ok
    assert out.getvalue().splitlines()[-1] == "timed out after 2 s"


def test_a_failed_item_ends_the_wait_but_not_ok() -> None:
    clock = FakeClock()
    items = [item(Status.AVID_DESCRIPTION, item_id="a"), item(Status.PENDING_FILE_INFO, error=PERMANENT)]

    outcome = wait_for_items(lambda: items, timeout_s=5, out=io.StringIO(), clock=clock, sleep=clock.sleep)

    assert not outcome.timed_out and not outcome.ok


def test_items_left_waiting_for_a_prompt_are_named_with_how_to_go_on() -> None:
    items = [item(Status.AVID_DESCRIPTION, item_id="A001"), item(Status.AWAITING_USER_INPUT, item_id="A002"),
             item(Status.AWAITING_USER_INPUT, item_id="A003"),
             item(Status.AWAITING_USER_INPUT, item_id="A004", cancelled=True)]

    hint = awaiting_prompt_hint(items)

    assert hint == ("2 item(s) wait for a prompt after step 3: A002, A003. Give one with `autolog prompt A002 TEXT`,"
                    " go on without with `autolog resume A002`, or ingest with --force-resume"
                    " (AUTOLOG_FORCE_RESUME=true for every item) to run straight through.")


def test_many_waiting_items_are_counted_not_all_named() -> None:
    hint = awaiting_prompt_hint([item(Status.AWAITING_USER_INPUT, item_id=f"C{index:04d}") for index in range(8)])

    assert hint is not None and hint.startswith("8 item(s) wait") and "C0004 and 3 more." in hint


def test_no_hint_when_no_item_waits_for_a_prompt() -> None:
    assert awaiting_prompt_hint([item(Status.AVID_DESCRIPTION), item(Status.PENDING_FILE_INFO, cancelled=True)]) is None
