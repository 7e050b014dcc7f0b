"""Gemini frame analysis: the client wrapper, its response schema and checks, and cost."""

from __future__ import annotations

from autolog.gemini.analyzer import DEFAULT_RETRY_AFTER_S, PROVIDER, GeminiAnalyzer, retry_after_s
from autolog.gemini.images import MAX_IMAGE_PX, encode_frame
from autolog.gemini.pricing import PRICES, Price, estimate_cost_usd, price_for
from autolog.gemini.schema import RESPONSE_SCHEMA, SHOT_TYPES, parse_frames

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
    # Cost
    "PRICES",
    "Price",
    "estimate_cost_usd",
    "price_for",
]
