"""An item's shots as a timeline: a CMX 3600 EDL and a Final Cut Pro 7 XML, by OpenTimelineIO.

One OpenTimelineIO timeline is built per item: a video track with one clip per shot at its
source timecodes (frame records as markers), audio tracks ``A1``…``An`` mirroring it (one per
channel), and for an audio-only item one clip per audio track covering the recording. The
``cmx_3600`` adapter (``otio-cmx3600-adapter``) and the ``fcp_xml`` adapter
(``otio-fcp-adapter``) write it. Record timecodes start at ``01:00:00:00`` (``;00`` for
drop-frame), the usual first frame of a programme.
"""

from __future__ import annotations

import copy
import re
from pathlib import PurePosixPath
from xml.etree import ElementTree

import opentimelineio as otio
from anyascii import anyascii

from autolog.exports.errors import NotExportable
from autolog.exports.facts import file_name, one_line, reel
from autolog.exports.markers import AVID_MARKER_COLOURS, DEFAULT_MARKER_COLOUR
from autolog.exports.records import LoggedItem
from autolog.exports.timing import SourceClock, frame_number
from autolog.media.probe import FIELD_SHOWN_FIRST

#: CMX 3600 allows 8 characters of letters and digits for a reel.
EDL_REEL_CHARS = 8

#: Each Media Composer marker colour as OpenTimelineIO (and so the EDL's ``* LOC`` lines) spells it.
MARKER_COLOURS: dict[str, str] = {
    colour: getattr(otio.schema.MarkerColor, colour.upper()) for colour in AVID_MARKER_COLOURS}

_NOT_REEL = re.compile(r"[^A-Za-z0-9]+")


#: The channel field of a shot's event by the clip's audio channels (0, 1, 2 or more): picture alone,
#: picture and A1 (``B``), picture and A1, A2 (``AA/V``); CMX 3600's field holds no more than two.
EDL_CHANNELS = ("V", "B", "AA/V")

#: An event line as the ``cmx_3600`` adapter writes it: number, reel, then ``V`` padded to six and ``C``.
_PICTURE_EVENT = re.compile(r"^(\d{3,} +\S+ +)V {5}C ", re.MULTILINE)


def write_edl(logged: LoggedItem, *, marker_colour: str = DEFAULT_MARKER_COLOUR) -> str:
    """Return a CMX 3600 EDL of the item's shots: source timecodes, reel, clip names, frame markers.

    Each frame record is a ``* LOC`` line under its shot's event, at the record timecode where
    its frame falls in that event (the event's record in plus the frame's offset from its
    source in), as Media Composer places locators.

    The adapter writes no ``FCM`` line, so one is added after the title: ``DROP FRAME`` or
    ``NON-DROP FRAME`` as the item's timecode counts. Each event takes the clip's sound with its
    picture (``EDL_CHANNELS``: ``B`` with one channel, ``AA/V`` with two or more, of which the
    field names the first two), as the adapter, which writes the video track alone, does not.

    CMX 3600 is ASCII: clip names and locator comments are transliterated (``anyascii``: ``CAFÉ``
    reads ``CAFE``, ``“`` reads ``"``), since an EDL reader takes other bytes in its own code page
    (Media Composer on Windows read UTF-8's ``É`` as ``Ã‰``). The ``FROM CLIP`` path is a URL,
    ASCII already.

    Raises:
        NotExportable: the item has no picture, so no shots.
    """
    if not logged.has_picture or not logged.scenes:
        raise NotExportable(logged.item.id, "an EDL",
                            "it has no picture and so no shots; export ale, fcp7xml (its audio tracks), srt or vtt")
    clock = logged.clock
    rate = clock.label_rate
    video = _shot_track(logged, rate, kind=otio.schema.TrackKind.Video, name="V1", marker_colour=marker_colour)
    # Gaps make no events: this one only moves the first record timecode to the programme start.
    video.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
        duration=otio.opentime.RationalTime(_record_start(clock), rate))))
    timeline = otio.schema.Timeline(name=one_line(logged.item.id))
    timeline.tracks.append(video)
    record = _record_start(clock)
    for clip in video.find_clips():
        clip.metadata["cmx_3600"] = {"reel": edl_reel(logged)}
        # A locator is at record timecode, inside its event, as Media Composer writes them (OpenTimelineIO's
        # screening_example.edl, issue #345): the adapter prints a marker's time as it is given.
        source_in = clip.source_range.start_time.value
        for marker in clip.markers:
            at = record + marker.marked_range.start_time.value - source_in
            marker.marked_range = otio.opentime.TimeRange(otio.opentime.RationalTime(at, rate),
                                                          otio.opentime.RationalTime(0, rate))
        record += clip.source_range.duration.value
    text = str(otio.adapters.write_to_string(timeline, adapter_name="cmx_3600", rate=rate, style="avid"))
    counting = "DROP FRAME" if clock.drop_frame else "NON-DROP FRAME"
    title, _, events = anyascii(text).partition("\n")
    # The adapter writes the video track's events alone (``V``); each takes the clip's sound with it.
    channels = EDL_CHANNELS[min(logged.audio_channels, 2)]
    events = _PICTURE_EVENT.sub(lambda event: f"{event[1]}{channels:<6}C ", events)
    return f"{title}\nFCM: {counting}\n{events}"


