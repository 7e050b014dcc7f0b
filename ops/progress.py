"""Waiting for items to come to rest, with a plain-text progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from autolog.statuses import STEPS, Status
from autolog.store import ItemView

#: Steps finished at each status; ``Awaiting User Input`` sits after step 3.
STEPS_DONE: dict[Status, int] = {
    Status.PENDING_FILE_INFO: 0,
    Status.FILE_INFO_COMPLETE: 1,
    Status.THUMBNAILS_COMPLETE: 2,
    Status.AWAITING_USER_INPUT: 3,
    Status.CREATING_FRAMES: 3,
    Status.PROCESSING_FRAME_INFO: 4,
    Status.GENERATING_DESCRIPTION: 5,
    Status.AVID_DESCRIPTION: len(STEPS),
}

#: Width of the bar between the brackets, in characters.
BAR_WIDTH = 10

#: How often ``wait_for_items`` reads the store, in seconds (the CLI contract says 0.2-0.5).
POLL_INTERVAL_S = 0.3


def is_failed(item: ItemView) -> bool:
    """True when the item's last error will not be retried: dead-lettered or permanent."""
    if item.error is None:
        return False
    return item.dead_lettered or bool(item.error.get("permanent"))


def is_resting(item: ItemView) -> bool:
    """True when nothing will move the item without a user: done, waiting, failed or cancelled."""
    return (item.status in (Status.AVID_DESCRIPTION, Status.AWAITING_USER_INPUT)
            or item.cancelled or is_failed(item))


def is_success(item: ItemView) -> bool:
    """True when the item rests where the pipeline meant it to: done, or waiting for a prompt."""
    return is_resting(item) and not is_failed(item) and not item.cancelled


def error_summary(error: dict[str, object] | None, *, width: int = 80) -> str:
    """Summarise a stored error on one line: ``step: Type: message``."""
    if not error:
        return ""
    message = str(error.get("message", "")).strip().splitlines()
    summary = f"{error.get('step', '?')}: {error.get('type', 'Error')}: {message[0] if message else ''}"
    return summary if len(summary) <= width else summary[:width - 1] + "…"


def progress_line(item: ItemView) -> str:
    """Render one item as ``[######----] 4/6 LF1409 5 - Processing Frame Info``."""
    done = STEPS_DONE[item.status]
    filled = round(BAR_WIDTH * done / len(STEPS))
    line = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{len(STEPS)} {item.id} {item.status.value}"
    if item.cancelled:
        return line + " (cancelled)"
    if item.error:
        state = "failed" if is_failed(item) else "retrying"
        return f"{line} ({state}: {error_summary(item.error)})"
    return line


def awaiting_prompt_hint(items: Sequence[ItemView]) -> str | None:
    """Say which items rest at ``Awaiting User Input`` and how to move them on; None when none does.

    Waiting ends there with success (the pipeline meant the item to stop for a prompt after
    step 3), which a user who expected a finished log would not guess from the bar alone.
    """
    waiting = [item.id for item in items if item.status is Status.AWAITING_USER_INPUT and not item.cancelled]
    if not waiting:
        return None
    first = waiting[0]
    named = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
    return (f"{len(waiting)} item(s) wait for a prompt after step 3: {named}. Give one with"
            f" `autolog prompt {first} TEXT`, go on without with `autolog resume {first}`, or ingest with"
            " --force-resume (AUTOLOG_FORCE_RESUME=true for every item) to run straight through.")


@dataclass(frozen=True)
class WaitOutcome:
    """Where the items stood when waiting ended."""

    items: list[ItemView]
    timed_out: bool

    @property
    def ok(self) -> bool:
        """True when every item came to rest without an error."""
        return not self.timed_out and all(is_success(item) for item in self.items)


def wait_for_items(
    load: Callable[[], Sequence[ItemView]],
    *,
    timeout_s: float,
    out: TextIO,
    interval_s: float = POLL_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitOutcome:
    """Poll ``load`` until every item rests or ``timeout_s`` passes; print each change to ``out``."""
    deadline = clock() + timeout_s
    shown: dict[str, str] = {}
    while True:
        items = list(load())
        for item in items:
            line = progress_line(item)
            if shown.get(item.id) != line:
                shown[item.id] = line
                print(line, file=out, flush=True)
        if all(is_resting(item) for item in items):
            return WaitOutcome(items=items, timed_out=False)
        if clock() >= deadline:
            print(f"timed out after {timeout_s:g} s", file=out, flush=True)
            return WaitOutcome(items=items, timed_out=True)
        sleep(interval_s)
