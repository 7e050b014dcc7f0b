"""The actor registry: the broker first, then one module per step, imported explicitly."""

from __future__ import annotations

from actors._broker import broker, build_broker, metrics, services, settings
from actors.analysis import analyze
from actors.assess import assess
from actors.file_info import probe
from actors.frames import make_frames
from actors.thumbnails import make_thumbnails
from actors.transcription import transcribe

__all__ = [
    # The broker
    "broker",
    "build_broker",
    "metrics",
    "services",
    "settings",
    # Steps, in pipeline order
    "probe",
    "make_thumbnails",
    "assess",
    "analyze",
    "make_frames",
    "transcribe",
]
