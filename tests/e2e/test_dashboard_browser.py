"""dramatiq-dashboard in a real browser: headless Chromium against real gunicorn."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from autolog.statuses import STEPS
from tests.web.conftest import KEY, serve_api  # noqa: F401  (serve_api is a fixture)

pytestmark = pytest.mark.slow

#: Flags that keep Chromium off the network and out of a sandbox it cannot have as root.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render(url: str, profile: Path) -> str:
    """Load ``url`` in headless Chromium and return the DOM after its scripts ran."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make test` installs it"
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def shown_queues(page: str) -> list[str]:
    """Return the step queues that appear as a table cell of the page."""
    compact = "".join(page.split())
    return [step.queue_name for step in STEPS if f">{step.queue_name}<" in compact]


def test_dashboard_renders_every_queue_for_a_browser_with_a_key(
    serve_api: Callable[[dict[str, str]], str], tmp_path: Path, redis_client: object  # noqa: F811
) -> None:
    base = serve_api({})
    host = base.removeprefix("http://")

    page = render(f"http://operator:{KEY}@{host}/dashboard/", tmp_path / "profile")

    assert shown_queues(page) == [step.queue_name for step in STEPS]


def test_dashboard_refuses_a_browser_without_a_key(
    serve_api: Callable[[dict[str, str]], str], tmp_path: Path, redis_client: object  # noqa: F811
) -> None:
    base = serve_api({})

    page = render(f"{base}/dashboard/", tmp_path / "profile")

    # Chromium stops at the basic-auth challenge: no queue of the dashboard reaches the page.
    assert shown_queues(page) == []
