"""Step 4 with the Gemini analyzer: a real worker, the real client, the stand-in server.

Messages carry the rate limit as a message option, which ``RateLimits`` resolves before the
actor's (unset here, since the test process has no Gemini key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage
from google import genai

from actors import analyze, broker, services
from actors._broker import rate_limits
from autolog.context import Context
from autolog.gemini import GeminiAnalyzer
from autolog.media.analysis import FrameInput
from autolog.statuses import Status
from middleware import RateLimit
from tests.gemini_standin import GeminiStandIn, add_analysis_item

Drain = Callable[..., None]

#: Roomy enough that only the behaviour under test makes anything wait.
LIMIT = RateLimit(key="gemini-step-test", requests=50, window_ms=2_000, concurrency=4, tokens_per_call=1_000)


@pytest.fixture
def gemini(context: Context, gemini_client: genai.Client) -> Context:
    """The worker's context with the Gemini analyzer on the stand-in, and a fresh limit."""
    installed = dataclasses.replace(context, analyzer=GeminiAnalyzer(client=gemini_client, model="gemini-2.5-flash"))
    services().install(installed)
    rate_limits().limiter.reset(LIMIT.key)
    return installed


def send(item_id: str) -> str:
    message = analyze.send_with_options(args=(item_id,), rate_limit=dataclasses.asdict(LIMIT))
    message_id: str = message.message_id
    return message_id


def events(context: Context, item_id: str, kind: str) -> list[Any]:
    return [event for event in context.store.timeline.for_item(item_id) if event.event == kind]


def test_gemini_describes_the_frames_and_the_result_keeps_model_tokens_and_cost(
    gemini: Context, standin: GeminiStandIn, drain: Drain, tmp_path: Path, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("gemini")
    add_analysis_item(gemini.store, item_id, tmp_path, frames=3, prompt="Log the colours")

    send(item_id)
    drain()

    assert gemini.store.items.get(item_id).status is Status.PROCESSING_FRAME_INFO
    analysis = gemini.store.results.analysis(item_id)
    assert analysis is not None
    assert (analysis.provider, analysis.model, analysis.prompt) == ("gemini", "gemini-2.5-flash", "Log the colours")
    assert analysis.input_tokens > 0 and analysis.output_tokens == 120 and analysis.cost_usd > 0
    assert [frame["index"] for frame in analysis.result["frames"]] == [0, 1, 2]
    counters = rate_limits().counters(LIMIT.key)
    assert (counters.calls, counters.tokens) == (1, analysis.input_tokens)


def test_a_400_is_dead_lettered_once_with_its_reason(
    gemini: Context, standin: GeminiStandIn, drain: Drain, tmp_path: Path, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("rejected")
    add_analysis_item(gemini.store, item_id, tmp_path)
    standin.answer_next("400", reason="Unsupported MIME type: image/x-test")

    send(item_id)
    drain()

    item = gemini.store.items.get(item_id)
    assert (item.status, item.dead_lettered) == (Status.CREATING_FRAMES, True)
    assert item.error is not None
    assert (item.error["type"], item.error["permanent"]) == ("UpstreamRejected", True)
    assert "HTTP 400: INVALID_ARGUMENT: Unsupported MIME type: image/x-test" in item.error["message"]
    assert len(standin.calls) == 1
    assert len(events(gemini, item_id, "started")) == 1
    assert len(events(gemini, item_id, "dead_lettered")) == 1


def test_malformed_json_from_the_model_fails_the_item_clearly_without_retries(
    gemini: Context, standin: GeminiStandIn, drain: Drain, tmp_path: Path, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("malformed")
    add_analysis_item(gemini.store, item_id, tmp_path)
    standin.answer_next("malformed")

    send(item_id)
    drain()

    item = gemini.store.items.get(item_id)
    assert item.error is not None
    assert (item.error["type"], item.error["permanent"]) == ("MalformedAnalysis", True)
    assert item.error["message"].startswith("gemini output is not valid JSON")
    assert item.dead_lettered and len(standin.calls) == 1
    assert gemini.store.results.analysis(item_id) is None


def test_a_5xx_is_retried_with_backoff_and_then_succeeds(
    gemini: Context, standin: GeminiStandIn, drain: Drain, tmp_path: Path, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("flaky")
    add_analysis_item(gemini.store, item_id, tmp_path)
    standin.answer_next("500")

    send(item_id)
    drain()

    assert gemini.store.items.get(item_id).status is Status.PROCESSING_FRAME_INFO
    assert [event.error_type for event in events(gemini, item_id, "failed")] == ["UpstreamUnavailable"]
    assert [event.attempt for event in events(gemini, item_id, "started")] == [1, 2]


def test_a_429_pauses_then_retries_the_same_message_without_spending_a_retry(
    gemini: Context, standin: GeminiStandIn, drain: Drain, tmp_path: Path, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("limited")
    add_analysis_item(gemini.store, item_id, tmp_path)
    standin.answer_next("429", retry_delay_s=0.5)

    message_id = send(item_id)
    drain()

    item = gemini.store.items.get(item_id)
    assert (item.status, item.error, item.dead_lettered) == (Status.PROCESSING_FRAME_INFO, None, False)
    limited, succeeded = standin.calls
    assert (limited.status, succeeded.status) == (429, 200)
    assert succeeded.arrived_s >= limited.finished_s + 0.5, "the retry waits out the server's delay"
    started = events(gemini, item_id, "started")
    assert [(event.attempt, event.message_id) for event in started] == [(1, message_id), (1, message_id)]
    assert events(gemini, item_id, "failed") == []
    assert [event.detail["reason"] for event in events(gemini, item_id, "deferred")] == ["paused"]
    assert rate_limits().counters(LIMIT.key).upstream_limited == 1


def test_a_call_admitted_before_another_workers_429_waits_out_the_pause_before_its_request(
    gemini: Context, standin: GeminiStandIn, drain: Drain, tmp_path: Path, unique_id: Callable[[str], str]
) -> None:
    """The window between admission and the request: frames are read and encoded in it."""
    item_id = unique_id("held-back")
    add_analysis_item(gemini.store, item_id, tmp_path)
    message = MessageProxy(analyze.message_with_options(args=(item_id,), rate_limit=dataclasses.asdict(LIMIT)))
    middleware = rate_limits()
    middleware.before_process_message(broker, message)
    assert middleware.state(LIMIT).in_flight == 1, "admitted: the call holds a slot"
    pause_ends_s = middleware.limiter.pause(LIMIT, retry_after_ms=1_000)  # another worker met a 429

    frames = [FrameInput(index=scene.position, time_s=scene.sample_s, image=Path(scene.image_path))
              for scene in gemini.store.results.scenes(item_id)]
    with pytest.raises(SkipMessage):
        middleware.run(gemini.analyzer.analyze, frames, None)
    middleware.after_skip_message(broker, message)

    assert standin.calls == [], "no request reached the server during the pause"
    assert middleware.state(LIMIT).in_flight == 0, "the held-back call freed its slot"
    drain()
    (call,) = standin.calls
    assert call.status == 200 and call.arrived_s >= pause_ends_s, "the call went once, after the pause"
    assert gemini.store.items.get(item_id).status is Status.PROCESSING_FRAME_INFO
    assert [event.attempt for event in events(gemini, item_id, "started")] == [1]
