"""Cost estimates from the price table, and the frames as Gemini is sent them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from autolog.errors import CorruptMedia
from autolog.gemini import MAX_IMAGE_PX, PRICES, Price, encode_frame, estimate_cost_usd, price_for


def test_the_longest_matching_model_prefix_sets_the_price() -> None:
    assert price_for("gemini-2.5-flash-lite-preview-06-17") == PRICES["gemini-2.5-flash-lite"]
    assert price_for("models/gemini-2.5-flash") == PRICES["gemini-2.5-flash"]
    assert price_for("some-other-model") is None


def test_cost_is_tokens_times_the_per_million_price() -> None:
    prices = {"m": Price(input_per_million_usd=2.0, output_per_million_usd=10.0)}

    assert estimate_cost_usd("m-1", 500_000, 100_000, prices) == pytest.approx(2.0)


def test_an_unpriced_model_costs_zero() -> None:
    assert estimate_cost_usd("unknown", 1_000, 1_000) == 0.0


def test_frames_are_downscaled_jpegs_no_larger_than_the_limit(tmp_path: Path) -> None:
    source = tmp_path / "frame.png"
    Image.new("RGB", (1920, 1080), (10, 20, 30)).save(source)

    data = encode_frame(source)

    out = tmp_path / "sent.jpg"
    out.write_bytes(data)
    with Image.open(out) as sent:
        assert (sent.format, sent.size) == ("JPEG", (MAX_IMAGE_PX, 432))


def test_a_missing_frame_is_corrupt_media(tmp_path: Path) -> None:
    with pytest.raises(CorruptMedia):
        encode_frame(tmp_path / "gone.jpg")
