"""The step graph: pipeline builders, callback actors, branching decisions and user actions."""

from __future__ import annotations

from pipelines import callbacks
from pipelines.actions import cancel, force_resume_all, prompt, reprocess_from_assess, retry, submit
from pipelines.decisions import BRANCH_POINTS, FIXED_NEXT, has_picture_steps, segment_from, status_after
from pipelines.discovery import DiscoveryLoop, DiscoveryReport, scan
from pipelines.footage import build_footage_pipeline, enqueue_from, first_message, outbox_messages

__all__ = [
    # Graph
    "BRANCH_POINTS",
    "FIXED_NEXT",
    "segment_from",
    "status_after",
    "has_picture_steps",
    "build_footage_pipeline",
    "enqueue_from",
    "first_message",
    "outbox_messages",
    "callbacks",
    # User actions
    "submit",
    "prompt",
    "retry",
    "cancel",
    "reprocess_from_assess",
    "force_resume_all",
    # Discovery
    "DiscoveryLoop",
    "DiscoveryReport",
    "scan",
]
