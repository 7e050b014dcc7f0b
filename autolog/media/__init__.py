"""Pure media work: probe, thumbnails, scenes, timecode, frame analysis, speech.

Every function takes its collaborators (``run=subprocess.run``) as keyword
parameters and raises the ``MediaError`` / ``ToolFailed`` classes from
``autolog.errors``.
"""

from __future__ import annotations

from autolog.media._run import Runner, disk_faults
from autolog.media.analysis import AnalysisResult, Analyzer, FrameAnalysis, FrameInput, LocalAnalyzer
from autolog.media.picture import display_filters, image_size, picture_filters
from autolog.media.probe import ProbeResult, probe_media
from autolog.media.scenes import Scene, detect_scenes, extract_frames
from autolog.media.thumbnails import make_contact_sheet, make_poster, poster_time_s
from autolog.media.timecode import frame_timecode
from autolog.media.transcribe import PocketsphinxTranscriber, Segment, Transcriber, map_segments_to_frames

__all__ = [
    # Running tools
    "Runner",
    "disk_faults",
    # Probing
    "ProbeResult",
    "probe_media",
    # Picture as shown
    "display_filters",
    "image_size",
    "picture_filters",
    # Thumbnails
    "make_contact_sheet",
    "make_poster",
    "poster_time_s",
    # Scenes
    "Scene",
    "detect_scenes",
    "extract_frames",
    # Timecode
    "frame_timecode",
    # Frame analysis
    "AnalysisResult",
    "Analyzer",
    "FrameAnalysis",
    "FrameInput",
    "LocalAnalyzer",
    # Speech
    "PocketsphinxTranscriber",
    "Segment",
    "Transcriber",
    "map_segments_to_frames",
]
