"""The Gemini analyzer: sampled frames and the user's prompt in, a checked frame log out.

It makes exactly one ``generateContent`` call per item and never retries by itself: the
SDK's retries are off, and failures are translated into autolog's error tree so that the
worker decides (a 429 pauses the step, 5xx and timeouts retry with backoff, other 4xx
dead-letter at once). Rate limiting happens around it, in ``middleware.RateLimits``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from autolog.errors import (
    ConfigError,
    MalformedAnalysis,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from autolog.gemini.images import MAX_IMAGE_PX, encode_frame
from autolog.gemini.pricing import estimate_cost_usd
from autolog.gemini.schema import RESPONSE_SCHEMA, parse_frames
from autolog.media.analysis import AnalysisResult, FrameInput
from autolog.settings import Settings
from autolog.upstream_gate import check_before_call

logger = logging.getLogger(__name__)

#: The provider name stored with every result.
PROVIDER = "gemini"

#: Used when a 429 carries neither a ``RetryInfo`` detail nor a ``Retry-After`` header, in s.
DEFAULT_RETRY_AFTER_S = 15.0

#: What Gemini is told it is doing; the user's prompt follows in the request.
SYSTEM_INSTRUCTION = (
    "You log video footage for editors. You are given frames sampled from one clip, each "
    "labelled with its frame index and time. For every frame, write a short factual "
    "description, keywords an editor would search for, the shot type, and the people and "
    "objects visible. Describe people by appearance and action; never guess who they are. "
    "Answer with one entry per frame, using exactly the frame indexes given."
)


class GeminiAnalyzer:
    """Describes sampled frames with one structured-output Gemini call.

    Args:
        client: a ``google.genai.Client``; point it at another server with ``http_options``.
        model: the model name, e.g. ``gemini-2.5-flash``.
        max_image_px: frames are downscaled so their longest side is at most this.
    """

    provider = PROVIDER

    def __init__(self, *, client: genai.Client, model: str, max_image_px: int = MAX_IMAGE_PX) -> None:
        self.model = model
        self._client = client
        self._max_image_px = max_image_px

    @classmethod
    def from_settings(cls, settings: Settings) -> GeminiAnalyzer:
        """Build the analyzer and its client from the ``gemini_*`` settings.

        Raises:
            ConfigError: no Gemini key is configured.
        """
        return cls(client=make_client(settings), model=settings.gemini_model)

    def analyze(self, frames: Sequence[FrameInput], prompt: str | None) -> AnalysisResult:
        """Describe ``frames`` as the prompt asks, checked against the response schema.

        Raises:
            CorruptMedia: a frame image is missing or cannot be decoded.
            UpstreamRateLimited: Gemini answered 429; ``retry_after_s`` is its delay.
            UpstreamUnavailable: Gemini failed with a 5xx, timed out or could not be reached.
            UpstreamRejected: Gemini refused the request (any other 4xx).
            MalformedAnalysis: the answer is empty, not JSON, or does not match the schema.
        """
        contents = self._contents(frames, prompt)
        config = types.GenerateContentConfig(
            system_instruction=SYSTEM_INSTRUCTION, response_mime_type="application/json",
            response_json_schema=RESPONSE_SCHEMA, temperature=0.2,
        )
        response = generate_content(self._client, self.model, contents, config)
        text = response.text
        if not text:
            raise MalformedAnalysis(f"{PROVIDER} returned no text ({why_empty(response)})")
        described = parse_frames(text, frames, provider=PROVIDER)
        usage = response.usage_metadata
        input_tokens = (usage.prompt_token_count or 0) if usage else 0
        # Thinking tokens are billed as output.
        output_tokens = ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
        return AnalysisResult(
            provider=PROVIDER, model=response.model_version or self.model, frames=described,
            input_tokens=input_tokens, output_tokens=output_tokens,
            cost_usd=estimate_cost_usd(self.model, input_tokens, output_tokens),
        )

    def _contents(self, frames: Sequence[FrameInput], prompt: str | None) -> types.Content:
        request = prompt.strip() if prompt and prompt.strip() else "No specific request: log what is shown."
        parts = [types.Part.from_text(text=f"The user's request for this clip: {request}")]
        for frame in frames:
            parts.append(types.Part.from_text(text=f"Frame index {frame.index} at {frame.time_s:.2f} s:"))
            parts.append(types.Part.from_bytes(data=encode_frame(frame.image, max_px=self._max_image_px),
                                               mime_type="image/jpeg"))
        indexes = ", ".join(str(frame.index) for frame in frames)
        parts.append(types.Part.from_text(text=f"Return exactly one entry for each frame index: {indexes}."))
        return types.Content(role="user", parts=parts)



def make_client(settings: Settings) -> genai.Client:
    """Build a client from the ``gemini_*`` settings, with the SDK's own retries off.

    Raises:
        ConfigError: no Gemini key is configured.
    """
    if not settings.gemini_api_key:
        raise ConfigError("AUTOLOG_GEMINI_API_KEY", "Gemini needs an API key")
    options = types.HttpOptions(
        base_url=settings.gemini_base_url, timeout=settings.gemini_timeout_ms,
        # One attempt: retries belong to the worker, which knows the message's budget.
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=settings.gemini_api_key, http_options=options)


def generate_content(
    client: genai.Client, model: str, contents: types.Content, config: types.GenerateContentConfig
) -> Any:
    """Make one ``generateContent`` call, with failures in autolog's error tree.

    Raises:
        UpstreamRateLimited: Gemini answered 429; ``retry_after_s`` is its delay.
        UpstreamUnavailable: Gemini failed with a 5xx, timed out, could not be reached, or
            answered with a body that is not JSON.
        UpstreamRejected: Gemini refused the request (any other 4xx).
        Exception: whatever the check installed by ``autolog.upstream_gate.gated`` raises to
            hold the request back (a shared rate-limit pause).
    """
    check_before_call()
    try:
        return client.models.generate_content(model=model, contents=contents, config=config)
    except genai_errors.ClientError as ex:
        raise translate_client_error(ex) from ex
    except genai_errors.APIError as ex:
        raise UpstreamUnavailable(PROVIDER, _reason(ex), code=ex.code) from ex
    except transport_errors() as ex:
        raise UpstreamUnavailable(PROVIDER, f"request failed: {type(ex).__name__}: {ex}") from ex
    except ValueError as ex:
        # The SDK raises JSONDecodeError (a ValueError) for a 200 whose body is not JSON,
        # e.g. an error page from a proxy: a fault of the path there, not of the item.
        raise UpstreamUnavailable(PROVIDER, f"response body is not valid JSON: {ex}") from ex


def translate_client_error(ex: genai_errors.ClientError) -> UpstreamError:
    """Map a 4xx from the SDK to autolog's error: 429 pauses, 408 retries, the rest is permanent."""
    if ex.code == 429 or ex.status == "RESOURCE_EXHAUSTED":
        return UpstreamRateLimited(PROVIDER, _reason(ex), retry_after_s=retry_after_s(ex), code=ex.code)
    if ex.code == 408:
        return UpstreamUnavailable(PROVIDER, _reason(ex), code=ex.code)
    return UpstreamRejected(PROVIDER, _reason(ex), code=ex.code)


