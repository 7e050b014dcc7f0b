"""The export formats, and the two ways to export: one item, or a selection of items.

Every check (the item exists and is logged, the options, one frame rate per ALE) runs before
the first piece is produced, so a caller can still answer with an error; the pieces of a
selection are then read from the store as they are consumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from autolog.exports.ale import AleHeading, write_ale
from autolog.exports.errors import InvalidExportOption, MixedFrameRates, UnknownExportFormat
from autolog.exports.markers import AVID_MARKER_COLOURS, DEFAULT_MARKER_COLOUR, write_avid_markers
from autolog.exports.records import (
    LoggedItem,
    Selection,
    SelectionPlan,
    iter_selection,
    load_logged_item,
    plan_selection,
)
from autolog.exports.spreadsheet import write_csv
from autolog.exports.subtitles import DEFAULT_TIMING, TIMINGS, write_srt, write_vtt
from autolog.exports.timelines import write_edl, write_fcp7_xml
from autolog.exports.timing import FALLBACK_RATE, fps_label
from autolog.store import Store


@dataclass(frozen=True)
class ExportOptions:
    """How to write an export; each option applies to the formats named."""

    #: ``ale``: add one subclip row per shot after each clip's row.
    shots: bool = False
    #: ``markers`` and ``edl``: the marker colour.
    marker_colour: str = DEFAULT_MARKER_COLOUR
    #: ``srt`` and ``vtt``: cue times from the clip's start (``clip``) or at source timecode (``source``).
    timing: str = DEFAULT_TIMING

    @classmethod
    def parse(cls, *, shots: bool = False, colour: str | None = None, timing: str | None = None) -> ExportOptions:
        """Build options from request or command-line values.

        Raises:
            InvalidExportOption: an unknown colour or timing.
        """
        colour = (colour or DEFAULT_MARKER_COLOUR).strip().lower()
        if colour not in AVID_MARKER_COLOURS:
            raise InvalidExportOption("color", f"expected one of {', '.join(AVID_MARKER_COLOURS)}")
        timing = (timing or DEFAULT_TIMING).strip().lower()
        if timing not in TIMINGS:
            raise InvalidExportOption("timing", f"expected one of {', '.join(TIMINGS)}")
        return cls(shots=shots, marker_colour=colour, timing=timing)


#: Writes a checked selection's export. It is called, not iterated, before anything is sent,
#: so its own checks (one frame rate per ALE) must run before it returns the pieces.
SelectionWriter = Callable[[Store, Selection, SelectionPlan, ExportOptions], Iterator[str]]


@dataclass(frozen=True)
class ExportFormat:
    """One format: its name in routes and the CLI, file extension, media type and writers."""

    name: str
    extension: str
    content_type: str
    title: str
    #: Writes one item's export.
    write_item: Callable[[LoggedItem, ExportOptions], str]
    #: Writes a selection of many items; None for formats that hold one item.
    write_selection: SelectionWriter | None = None
    #: Follows the item id in an item export's file name (``LF1409-markers.txt``).
    file_suffix: str = ""

    @property
    def selection(self) -> bool:
        """True when a selection of many items can be written in this format."""
        return self.write_selection is not None


@dataclass(frozen=True)
class Export:
    """An export ready to send: its file name, media type, item count and text in pieces."""

    format: ExportFormat
    filename: str
    items: int
    chunks: Iterator[str]


def _ale_item(logged: LoggedItem, options: ExportOptions) -> str:
    return "".join(write_ale([logged], AleHeading.of_item(logged), shots=options.shots))


def _ale_selection(store: Store, selection: Selection, plan: SelectionPlan, options: ExportOptions) -> Iterator[str]:
    heading = _heading(plan, selection)
    # Scenes even without shot rows: a clip's end holds its last shot (``LoggedItem.end_frame``).
    parts = frozenset({"frames", "segments", "scenes"})
    return write_ale(iter_selection(store, selection, parts=parts), heading, shots=options.shots)


def _heading(plan: SelectionPlan, selection: Selection) -> AleHeading:
    if len(plan.rates) > 1:
        raise MixedFrameRates(plan.rates)
    # An empty selection's ALE is at the rate asked for, else at the fallback rate.
    label = next(iter(plan.rates), fps_label(selection.fps or FALLBACK_RATE))
    return AleHeading.describe(label, display_width=plan.display_width, display_height=plan.display_height,
                               sample_rate=plan.sample_rate)


def _csv_item(logged: LoggedItem, options: ExportOptions) -> str:
    return "".join(write_csv([logged]))


def _csv_selection(store: Store, selection: Selection, plan: SelectionPlan, options: ExportOptions
                   ) -> Iterator[str]:
    return write_csv(iter_selection(store, selection, parts=frozenset({"frames"})))


#: Every format, by name.
FORMATS: dict[str, ExportFormat] = {spec.name: spec for spec in (
    ExportFormat("ale", "ale", "text/plain; charset=utf-8",
                 "Avid Log Exchange, one row per clip (with shots: and per shot), exclusive End, one FPS per file",
                 _ale_item, write_selection=_ale_selection),
    ExportFormat("markers", "txt", "text/plain; charset=utf-8",
                 "Avid Media Composer marker list, one marker per frame record at its source timecode",
                 lambda logged, options: write_avid_markers(logged, colour=options.marker_colour),
                 file_suffix="-markers"),
    ExportFormat("edl", "edl", "text/plain; charset=utf-8",
                 "CMX 3600 EDL of the shots: source timecodes, reel, clip names, frame records as locators",
                 lambda logged, options: write_edl(logged, marker_colour=options.marker_colour)),
    ExportFormat("fcp7xml", "xml", "application/xml; charset=utf-8",
                 "Final Cut Pro 7 XML sequence of the shots, for Premiere Pro and DaVinci Resolve",
                 lambda logged, options: write_fcp7_xml(logged)),
    ExportFormat("srt", "srt", "application/x-subrip; charset=utf-8", "SubRip subtitles of the transcript",
                 lambda logged, options: write_srt(logged, timing=options.timing)),
    ExportFormat("vtt", "vtt", "text/vtt; charset=utf-8", "WebVTT subtitles of the transcript",
                 lambda logged, options: write_vtt(logged, timing=options.timing)),
    ExportFormat("csv", "csv", "text/csv; charset=utf-8",
                 "CSV of frame records: item, timecode, description, keywords, transcript, image file",
                 _csv_item, write_selection=_csv_selection),
)}

#: The formats a selection of many items can be exported in.
SELECTION_FORMATS: tuple[str, ...] = tuple(name for name, spec in FORMATS.items() if spec.selection)

#: The file name of a selection's export, before its extension.
SELECTION_FILE_STEM = "autolog-export"


def export_format(name: str, *, selection: bool = False) -> ExportFormat:
    """Return the format called ``name``.

    Raises:
        UnknownExportFormat: no format has that name, or it does not write selections.
    """
    spec = FORMATS.get(name.lower())
    if spec is None or (selection and not spec.selection):
        names = SELECTION_FORMATS if selection else tuple(FORMATS)
        raise UnknownExportFormat(name, names, scope="selection" if selection else "item")
    return spec


def export_item(store: Store, item_id: str, format_name: str, options: ExportOptions | None = None) -> Export:
    """Export one logged item.

    Raises:
        UnknownExportFormat: no format has that name.
        ItemNotFound: no item has that id.
        ItemsNotLogged: the item is not at a final status.
        NotExportable: the format cannot hold this item (an EDL of an audio-only item).
    """
    spec = export_format(format_name)
    logged = load_logged_item(store, item_id)
    text = spec.write_item(logged, options or ExportOptions())
    return Export(format=spec, filename=f"{logged.item.id}{spec.file_suffix}.{spec.extension}", items=1,
                  chunks=iter([text]))


def export_selection(store: Store, selection: Selection, format_name: str,
                     options: ExportOptions | None = None) -> Export:
    """Export a selection of logged items as one ALE or CSV, read from the store as it is written.

    Raises:
        UnknownExportFormat: the format does not write selections.
        ItemNotFound: an id names no item.
        ItemsNotLogged: items named by id or status are not at a final status.
        MixedFrameRates: an ALE would hold several frame rates.
    """
    spec = export_format(format_name, selection=True)
    write_selection = spec.write_selection
    # NOTE(exports): export_format(selection=True) only returns formats that have one.
    assert write_selection is not None
    plan = plan_selection(store, selection)
    chunks = write_selection(store, selection, plan, options or ExportOptions())
    return Export(format=spec, filename=f"{SELECTION_FILE_STEM}.{spec.extension}", items=plan.count, chunks=chunks)
