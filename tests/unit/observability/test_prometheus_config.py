"""promtool accepts the scrape config and the alert rules, and each alert fires when it should."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

PROMETHEUS = REPO / "ops" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make system-deps` installs Debian's prometheus package"
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", [
    ("check", "config", "prometheus.yml"),
    ("check", "rules", "alerts.yml"),
    ("test", "rules", "alerts_test.yml"),
], ids=["config", "rules", "rule-tests"])
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)

    assert result.returncode == 0, result.stdout + result.stderr
