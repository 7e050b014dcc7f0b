"""Turn a decoded frame into the picture a player shows: fields, colour, rotation, pixel shape.

Every image autolog writes (posters, contact sheets, sample frames, and so what step 4
analyses) goes through :func:`display_filters`. The filters run on the selected frames
only, after ``select``, so a clip that needs them pays per image, not per decoded frame,
and an ordinary clip (progressive, SDR, upright, square pixels) gets just its scale.

ffmpeg is always run with ``-noautorotate``: its automatic rotation would turn every
decoded frame, before ``select`` and before the fields are rebuilt; here the turn comes
after deinterlacing, on the selected frames.
"""

from __future__ import annotations

from autolog.media.probe import ProbeResult

#: Deinterlacing of a single selected frame: keep the field shown first and let the final
#: scale rebuild the full height from it. Temporal deinterlacers (``bwdif``, ``yadif``)
#: need the neighbouring frames, which ``select`` has dropped (given a lone frame they
#: keep its woven field, combing and all), and run on every decoded frame if put before
#: ``select``; the spatial ``estdif`` takes 22 ms a 720p frame. Half the lines still
#: outnumber a poster's or a tile's.
_DEINTERLACE = "field=type={field}"

#: The field shown first, as the ``field`` filter names it, for each interlaced field
#: order (``tb``: top field coded first, bottom shown first).
_FIRST_FIELD = {"tt": "top", "bt": "top", "bb": "bottom", "tb": "bottom"}

#: PQ and HLG to BT.709 (SDR). zscale linearises with 100 nits as 1.0 (BT.2100 pictures use
#: BT.2020 primaries and matrix, set here for files that tag only their transfer), converts
#: the primaries in linear light, and ``tonemap=mobius`` compresses only what lies above
#: SDR white, so a picture within SDR range keeps its tones (hable darkens them by a third).
#: It runs after the scale, on the image's pixels only (a 160-pixel tile, not a 4K frame).
_TONEMAP = (
    "zscale=tin={transfer}:pin=bt2020:min=bt2020nc:t=linear:npl=100,format=gbrpf32le,"
    "zscale=p=bt709,tonemap=mobius:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)

#: ffmpeg's ``transpose`` directions for the clockwise turns a display matrix asks for.
_ROTATE = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


def picture_filters(probe: ProbeResult) -> list[str]:
    """Return the filters a frame of this clip needs to look as a player shows it, in order.

    Deinterlace (interlaced field orders), turn by the display rotation, then tone-map
    (PQ or HLG transfer). Empty for a progressive, SDR, upright clip; pixel shape and
    size are set by the scale :func:`display_filters` puts before the tone-map.
    """
    return [*_geometry_filters(probe), *_colour_filters(probe)]


def _geometry_filters(probe: ProbeResult) -> list[str]:
    filters = []
    if probe.interlaced:
        filters.append(_DEINTERLACE.format(field=_FIRST_FIELD[probe.field_order]))
    if probe.rotation in _ROTATE:
        filters.append(_ROTATE[probe.rotation])
    return filters


def _colour_filters(probe: ProbeResult) -> list[str]:
    return [_TONEMAP.format(transfer=probe.color_transfer)] if probe.hdr else []


def image_size(probe: ProbeResult, *, width: int | None = None, max_width: int | None = None) -> tuple[int, int]:
    """Return the width and height of an image of the clip as a player shows it.

    The display size (square pixels, rotation applied); scaled to ``width`` if given,
    else down to ``max_width`` if it is wider (never up). The height keeps the display
    proportions and is even, as the JPEG encoder's chroma subsampling wants.

    Raises:
        ValueError: The probe has no display size (an audio-only item).
    """
    shown_width, shown_height = probe.display_width, probe.display_height
    if shown_width <= 0 or shown_height <= 0:
        raise ValueError(f"no picture size in the probe ({shown_width}x{shown_height})")
    if width is None:
        if max_width is None or shown_width <= max_width:
            return shown_width, shown_height
        width = max_width
    return width, max(2, 2 * round(shown_height * width / shown_width / 2))


def display_filters(probe: ProbeResult, *, width: int | None = None, max_width: int | None = None) -> str:
    """Return the ``-vf`` chain from a selected frame to the shown picture, sized as :func:`image_size`.

    The ``scale`` makes the pixels square (an anamorphic picture widens to its display
    size), restores a single field's height and sizes the image; ``setsar=1`` marks the
    result square-pixelled.
    """
    image_width, image_height = image_size(probe, width=width, max_width=max_width)
    scale = f"scale={image_width}:{image_height}"
    return ",".join([*_geometry_filters(probe), scale, *_colour_filters(probe), "setsar=1"])
