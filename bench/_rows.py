"""Rows of a benchmark's result, printed as a table and optionally saved for ``orchestration_table``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One measured figure beside its baseline from the same run.

    ``key`` names the row for ``bench/orchestration_table.py`` (stable across wording);
    ``value`` is autolog's figure as a number in the unit ``autolog`` shows; ``ratio`` is
    autolog's figure over the baseline's (None where there is no baseline).
    """

    key: str
    what: str
    autolog: str
    baseline: str
    ratio: float | None
    ratio_text: str
    value: float | None = None


def print_rows(rows: Sequence[Row]) -> None:
    """Print ``rows`` as an aligned table: what, autolog, baseline (same run), ratio."""
    width = max(len(row.what) for row in rows)
    print(f"{'what':<{width}}  {'autolog':<24}  {'baseline (same run)':<46}  ratio")
    for row in rows:
        print(f"{row.what:<{width}}  {row.autolog:<24}  {row.baseline:<46}  {row.ratio_text}")


def save_rows(rows: Sequence[Row], path: Path | None) -> None:
    """Write ``rows`` to ``path`` as a JSON list (nothing when ``path`` is None)."""
    if path is not None:
        path.write_text(json.dumps([asdict(row) for row in rows], indent=1))


def load_rows(path: Path) -> list[Row]:
    """Read rows saved by :func:`save_rows`; an absent file (the bench failed) gives none."""
    if not path.exists():
        return []
    return [Row(**entry) for entry in json.loads(path.read_text())]
