"""Turning command-line paths into items to submit: sources, ids and up-front checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autolog.item_ids import Lookup, choose_id
from autolog.sources import check_source
from autolog.store import ItemView, NewItem, validate_item_id
from ops.errors import UsageError


@dataclass(frozen=True)
class IngestPlan:
    """What an ingest does: items to create, items the paths already have, every id in path order."""

    new: tuple[NewItem, ...]
    existing: tuple[ItemView, ...]
    ids: tuple[str, ...]


def check_paths(paths: Sequence[str], roots: Sequence[Path], *, item_id: str | None = None) -> list[str]:
    """Return each path's canonical source, before anything is stored or connected.

    Raises:
        UsageError: ``item_id`` was given with more than one path.
        InvalidItemId: ``item_id`` is malformed.
        InvalidSource: a path is outside the media roots, missing or a folder.
    """
    if item_id is not None:
        if len(paths) != 1:
            raise UsageError("--id needs exactly one PATH")
        validate_item_id(item_id)
    return [check_source(path, roots) for path in paths]


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
