"""autolog's dramatiq middleware: one class per module."""

from __future__ import annotations

from middleware.services import Services, ServicesNotReady
from middleware.status_writes import TRANSITION_OPTION, StatusWrites

__all__ = [
    # Per-process collaborators
    "Services",
    "ServicesNotReady",
    # Item statuses and timeline
    "StatusWrites",
    "TRANSITION_OPTION",
]
