"""Turning command-line paths into items to submit: sources, ids and up-front checks."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autolog.errors import InvalidSource
from autolog.item_ids import Lookup, choose_id
from autolog.sources import MEDIA_SUFFIXES, check_source, is_media_name, is_remote, validate_source
from autolog.store import ItemView, NewItem, validate_item_id
from ops.errors import UsageError


@dataclass(frozen=True)
class IngestPlan:
    """What an ingest does: items to create, items the paths already have, every id in path order."""

    new: tuple[NewItem, ...]
    existing: tuple[ItemView, ...]
    ids: tuple[str, ...]




def media_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Return the footage files under ``folder`` (a camera card, say), and the other files, each in path order.

    Hidden files and folders are neither (``._C0001.MP4``, ``.Trashes``); the others are
    sidecars (``C0001M01.XML``, ``.THM``) and anything not named as footage or sound
    (``autolog.sources.MEDIA_SUFFIXES``).
    """
    found: list[Path] = []
    others: list[Path] = []
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                (found if is_media_name(Path(name)) else others).append(Path(parent) / name)
    return found, others


def left_out_note(folder: Path, others: Sequence[Path]) -> str:
    """Say which files of ``folder`` an ingest leaves out, counted by ending: ``3 .XML, 1 .R3D``."""
    endings = Counter(path.suffix.upper() or "(no ending)" for path in others)
    most_first = sorted(endings.items(), key=lambda entry: (-entry[1], entry[0]))
    counted = ", ".join(f"{count} {ending}" for ending, count in most_first)
    return f"left out {len(others)} file(s) under {folder} not named as footage or sound: {counted}"


def check_paths(paths: Sequence[str], roots: Sequence[Path], *, item_id: str | None = None,
                left_out: Callable[[Path, list[Path]], None] | None = None) -> list[str]:
    """Return each path's canonical source, before anything is stored or connected.

    A folder under the media roots (a camera card) stands for the footage files under it
    (``media_files``); they take ids as any file does (``plan_items``). ``left_out``, if
    given, is told each such folder's other files (sidecars, unknown formats), if any.

    Raises:
        UsageError: ``item_id`` was given with more than one path, or with a folder.
        InvalidItemId: ``item_id`` is malformed.
        InvalidSource: a path is outside the media roots or missing, a folder holds no footage
            file, or a file in it is outside the roots (a symlink); nothing is stored.
    """
    if item_id is not None:
        if len(paths) != 1:
            raise UsageError("--id needs exactly one PATH")
        validate_item_id(item_id)
    sources = []
    for path in paths:
        checked = validate_source(path, roots)
        if is_remote(checked) or not Path(checked).is_dir():
            sources.append(check_source(path, roots))
            continue
        if item_id is not None:
            raise UsageError("--id names one file, and PATH is a folder")
        found, others = media_files(Path(checked))
        if not found:
            raise InvalidSource(path, f"a folder with no footage files ({', '.join(sorted(MEDIA_SUFFIXES))})")
        sources += [check_source(str(file), roots) for file in found]
        if others and left_out is not None:
            left_out(Path(checked), others)
    return sources


def plan_items(
    sources: Sequence[str], lookup: Lookup, *, item_id: str | None = None, force_resume: bool = False,
    prefix: str = "",
) -> IngestPlan:
    """Give each checked source its item: the one it already has, or a new one.

    Without ``item_id``, ids come from ``autolog.item_ids.choose_id``: the file's stem, or
    the stem and a hash of the path when another file has the stem, so two cards'
    ``C0001.MP4`` become two items and a path ingested again is the same item. A path
    given twice is one item. An explicit ``item_id`` names a new item.
    """
    if item_id is not None:
        return IngestPlan(new=tuple(NewItem(id=item_id, source=source, force_resume=force_resume)
                                    for source in sources), existing=(), ids=(item_id,) * len(sources))
    new: dict[str, NewItem] = {}
    existing: dict[str, ItemView] = {}
    ids: list[str] = []
    for source in sources:
        chosen, item = choose_id(source, lookup, planned={key: value.source for key, value in new.items()},
                                 prefix=prefix)
        if item is not None:
            existing[chosen] = item
        elif chosen not in new:
            new[chosen] = NewItem(id=chosen, source=source, force_resume=force_resume)
        if chosen not in ids:
            ids.append(chosen)
    return IngestPlan(new=tuple(new.values()), existing=tuple(existing.values()), ids=tuple(ids))
