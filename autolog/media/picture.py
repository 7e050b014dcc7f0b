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

#: Deinterlacing of a single selected frame: ``estdif`` rebuilds the other field from the
#: first field's edges alone. Temporal deinterlacers (``bwdif``, ``yadif``) need the
#: neighbouring frames, which ``select`` has dropped: given a lone frame they keep its
#: woven field, combing and all.
_DEINTERLACE = "estdif=mode=frame:parity={parity}:deint=all"

#: The field shown first, as ``estdif`` names it, for each interlaced field order
#: (``tb``: top field coded first, bottom shown first).
_FIRST_FIELD = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}

#: PQ and HLG to BT.709 (SDR). zscale linearises with 100 nits as 1.0 (BT.2100 pictures use
#: BT.2020 primaries and matrix, set here for files that tag only their transfer), converts
#: the primaries in linear light, and ``tonemap=mobius`` compresses only what lies above
#: SDR white, so a picture within SDR range keeps its tones (hable darkens them by a third).
_TONEMAP = (
    "zscale=tin={transfer}:pin=bt2020:min=bt2020nc:t=linear:npl=100,format=gbrpf32le,"
    "zscale=p=bt709,tonemap=mobius:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)

#: ffmpeg's ``transpose`` directions for the clockwise turns a display matrix asks for.
_ROTATE = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


def picture_filters(probe: ProbeResult) -> list[str]:
    """Return the filters a frame of this clip needs before it is shown, in order.

    Deinterlace (interlaced field orders), tone-map (PQ or HLG transfer), then turn by
    the display rotation. Empty for a progressive, SDR, upright clip. Pixel shape is
    set by the scale of :func:`display_filters`.
    """
    filters = []
    if probe.interlaced:
        filters.append(_DEINTERLACE.format(parity=_FIRST_FIELD[probe.field_order]))
    if probe.hdr:
        filters.append(_TONEMAP.format(transfer=probe.color_transfer))
    if probe.rotation in _ROTATE:
        filters.append(_ROTATE[probe.rotation])
    return filters


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

    The final ``scale`` makes the pixels square (an anamorphic picture widens to its
    display size) and sizes the image; ``setsar=1`` marks the result square-pixelled.
    """
    image_width, image_height = image_size(probe, width=width, max_width=max_width)
    return ",".join([*picture_filters(probe), f"scale={image_width}:{image_height}", "setsar=1"])
