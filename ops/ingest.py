"""Turning command-line paths into items to submit: sources, ids and up-front checks."""

from __future__ import annotations

import os
from collections.abc import Sequence
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




def media_files(folder: Path) -> list[Path]:
    """Every footage file under ``folder`` (a camera card, say), in path order; hidden files and folders skipped."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(parent) / name for name in sorted(files)
                  if not name.startswith(".") and is_media_name(Path(name))]
    return found


def check_paths(paths: Sequence[str], roots: Sequence[Path], *, item_id: str | None = None) -> list[str]:
    """Return each path's canonical source, before anything is stored or connected.

    A folder under the media roots (a camera card) stands for the footage files under it
    (``media_files``); they take ids as any file does (``plan_items``).

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
        found = media_files(Path(checked))
        if not found:
            raise InvalidSource(path, f"a folder with no footage files ({', '.join(sorted(MEDIA_SUFFIXES))})")
        sources += [check_source(str(file), roots) for file in found]
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
