"""Item ids made from sources, for ingests that give none (the CLI, the MinIO webhook).

An item's id is its file's stem (``/cards/A/CLIP/C0001.MP4`` → ``C0001``), restricted to
the characters ids allow. Camera cards restart their numbering, so a stem may already
belong to another file: then the id is the stem plus ``-`` and the first 8 hex digits of
the SHA-1 of the source (the resolved absolute path, or the ``s3://`` URL), e.g.
``C0001-3f9a2c1b``. Ingesting a source again finds its item under either id, so the same
file is always the same item, while two files never share one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from autolog.errors import ItemNotFound
from autolog.store import Items, ItemView

#: Runs of characters an item id may not hold (see ``autolog.store.items.ITEM_ID``).
NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")

#: Longest item id the store accepts.
MAX_ID_LENGTH = 64

#: Hex digits of the source's SHA-1 that tell apart two files with the same stem.
HASH_LENGTH = 8

#: Finds a stored item by id; None when there is none.
Lookup = Callable[[str], ItemView | None]


def stored_items(items: Items) -> Lookup:
    """Return a lookup of ``items`` by id."""
    def lookup(item_id: str) -> ItemView | None:
        try:
            return items.get(item_id)
        except ItemNotFound:
            return None

    return lookup


def stem_id(source: str, *, fill: str = "_", prefix: str = "", fold: bool = True) -> str:
    """Return ``prefix`` plus the source's stem, other characters replaced by ``fill``, at most 64 long.

    Accented letters lose their accents first (``fold``: ``Café`` → ``Cafe``, by Unicode's
    compatibility decomposition); ids made before that dropped them (``Caf``), and ``choose_id``
    still finds those items.
    """
    stem = PurePosixPath(source.rstrip("/")).stem
    if fold:
        stem = "".join(char for char in unicodedata.normalize("NFKD", stem) if not unicodedata.combining(char))
    cleaned = NOT_ID.sub(fill, stem).strip("._-") or "item"
    return (prefix + cleaned)[:MAX_ID_LENGTH].rstrip("._-")


def hashed_id(source: str, *, fill: str = "_", prefix: str = "", fold: bool = True) -> str:
    """Return the stem id shortened to fit ``-`` and the first 8 hex digits of the source's SHA-1."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:HASH_LENGTH]
    stem = stem_id(source, fill=fill, prefix=prefix, fold=fold)[:MAX_ID_LENGTH - HASH_LENGTH - 1].rstrip("._-")
    return f"{stem}-{digest}"


def candidate_ids(source: str, *, fill: str = "_", prefix: str = "", fold: bool = True) -> tuple[str, str]:
    """Return the ids an item made from ``source`` may have: its stem id, then its hashed id."""
    return (stem_id(source, fill=fill, prefix=prefix, fold=fold),
            hashed_id(source, fill=fill, prefix=prefix, fold=fold))


def choose_id(
    source: str, lookup: Lookup, *, planned: Mapping[str, str] | None = None, fill: str = "_", prefix: str = "",
) -> tuple[str, ItemView | None]:
    """Return the id of ``source``'s item, and the item when it is already stored.

    The stored item whose source is ``source`` keeps its id, as does an item for it already
    ``planned`` (id → source) in the same batch. Otherwise the first candidate free in the
    store and in ``planned`` is returned; when both are taken by other sources, the hashed
    id is returned and creating it reports ``ItemExists``.
    """
    planned = planned or {}
    candidates = candidate_ids(source, fill=fill, prefix=prefix)
    # The ids a version that dropped accented letters gave the source: its item keeps its id.
    earlier = [candidate for candidate in candidate_ids(source, fill=fill, prefix=prefix, fold=False)
               if candidate not in candidates]
    stored = {candidate: lookup(candidate) for candidate in (*candidates, *earlier)}
    for candidate, item in stored.items():
        if (item is not None and item.source == source) or planned.get(candidate) == source:
            return candidate, item
    for candidate in candidates:
        if stored[candidate] is None and candidate not in planned:
            return candidate, None
    return candidates[-1], None
