"""Fixtures for the Gemini unit tests: the stand-in server and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types

from tests.gemini_standin import GeminiStandIn


@pytest.fixture
def standin() -> Iterator[GeminiStandIn]:
    """A stand-in ``generateContent`` server, closed after the test."""
    server = GeminiStandIn()
    yield server
    server.close()


@pytest.fixture
def gemini_client(standin: GeminiStandIn) -> genai.Client:
    """The real google-genai client, pointed at the stand-in, with no SDK retries."""
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url=standin.base_url, timeout=5_000, retry_options=types.HttpRetryOptions(attempts=1)))
