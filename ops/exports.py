"""``autolog export``: logged items as files an editing system imports, to a file or stdout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from autolog.exports import (
    AVID_MARKER_COLOURS,
    DEFAULT_MARKER_COLOUR,
    DEFAULT_TIMING,
    FORMATS,
    SELECTION_FORMATS,
    TIMINGS,
    Export,
    ExportOptions,
    Selection,
    export_format,
    export_item,
    export_selection,
)
from autolog.settings import Settings
from ops.errors import UsageError
from ops.runtime import open_store


def add_export_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export FORMAT [ID...] [--status S] [--query Q] [--fps F] [-o FILE]`` to the CLI."""
    export = commands.add_parser(
        "export", help="write logged items as ALE, Avid markers, EDL, FCP 7 XML, SRT, WebVTT or CSV",
        description=("Write one logged item in any format, or a selection of logged items (default: all) as one "
                     f"ALE or CSV. Formats: {', '.join(FORMATS)}; selections: {', '.join(SELECTION_FORMATS)}."))
    export.add_argument("format", metavar="FORMAT", help=", ".join(FORMATS))
    export.add_argument("ids", nargs="*", metavar="ID", help="items to export (ale and csv: any number)")
    export.add_argument("--status", help="only items at this status")
    export.add_argument("--query", "-q", help="only items whose id or source contains this text")
    export.add_argument("--fps", help="only items at this frame rate (25, 29.97, 30000/1001...)")
    export.add_argument("--shots", action="store_true", help="ale: one subclip row per shot as well")
    export.add_argument("--color", choices=AVID_MARKER_COLOURS, default=DEFAULT_MARKER_COLOUR,
                        help="markers, edl: marker colour")
    export.add_argument("--timing", choices=TIMINGS, default=DEFAULT_TIMING,
                        help="srt, vtt: cue times from the clip's start or at source timecode")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write the export; a file is written whole or not at all."""
    options = ExportOptions.parse(shots=args.shots, colour=args.color, timing=args.timing)
    spec = export_format(args.format)
    if not spec.selection and (len(args.ids) != 1 or args.status or args.query or args.fps):
        raise UsageError(f"{spec.name} exports one item: give exactly one ID and no filters")
    with open_store(settings) as store:
        if spec.selection:
            selection = Selection.parse(ids=args.ids, status=args.status, text=args.query, fps=args.fps)
            export = export_selection(store, selection, spec.name, options)
        else:
            export = export_item(store, args.ids[0], spec.name, options)
        if args.output in (None, "-"):
            _write(export, sys.stdout)
        else:
            _write_file(export, Path(args.output))
            print(f"wrote {export.items} item{'s' if export.items != 1 else ''} to {args.output}", file=sys.stderr)
    return 0


def _write(export: Export, out: TextIO) -> None:
    for chunk in export.chunks:
        out.write(chunk)
    out.flush()


def _write_file(export: Export, path: Path) -> None:
    """Write ``export`` to ``path`` whole, through a hidden ``.NAME.part`` beside it.

    Raises:
        UsageError: the file cannot be written there (no such folder, no permission, a full disk).
    """
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            _write(export, out)
        os.replace(partial, path)
    except OSError as ex:
        raise UsageError(f"cannot write {path}: {ex.strerror or ex}") from ex
    finally:
        partial.unlink(missing_ok=True)
