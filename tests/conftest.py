"""Shared fixtures: generated clips, a private Redis, databases and settings."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TestMedia:
    """The clips made by ``ops/make_test_media.sh`` and the truth about them."""

    root: Path
    manifest: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def test_media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestMedia]:
    """Generate the deterministic test clips once per session."""
    root = tmp_path_factory.mktemp("media")
    subprocess.run(
        ["bash", str(REPO / "ops" / "make_test_media.sh"), str(root)],
        check=True,
        capture_output=True,
    )
    manifest = json.loads((root / "manifest.json").read_text())
    yield TestMedia(root=root, manifest=manifest)
