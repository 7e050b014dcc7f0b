"""Frame images as Gemini takes them: downscaled JPEG bytes."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from autolog.errors import CorruptMedia

#: Longest side sent to Gemini, in pixels. Gemini bills an image of up to 768x768 as one
#: 258-token tile and tiles anything larger, so 768 keeps each frame at one tile.
MAX_IMAGE_PX = 768

#: JPEG quality for the frames sent; 85 keeps detail a describer needs at a third of the size.
JPEG_QUALITY = 85


def encode_frame(path: Path, *, max_px: int = MAX_IMAGE_PX) -> bytes:
    """Return the image at ``path`` as JPEG bytes whose longest side is at most ``max_px``.

    Raises:
        CorruptMedia: the file is missing or is not an image Pillow can decode.
    """
    try:
        with Image.open(path) as image:
            frame = image.convert("RGB")
    except OSError as ex:
        raise CorruptMedia(str(path), f"cannot read the sampled frame: {ex}") from ex
    frame.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
