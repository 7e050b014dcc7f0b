"""Turning command-line paths into items to submit: ids, sources and up-front checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from autolog.errors import MediaMissing
from autolog.sources import REMOTE_SCHEMES, validate_source
from autolog.store import NewItem, validate_item_id
from ops.errors import UsageError

#: Runs of characters an item id may not hold (see ``autolog.store.items.ITEM_ID``).
_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")

#: Longest item id the store accepts.
MAX_ID_LENGTH = 64


def item_id_for(path: str) -> str:
    """Derive an item id from a file's stem: other characters become ``_``, at most 64 long."""
    stem = Path(path.rstrip("/")).stem
    cleaned = _NOT_ID.sub("_", stem).strip("_")[:MAX_ID_LENGTH].rstrip("_")
    return cleaned or "item"


def plan_items(
    paths: Sequence[str], roots: Sequence[Path], *, item_id: str | None = None, force_resume: bool = False,
    prefix: str = "",
) -> list[NewItem]:
    """Check every path and return the items to submit, before anything is stored.

    Raises:
        UsageError: ``item_id`` was given with more than one path, or two paths share an id.
        InvalidItemId: ``item_id`` is malformed.
        InvalidSource: a path is outside the media roots.
        MediaMissing: a local path is not a file.
    """
    if item_id is not None and len(paths) != 1:
        raise UsageError("--id needs exactly one PATH")
    items: list[NewItem] = []
    seen: dict[str, str] = {}
    for path in paths:
        source = validate_source(path, roots)
        if not source.startswith(REMOTE_SCHEMES) and not Path(source).is_file():
            raise MediaMissing(path, "no such file")
        new_id = validate_item_id(item_id if item_id is not None else prefix + item_id_for(path))
        if new_id in seen:
            raise UsageError(f"{path} and {seen[new_id]} would both be item {new_id!r}; ingest one with --id")
        seen[new_id] = path
        items.append(NewItem(id=new_id, source=source, force_resume=force_resume))
    return items
