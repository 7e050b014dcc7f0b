"""Estimated cost of a Gemini call from its token counts and a per-model price table."""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    """What one model charges, in US dollars per million tokens."""

    input_per_million_usd: float
    output_per_million_usd: float


#: Paid-tier list prices for prompts of up to 200k tokens (text, image and video input;
#: thinking tokens bill as output), from https://ai.google.dev/gemini-api/docs/pricing as
#: published in 2025. Keys are model-name prefixes; the longest matching prefix wins, so
#: ``gemini-2.5-flash-lite`` is not priced as ``gemini-2.5-flash``. The free tier costs
#: nothing, so these are an upper bound there. Update this table when Google's prices change.
PRICES: dict[str, Price] = {
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
}


def price_for(model: str, prices: dict[str, Price] = PRICES) -> Price | None:
    """Return the price of ``model`` (``models/`` prefix allowed), or None when unknown."""
    name = model.removeprefix("models/")
    matches = [prefix for prefix in prices if name.startswith(prefix)]
    return prices[max(matches, key=len)] if matches else None


def estimate_cost_usd(model: str, input_tokens: int, output_tokens: int,
                      prices: dict[str, Price] = PRICES) -> float:
    """Estimate a call's cost in US dollars; 0.0 (logged) for a model missing from the table."""
    price = price_for(model, prices)
    if price is None:
        logger.warning("No price for Gemini model %r; recording its cost as 0.", model)
        return 0.0
    cost = (input_tokens * price.input_per_million_usd + output_tokens * price.output_per_million_usd) / 1e6
    return round(cost, 8)
