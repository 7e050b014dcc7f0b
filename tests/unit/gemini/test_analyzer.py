"""The Gemini analyzer: the real google-genai client against the stand-in server."""

from __future__ import annotations

from pathlib import Path

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from autolog.context import make_analyzer
from autolog.errors import MalformedAnalysis, UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from autolog.gemini import DEFAULT_RETRY_AFTER_S, MAX_IMAGE_PX, GeminiAnalyzer, estimate_cost_usd, retry_after_s
from autolog.media import FrameInput, LocalAnalyzer
from autolog.settings import Settings
from tests.gemini_standin import GeminiStandIn


@pytest.fixture
def frames(tmp_path: Path) -> list[FrameInput]:
    """Three 1080p sampled frames."""
    inputs = []
    for index in (0, 1, 2):
        path = tmp_path / f"{index}.jpg"
        Image.new("RGB", (1920, 1080), (index * 80, 100, 150)).save(path)
        inputs.append(FrameInput(index=index, time_s=index * 2.0 + 1.0, image=path))
    return inputs


@pytest.fixture
def analyzer(gemini_client: genai.Client) -> GeminiAnalyzer:
    """The analyzer on the stand-in's client."""
    return GeminiAnalyzer(client=gemini_client, model="gemini-2.5-flash")


def test_frames_and_prompt_go_out_in_one_call_and_a_checked_log_comes_back(
    analyzer: GeminiAnalyzer, standin: GeminiStandIn, frames: list[FrameInput]
) -> None:
    result = analyzer.analyze(frames, "Note the colour of each frame")

    [call] = standin.calls
    assert call.model == "gemini-2.5-flash"
    assert call.api_key == "test-key"
    assert call.frames == (0, 1, 2)
    assert all(max(size) <= MAX_IMAGE_PX for size in call.images) and len(call.images) == 3
    assert "Note the colour of each frame" in call.prompt
    assert (result.provider, result.model) == ("gemini", "gemini-2.5-flash")
    assert [frame.index for frame in result.frames] == [0, 1, 2]
    assert result.frames[0].subjects == ("a person in a red coat", "test pattern")
    assert result.input_tokens > 3 * 258 and result.output_tokens == 120
    assert result.cost_usd == estimate_cost_usd("gemini-2.5-flash", result.input_tokens, result.output_tokens) > 0


def test_a_429_raises_rate_limited_with_the_servers_retry_delay(
    analyzer: GeminiAnalyzer, standin: GeminiStandIn, frames: list[FrameInput]
) -> None:
    standin.answer_next("429", retry_delay_s=7)

    with pytest.raises(UpstreamRateLimited) as caught:
        analyzer.analyze(frames, None)

    assert (caught.value.retry_after_s, caught.value.code) == (7.0, 429)
    assert len(standin.calls) == 1, "the SDK must not retry on its own"


def test_a_400_is_rejected_permanently_with_the_servers_reason(
    analyzer: GeminiAnalyzer, standin: GeminiStandIn, frames: list[FrameInput]
) -> None:
    standin.answer_next("400", reason="Request contains an invalid argument.")

    with pytest.raises(UpstreamRejected) as caught:
        analyzer.analyze(frames, None)

    assert str(caught.value) == "gemini: HTTP 400: INVALID_ARGUMENT: Request contains an invalid argument."


@pytest.mark.parametrize("kind", ["500", "garbage"])
def test_server_errors_and_unreadable_bodies_are_transient(
    analyzer: GeminiAnalyzer, standin: GeminiStandIn, frames: list[FrameInput], kind: str
) -> None:
    standin.answer_next(kind)

    with pytest.raises(UpstreamUnavailable):
        analyzer.analyze(frames, None)


def test_a_timeout_is_transient(standin: GeminiStandIn, frames: list[FrameInput]) -> None:
    standin.latency_s = 1.0
    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=standin.base_url, timeout=200, retry_options=types.HttpRetryOptions(attempts=1)))

    with pytest.raises(UpstreamUnavailable) as caught:
        GeminiAnalyzer(client=client, model="gemini-2.5-flash").analyze(frames, None)

    assert "Timeout" in str(caught.value)


def test_an_unreachable_endpoint_is_transient(frames: list[FrameInput]) -> None:
    server = GeminiStandIn()
    url = server.base_url
    server.close()
    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=url, retry_options=types.HttpRetryOptions(attempts=1)))

    with pytest.raises(UpstreamUnavailable):
        GeminiAnalyzer(client=client, model="gemini-2.5-flash").analyze(frames, None)


@pytest.mark.parametrize(("kind", "message"), [
    ("malformed", "gemini output is not valid JSON"),
    ("missing_frame", "gemini output has missing frames [2]"),
])
def test_malformed_model_output_fails_clearly(
    analyzer: GeminiAnalyzer, standin: GeminiStandIn, frames: list[FrameInput], kind: str, message: str
) -> None:
    standin.answer_next(kind)

    with pytest.raises(MalformedAnalysis) as caught:
        analyzer.analyze(frames, None)

    assert message in str(caught.value)


@pytest.mark.parametrize(("body", "headers", "expected"), [
    ({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}, {}, 1.5),
    ({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                             "retryDelay": {"seconds": 2, "nanos": 500_000_000}}]}}, {}, 2.5),
    ({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure"}]}}, {"retry-after": "9"}, 9.0),
    ({"error": {"message": "quota"}}, {}, DEFAULT_RETRY_AFTER_S),
])
def test_the_retry_delay_comes_from_retry_info_then_retry_after(
    body: dict[str, object], headers: dict[str, str], expected: float
) -> None:
    import httpx2

    error = genai_errors.ClientError(429, body, httpx2.Response(429, headers=headers))

    assert retry_after_s(error) == expected


def test_settings_pick_gemini_when_a_key_is_set_and_local_otherwise(standin: GeminiStandIn) -> None:
    with_key = Settings(gemini_api_key="k", gemini_base_url=standin.base_url, gemini_model="gemini-2.0-flash")

    chosen = make_analyzer(with_key)

    assert isinstance(chosen, GeminiAnalyzer) and chosen.model == "gemini-2.0-flash"
    assert isinstance(make_analyzer(Settings()), LocalAnalyzer)


def test_gemini_limits_are_read_from_the_environment() -> None:
    settings = Settings.from_env({
        "AUTOLOG_GEMINI_REQUESTS_PER_WINDOW": "5", "AUTOLOG_GEMINI_TOKENS_PER_WINDOW": "9000",
        "AUTOLOG_GEMINI_CONCURRENCY": "3", "AUTOLOG_GEMINI_WINDOW_MS": "2000", "AUTOLOG_GEMINI_TIMEOUT_MS": "500",
    })

    assert (settings.gemini_requests_per_window, settings.gemini_tokens_per_window, settings.gemini_concurrency,
            settings.gemini_window_ms, settings.gemini_timeout_ms) == (5, 9000, 3, 2000, 500)
    assert Settings.from_env({}).gemini_requests_per_window == 10
