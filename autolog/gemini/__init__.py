"""Gemini frame analysis and transcription: the client wrapper, response schemas and checks, cost."""

from __future__ import annotations

from autolog.gemini.analyzer import DEFAULT_RETRY_AFTER_S, PROVIDER, GeminiAnalyzer, retry_after_s
from autolog.gemini.images import MAX_IMAGE_PX, encode_frame
from autolog.gemini.pricing import PRICES, Price, estimate_cost_usd, price_for
from autolog.gemini.schema import RESPONSE_SCHEMA, SHOT_TYPES, parse_frames
from autolog.gemini.transcriber import TRANSCRIPT_SCHEMA, GeminiTranscriber, parse_segments

__all__ = [
    # The analyzer
    "DEFAULT_RETRY_AFTER_S",
    "GeminiAnalyzer",
    "PROVIDER",
    "retry_after_s",
    # Request and response
    "MAX_IMAGE_PX",
    "RESPONSE_SCHEMA",
    "SHOT_TYPES",
    "encode_frame",
    "parse_frames",
    # The transcriber
    "GeminiTranscriber",
    "TRANSCRIPT_SCHEMA",
    "parse_segments",
    # Cost
    "PRICES",
    "Price",
    "estimate_cost_usd",
    "price_for",
]