def write_fcp7_xml(logged: LoggedItem) -> str:
    """Return a Final Cut Pro 7 XML (``xmeml`` 4) sequence of the item's shots, or of its recording.

    Premiere Pro and DaVinci Resolve import it. Frame records are clip markers named by their
    description, at frames counted from the start of the media, as ``xmeml`` counts them
    (``xmeml`` markers have no colour).
    """
    clock = logged.clock
    rate = float(clock.rate)
    timeline = otio.schema.Timeline(name=one_line(logged.item.id),
                                    global_start_time=otio.opentime.RationalTime(_record_start(clock), rate))
    timeline.metadata["fcp_xml"] = {"timecode": _timecode_metadata(logged)}
    if logged.has_picture and logged.scenes:
        timeline.tracks.append(_shot_track(logged, rate, kind=otio.schema.TrackKind.Video, name="V1",
                                           media_relative_markers=True))
    for channel in range(1, logged.audio_channels + 1):
        timeline.tracks.append(_shot_track(logged, rate, kind=otio.schema.TrackKind.Audio, name=f"A{channel}"))
    return _linked_xmeml(str(otio.adapters.write_to_string(timeline, adapter_name="fcp_xml")), logged)


def _linked_xmeml(text: str, logged: LoggedItem) -> str:
    """Finish the ``fcp_xml`` adapter's ``xmeml``: each audio track on its own channel, each shot's items linked.

    The adapter writes a clip item once and refers to it by id where an equal one comes again, so
    ``A2``'s shots were references to ``A1``'s: one channel twice. It writes no ``sourcetrack``
    (which channel of the file an audio item plays: the first, by default) and no ``link``
    (which items of the shot move together), and two ``rate`` elements in each audio item.
    Here track ``An``'s items are its own, play channel ``n`` (``sourcetrack``; the file's
    ``channelcount`` says how many it has, and a file without sound declares no audio), and the shot's
    video and audio items link to one another, as Final Cut Pro 7 writes them (Apple's
    *Final Cut Pro XML Interchange Format*, ``link`` and ``sourcetrack``). The adapter also writes
    no picture or sound format (an empty sequence ``format``, a file's bare ``video``), from which
    Premiere Pro and DaVinci Resolve set up the sequence: they are described here
    (``_describe_formats``).
    """
    root = ElementTree.fromstring(text)
    media = root.find("./project/children/sequence/media")
    if media is None:
        return text
    described = {item.get("id"): copy.deepcopy(item) for item in root.iter("clipitem") if len(item)}
    made = len(described)
    #: Per shot (its place on its track): its items, each with its media type and track number.
    shots: dict[int, list[tuple[ElementTree.Element, str, int]]] = {}
    for kind in ("video", "audio"):
        for number, track in enumerate(media.findall(f"./{kind}/track"), 1):
            for index, item in enumerate(track.findall("clipitem")):
                if not len(item):  # a reference to an item described on another track: this track's own copy
                    made += 1
                    own = copy.deepcopy(described[item.get("id")])
                    own.set("id", f"clipitem-{made}")
                    track[list(track).index(item)] = own
                    item = own
                for extra in item.findall("rate")[1:]:
                    item.remove(extra)
                if kind == "audio":
                    source = ElementTree.SubElement(item, "sourcetrack")
                    ElementTree.SubElement(source, "mediatype").text = "audio"
                    ElementTree.SubElement(source, "trackindex").text = str(number)
                shots.setdefault(index, []).append((item, kind, number))
    _declare_channels(root, len(media.findall("./audio/track")))
    _describe_formats(root, logged)
    for index, members in shots.items():
        _link(members, clip_index=index + 1)
    ElementTree.indent(root, space="    ")
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n{body}\n'


def _declare_channels(root: ElementTree.Element, channels: int) -> None:
    """Give each file's ``media/audio`` its ``channelcount``; a file without sound declares no audio."""
    for file_media in root.findall(".//file/media"):
        for file_audio in file_media.findall("audio"):
            if channels:
                ElementTree.SubElement(file_audio, "channelcount").text = str(channels)
            else:
                file_media.remove(file_audio)


