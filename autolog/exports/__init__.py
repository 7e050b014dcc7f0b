"""Exports an editor imports: ALE, Avid markers, CMX 3600 EDL, FCP 7 XML, SRT, WebVTT and CSV.

OpenTimelineIO and its ``ale``, ``cmx_3600`` and ``fcp_xml`` adapters write the editorial
formats; the ``timecode`` library counts frames. The marker list, the subtitles and the CSV
have no adapter and are small writers here. Core code: no falcon or dramatiq imports.
"""

from __future__ import annotations

from autolog.exports.errors import (
    ExportError,
    InvalidExportOption,
    ItemsNotLogged,
    MixedFrameRates,
    NotExportable,
    UnknownExportFormat,
)
from autolog.exports.formats import (
    FORMATS,
    SELECTION_FORMATS,
    Export,
    ExportFormat,
    ExportOptions,
    export_format,
    export_item,
    export_selection,
)
from autolog.exports.markers import AVID_MARKER_COLOURS, DEFAULT_MARKER_COLOUR
from autolog.exports.records import (
    FINAL_STATUSES,
    MAX_IDS,
    MAX_TEXT_CHARS,
    LoggedItem,
    Selection,
    iter_selection,
    load_logged_item,
)
from autolog.exports.subtitles import DEFAULT_TIMING, TIMINGS

__all__ = [
    # Exporting
    "export_item",
    "export_selection",
    "export_format",
    "Export",
    "ExportFormat",
    "ExportOptions",
    "Selection",
    "FORMATS",
    "SELECTION_FORMATS",
    "FINAL_STATUSES",
    "MAX_IDS",
    "MAX_TEXT_CHARS",
    # Options
    "AVID_MARKER_COLOURS",
    "DEFAULT_MARKER_COLOUR",
    "TIMINGS",
    "DEFAULT_TIMING",
    # Reading
    "LoggedItem",
    "load_logged_item",
    "iter_selection",
    # Errors
    "ExportError",
    "InvalidExportOption",
    "ItemsNotLogged",
    "MixedFrameRates",
    "NotExportable",
    "UnknownExportFormat",
]
