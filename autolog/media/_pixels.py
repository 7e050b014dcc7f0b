"""Pixel statistics for the local analyzer: colours, light, detail and change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from autolog.errors import CorruptMedia

FloatImage = npt.NDArray[np.float64]

#: Frames are measured at most this wide, so sharpness compares fairly across sources.
ANALYSIS_WIDTH = 320

#: Size of the greyscale thumbnail compared between consecutive frames.
CHANGE_SIZE = (64, 36)

#: Hue ranges (degrees, start inclusive) of the named saturated colours.
_HUE_NAMES = (
    (15.0, "red"),
    (45.0, "orange"),
    (70.0, "yellow"),
    (165.0, "green"),
    (195.0, "cyan"),
    (255.0, "blue"),
    (290.0, "purple"),
    (335.0, "magenta"),
    (360.0, "red"),
)

#: Neutral, dark and pale names use these index values after the hue names.
_BLACK, _GREY, _WHITE, _BROWN, _PINK = (len(_HUE_NAMES) + offset for offset in range(5))
COLOUR_NAMES = (*(name for _, name in _HUE_NAMES), "black", "grey", "white", "brown", "pink")


@dataclass(frozen=True)
class DominantColour:
    """A named colour, the mean RGB of the pixels given that name, and their share."""

    name: str
    hex: str
    share: float


@dataclass(frozen=True)
class PixelStats:
    """Measurements of one frame; every value comes from its pixels."""

    width: int
    height: int
    colours: tuple[DominantColour, ...]
    brightness: float
    contrast: float
    sharpness: float
    colourfulness: float
    thumbnail: FloatImage


def measure_image(path: Path, *, top_colours: int = 3) -> PixelStats:
    """Open an image and measure it.

    Raises:
        CorruptMedia: The file is missing or is not a readable image.
    """
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            image = opened.convert("RGB")
    except OSError as ex:
        # PIL.UnidentifiedImageError and truncated-data errors are both OSErrors.
        raise CorruptMedia(str(path), f"cannot read frame image: {ex}") from ex
    if image.width > ANALYSIS_WIDTH:
        image = image.resize((ANALYSIS_WIDTH, max(1, round(image.height * ANALYSIS_WIDTH / image.width))))
    rgb = np.asarray(image, dtype=np.float64) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    thumbnail = np.asarray(image.convert("L").resize(CHANGE_SIZE), dtype=np.float64) / 255.0
    return PixelStats(
        width=width,
        height=height,
        colours=dominant_colours(rgb, top=top_colours),
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        sharpness=laplacian_variance(luma * 255.0),
        colourfulness=colourfulness(rgb * 255.0),
        thumbnail=thumbnail,
    )


def dominant_colours(rgb: FloatImage, *, top: int) -> tuple[DominantColour, ...]:
    """Name every pixel's colour and return the ``top`` most common names."""
    names = colour_indexes(rgb)
    counts = np.bincount(names.ravel(), minlength=len(COLOUR_NAMES))
    pixels = rgb.reshape(-1, 3)
    flat_names = names.ravel()
    colours = []
    for index in np.argsort(-counts, kind="stable")[:top]:
        if counts[index] == 0:
            break
        mean = pixels[flat_names == index].mean(axis=0)
        red, green, blue = (round(float(channel) * 255) for channel in mean)
        colours.append(
            DominantColour(
                name=COLOUR_NAMES[int(index)],
                hex=f"#{red:02x}{green:02x}{blue:02x}",
                share=float(counts[index]) / flat_names.size,
            )
        )
    return tuple(colours)


def colour_indexes(rgb: FloatImage) -> npt.NDArray[np.intp]:
    """Return each pixel's index into ``COLOUR_NAMES``, from its hue, saturation and value."""
    high = rgb.max(axis=-1)
    low = rgb.min(axis=-1)
    chroma = high - low
    saturation = np.divide(chroma, high, out=np.zeros_like(high), where=high > 0)
    hue = _hue_degrees(rgb, high, chroma)
    bounds = np.array([bound for bound, _ in _HUE_NAMES])
    indexes = np.searchsorted(bounds, hue, side="right").clip(0, len(_HUE_NAMES) - 1)
    last = len(_HUE_NAMES) - 1
    is_warm = (indexes == 0) | (indexes == 1) | (indexes == last)
    indexes = np.where(is_warm & (high < 0.6) & (saturation < 0.75), _BROWN, indexes)
    is_reddish = (indexes == 0) | (indexes == last) | (indexes == last - 1)
    indexes = np.where(is_reddish & (high > 0.7) & (saturation < 0.6), _PINK, indexes)
    neutral = np.where(high > 0.85, _WHITE, _GREY)
    indexes = np.where(saturation < 0.2, neutral, indexes)
    return np.where(high < 0.18, _BLACK, indexes).astype(np.intp)


def _hue_degrees(rgb: FloatImage, high: FloatImage, chroma: FloatImage) -> FloatImage:
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        high == red,
        ((green - blue) / safe) % 6.0,
        np.where(high == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
    )
    return np.asarray(hue * 60.0, dtype=np.float64)


def laplacian_variance(grey: FloatImage) -> float:
    """Return the variance of the 4-neighbour Laplacian: high for crisp detail."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    laplacian = 4.0 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(laplacian.var())


def colourfulness(rgb: FloatImage) -> float:
    """Return Hasler and Süsstrunk's colourfulness (0 grey, above ~60 very colourful)."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red_green = red - green
    yellow_blue = 0.5 * (red + green) - blue
    spread = np.hypot(red_green.std(), yellow_blue.std())
    centre = np.hypot(red_green.mean(), yellow_blue.mean())
    return float(spread + 0.3 * centre)


def change_between(previous: FloatImage, current: FloatImage) -> float:
    """Return the mean absolute difference of two greyscale thumbnails (0 same, 1 opposite)."""
    return float(np.abs(current - previous).mean())
