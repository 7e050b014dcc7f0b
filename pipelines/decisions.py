"""The step graph as pure decisions: which steps run from a status, and what follows a step.

Seed 000's routing, with one branch added after step 1: 1→2→3 for footage with a picture,
1→6 for audio-only items (production sound rolls, audio files with cover art), which have
no frames to make or describe; 3 halts at ``Awaiting User Input`` unless force-resume is
set; 4→5; 5→6 only when the item has audio, else done at ``7 - Avid Description``. Each
branching step picks its status from what it found (step 1 from the probe's media kind);
the graph here turns statuses into the steps that follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autolog.statuses import (
    ANALYSIS,
    ASSESS,
    AUDIO_ONLY,
    FILE_INFO,
    FRAMES,
    THUMBNAILS,
    Status,
    Step,
    step_for_status,
)
from autolog.store import ItemView
from middleware.status_writes import TRANSITION_OPTION

#: Steps always followed by the same step: these links are dramatiq pipelines.
FIXED_NEXT: dict[Step, Step] = {THUMBNAILS: ASSESS, ANALYSIS: FRAMES}

#: Steps whose successor depends on their outcome: an ``on_success`` callback decides.
BRANCH_POINTS: frozenset[Step] = frozenset({FILE_INFO, ASSESS, FRAMES})


def segment_from(status: Status) -> list[Step]:
    """Return the steps to run as one pipeline for an item at ``status``: up to a branch point."""
    steps: list[Step] = []
    step = step_for_status(status)
    while step is not None:
        steps.append(step)
        if step in BRANCH_POINTS:
            break
        step = FIXED_NEXT.get(step)
    return steps


def status_after(message_data: Mapping[str, Any]) -> Status | None:
    """Return the status a branch point left its item at, or None if its write was refused."""
    transition = message_data.get("options", {}).get(TRANSITION_OPTION)
    if not transition or not transition.get("applied"):
        return None
    return Status(transition["to"])


def has_picture_steps(item: ItemView) -> bool:
    """Tell whether steps 2 to 5 apply to ``item``: False for an audio-only item."""
    return item.media_kind != AUDIO_ONLY