def retry_after_s(ex: genai_errors.APIError) -> float:
    """Return the delay a 429 asks for: its ``google.rpc.RetryInfo``, else ``Retry-After``."""
    error = ex.details.get("error", ex.details) if isinstance(ex.details, dict) else {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = _duration_s(detail.get("retryDelay"))
            if delay is not None:
                return delay
    headers = getattr(ex.response, "headers", None)
    header = headers.get("retry-after") if headers is not None else None
    delay = _duration_s(header)
    return DEFAULT_RETRY_AFTER_S if delay is None else delay


def _duration_s(value: object) -> float | None:
    """Parse a protobuf duration ("7s", "0.5s", {"seconds": 7, "nanos": 0}) or plain seconds."""
    try:
        if isinstance(value, dict):
            return max(0.0, float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return max(0.0, float(str(value).strip().removesuffix("s")))
    except ValueError:
        return None
    return None


def _reason(ex: genai_errors.APIError) -> str:
    return f"{ex.status or 'error'}: {ex.message or ex.details}"


def why_empty(response: Any) -> str:
    """Say why a response has no text: a blocked prompt, a finish reason, or no candidates."""
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and feedback.block_reason is not None:
        return f"prompt blocked: {feedback.block_reason}"
    candidates = response.candidates or []
    if candidates and candidates[0].finish_reason is not None:
        return f"finish reason: {candidates[0].finish_reason}"
    return "no candidates"


@cache
def transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP transport errors (timeouts, refused connections) of httpx2 and httpx.

    google-genai 3 uses httpx2, a fork under its own name whose classes are not httpx's,
    and falls back to httpx; catch whichever is installed.
    """
    found: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except ImportError:
            continue
    return tuple(found)
