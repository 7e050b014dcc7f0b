"""Heavy libraries are imported only by the steps that use them, not by every process of the stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

#: About 20-40 MiB each in every process that imports them.
HEAVY = ("numpy", "PIL", "boto3", "botocore", "google.genai", "pocketsphinx")


@pytest.mark.parametrize("module", ["actors", "pipelines", "ops.agent", "ops.stack"])
def test_starting_a_process_of_the_stack_imports_no_heavy_library(module: str) -> None:
    script = f"import sys, {module}; print(' '.join(sorted(n for n in {HEAVY!r} if n in sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)

    assert loaded.stdout.split() == []
