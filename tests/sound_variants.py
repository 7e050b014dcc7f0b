"""The sound variants of ``tests/footage_cases/make_sound_variants.sh`` and their truth."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "footage_cases" / "make_sound_variants.sh"

#: The words of each sentence the variants speak, as a recogniser writes them.
SENTENCE1 = frozenset({"welcome", "footage", "logging", "test"})
SENTENCE2 = frozenset({"quick", "brown", "fox", "jumps", "over", "lazy", "dog"})


@dataclass(frozen=True)
class SoundVariants:
    """The made clips (``root``) and ``sound_variants.json``'s entry for each file name."""

    root: Path
    truth: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name

    def shot_spans(self, name: str) -> list[tuple[int, float, float]]:
        """Return the truth's shots as ``(index, start_s, end_s)``, as step 3 would store them."""
        bounds = [0.0, *self.truth[name]["cuts"], self.truth[name]["duration"]]
        return [(index, start, end) for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False))]


def make_sound_variants(root: Path) -> SoundVariants:
    """Make the variants under ``root`` unless a previous call did (about 1.5 s)."""
    done = root / ".made"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", str(SCRIPT), str(root)], check=True, capture_output=True)
        done.touch()
    truth = json.loads(SCRIPT.with_name("sound_variants.json").read_text())
    return SoundVariants(root=root, truth={name: case for name, case in truth.items() if not name.startswith("_")})