def _describe_formats(root: ElementTree.Element, logged: LoggedItem) -> None:
    """Give the sequence and the file their picture and sound ``samplecharacteristics``, from the probe.

    Picture: the display size (rotation and pixel aspect applied, so square pixels), the field
    dominance (``none`` unless flagged interlaced), the rate. Sound: the sample rate and bit depth
    (a PCM codec's own, else 16, as Final Cut Pro 7 takes compressed sound). Nothing without a probe.
    """
    probe = logged.probe
    if probe is None:
        return
    width, height = probe.display_width or probe.width, probe.display_height or probe.height
    rate = root.find("./project/children/sequence/rate")
    # The sequence's empty ``format``, and each file's ``video``, whose description comes first.
    pictures = [*root.findall("./project/children/sequence/media/video/format"),
                *root.findall(".//file/media/video")]
    for parent in pictures if logged.has_picture and width and height else ():
        described = ElementTree.Element("samplecharacteristics")
        if rate is not None:
            described.append(copy.deepcopy(rate))
        for tag, value in (("width", width), ("height", height), ("anamorphic", "FALSE"),
                           ("pixelaspectratio", "square"),
                           ("fielddominance", FIELD_SHOWN_FIRST.get(probe.field_order, "none"))):
            ElementTree.SubElement(described, tag).text = str(value)
        parent.insert(0, described)
    sample_rate = max((track.sample_rate for track in probe.audio_tracks), default=0)
    if not sample_rate:
        return
    depth = next((int(bits) for bits in re.findall(r"^pcm_[suf](\d+)", probe.audio_tracks[0].codec)), 16)
    sound = root.findall(".//file/media/audio")
    sequence_audio = root.find("./project/children/sequence/media/audio")
    if sequence_audio is not None and sequence_audio.find("track") is not None:
        sound.append(ElementTree.Element("format"))
        sequence_audio.insert(0, sound[-1])
    for parent in sound:
        described = ElementTree.Element("samplecharacteristics")
        ElementTree.SubElement(described, "depth").text = str(depth)
        ElementTree.SubElement(described, "samplerate").text = str(sample_rate)
        parent.insert(0, described)


def _link(members: list[tuple[ElementTree.Element, str, int]], *, clip_index: int) -> None:
    """Link each of a shot's items (item, media type, track number) to every one of them, itself included."""
    for item, _, _ in members if len(members) > 1 else ():
        for linked, kind, number in members:
            link = ElementTree.SubElement(item, "link")
            ElementTree.SubElement(link, "linkclipref").text = linked.get("id")
            ElementTree.SubElement(link, "mediatype").text = kind
            ElementTree.SubElement(link, "trackindex").text = str(number)
            ElementTree.SubElement(link, "clipindex").text = str(clip_index)


def edl_reel(logged: LoggedItem) -> str:
    """Return the item's reel as CMX 3600 allows it: letters and digits, at most 8."""
    return _NOT_REEL.sub("", reel(logged))[:EDL_REEL_CHARS] or "AX"


def _record_start(clock: SourceClock) -> int:
    return frame_number("01:00:00;00" if clock.drop_frame else "01:00:00:00", clock.rate)


def _shot_track(logged: LoggedItem, rate: float, *, kind: str, name: str, marker_colour: str = DEFAULT_MARKER_COLOUR,
                media_relative_markers: bool = False) -> otio.schema.Track:
    """Return a track with one clip per shot (the whole recording when there are none).

    On an audio track the last shot's clip runs to the clip's end (``LoggedItem.end_frame``):
    sound recorded past the picture (a recorder that ran on) is kept in the timeline, as in the
    ALE, where the video's last clip ends with the picture.
    """
    clock = logged.clock
    end = logged.end_frame
    reference = otio.schema.ExternalReference(
        target_url=_url(logged.item.source),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(clock.start_frame, rate),
                                                otio.opentime.RationalTime(end - clock.start_frame, rate)))
    reference.metadata["fcp_xml"] = {"timecode": _timecode_metadata(logged)}
    spans = [(clock.frame_at(scene.start_s), clock.frame_at(scene.end_s), scene.position) for scene in logged.scenes]
    if not spans:
        spans = [(clock.start_frame, end, -1)]
    elif kind == otio.schema.TrackKind.Audio:
        first, last, position = spans[-1]
        spans[-1] = (first, max(last, end), position)
    frames = {frame.position: frame for frame in logged.frames}
    track = otio.schema.Track(name=name, kind=kind)
    for number, (first, last, position) in enumerate(spans, start=1):
        clip = otio.schema.Clip(
            name=one_line(f"{logged.item.id} shot {number}" if position >= 0 else logged.item.id),
            media_reference=reference,
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(first, rate),
                                                 otio.opentime.RationalTime(max(last - first, 0), rate)))
        frame = frames.get(position)
        if kind == otio.schema.TrackKind.Video and frame is not None:
            at = clock.frame_of(frame.timecode)
            marked = at - clock.start_frame if media_relative_markers else at
            clip.markers.append(otio.schema.Marker(
                name=one_line(frame.description), color=MARKER_COLOURS[marker_colour],
                marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(marked, rate),
                                                     otio.opentime.RationalTime(0, rate))))
        track.append(clip)
    return track


def _timecode_metadata(logged: LoggedItem) -> dict[str, object]:
    return {"displayformat": "DF" if logged.clock.drop_frame else "NDF", "reel": {"name": reel(logged)}}


def _url(source: str) -> str:
    """Return a file URL for a local path; URLs (``s3://``) unchanged."""
    if "://" in source:
        return source
    path = PurePosixPath(source)
    return path.as_uri() if path.is_absolute() else file_name(source)
