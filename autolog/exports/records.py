"""What exports read from the store: one logged item, or a selection read page by page.

A selection is read twice: :func:`plan_selection` checks it (every item logged, its frame
rates) before a byte is written, then :func:`iter_selection` reads it in pages of
``PAGE_SIZE`` items, each page's frames, shots and speech in three queries, so an export of
10,000 items never holds more than one page in memory.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from autolog.errors import ItemNotFound
from autolog.exports.errors import InvalidExportOption, ItemsNotLogged
from autolog.exports.timing import SourceClock, stored_rate
from autolog.media.probe import ProbeResult
from autolog.media.timecode import parse_rate
from autolog.statuses import AUDIO_ONLY, Status, parse_status
from autolog.store import FrameView, ItemView, SceneView, SegmentView, Store, validate_item_id
from autolog.store.items import to_view
from autolog.store.models import Frame, Item, Scene, TranscriptSegment
from autolog.store.search_query import parse_query

#: Statuses at which an item is logged: nothing more will run for it.
FINAL_STATUSES: tuple[Status, ...] = tuple(status for status in Status if status.is_terminal)

#: Items read per page of a selection.
PAGE_SIZE = 500

#: The parts of an item :func:`iter_selection` can read.
PARTS = frozenset({"scenes", "frames", "segments"})

#: The longest text a selection may search for.
MAX_TEXT_CHARS = 200

#: The highest frame rate a selection may filter on.
MAX_FPS = 1000

#: The most ids one selection may name (the same ceiling as ``POST /items:batch``).
MAX_IDS = 1000


@dataclass(frozen=True)
class LoggedItem:
    """An item at a final status with everything an export reads about it."""

    item: ItemView
    probe: ProbeResult | None
    clock: SourceClock
    scenes: tuple[SceneView, ...] = ()
    frames: tuple[FrameView, ...] = ()
    segments: tuple[SegmentView, ...] = ()

    @property
    def has_picture(self) -> bool:
        """False for audio-only items: a sound roll, or audio with cover art."""
        kind = self.item.media_kind or (self.probe.media_kind if self.probe else None)
        return kind != AUDIO_ONLY

    @property
    def duration_s(self) -> float:
        """The clip's duration in seconds: the probed one, else the end of its last shot."""
        if self.probe is not None:
            return self.probe.duration_s
        return max((scene.end_s for scene in self.scenes), default=0.0)

    @property
    def end_frame(self) -> int:
        """The clip's exclusive end, as a frame number of its clock: its duration's, or its last shot's end if later.

        A variable-rate file's container can end inside its last frame (``02_vfr_lowlight.mp4``
        of the footage cases: 3.967 s, where its last frame, at 15 fps from 3.933 s, ends at
        4.0 s, as its last shot does): the clip must hold every shot, in the ALE as in the
        timelines' media ranges.

        Sound that outlasts the picture by less than a frame is an encoder's padding, not sound
        recorded past the picture: AAC's last frame of 1,024 samples (``15 Take 2 …mp4``: 100
        frames in 4.000 s, its container 4.032 s, read as 101 frames). The clip then ends with
        its picture; sound that runs a frame or more longer (``13_audio_longer.mp4``: 4 s of
        picture, 6.9 s of speech) still lengthens it.
        """
        clock = self.clock
        duration_s = self.duration_s
        probe = self.probe
        if self.has_picture and probe is not None and probe.video_duration_s is not None:
            picture_end_s = probe.video_start_s + probe.video_duration_s
            if 0 < duration_s - picture_end_s < 1 / clock.rate:
                duration_s = picture_end_s
        return max([clock.frame_at(duration_s), *(clock.frame_at(scene.end_s) for scene in self.scenes)])

    @property
    def audio_channels(self) -> int:
        """How many mono tracks an editor gets: the probed audio streams' channels, summed."""
        if self.probe is None:
            return 1 if self.item.has_audio else 0
        return sum(max(track.channels, 1) for track in self.probe.audio_tracks)


@dataclass(frozen=True)
class Selection:
    """Which items a multi-item export holds; every filter given must match.

    With neither ``ids`` nor ``status`` it holds every logged item.
    """

    ids: tuple[str, ...] = ()
    status: Status | None = None
    #: A search query (:mod:`autolog.store.search_query`): items whose id, source, frame records or transcript match.
    text: str | None = None
    #: Only items at this nominal frame rate.
    fps: Fraction | None = None

    @classmethod
    def parse(cls, *, ids: Sequence[str] = (), status: str | None = None, text: str | None = None,
              fps: str | None = None) -> Selection:
        """Build a selection from request or command-line values.

        Raises:
            InvalidItemId: an id is malformed.
            InvalidExportOption: too many ids, an unknown status or a malformed rate.
        """
        unique = tuple(dict.fromkeys(validate_item_id(item_id) for item_id in ids))
        if len(unique) > MAX_IDS:
            raise InvalidExportOption("ids", f"at most {MAX_IDS} ids per export, not {len(unique)}")
        try:
            parsed_status = parse_status(status) if status else None
        except ValueError as ex:
            raise InvalidExportOption("status", str(ex)) from ex
        try:
            rate = parse_rate(fps) if fps else None
        except ValueError as ex:
            raise InvalidExportOption("fps", f"expected a frame rate such as 25, 29.97 or 30000/1001: {ex}") from ex
        if rate is not None and rate > MAX_FPS:
            raise InvalidExportOption("fps", f"at most {MAX_FPS} frames per second")
        if text and len(text) > MAX_TEXT_CHARS:
            raise InvalidExportOption("q", f"at most {MAX_TEXT_CHARS} characters")
        if text and text.strip():
            parse_query(text)
        return cls(ids=unique, status=parsed_status, text=text.strip() or None if text else None, fps=rate)


@dataclass(frozen=True)
class SelectionPlan:
    """What a selection holds, known before anything is written."""

    count: int
    #: Items per ALE ``FPS`` label.
    rates: dict[str, int] = field(default_factory=dict)
    #: The tallest picture and the highest audio sample rate, for an ALE's heading.
    display_width: int = 0
    display_height: int = 0
    sample_rate: int = 0


def load_logged_item(store: Store, item_id: str) -> LoggedItem:
    """Read one item with its shots, frame records and transcript.

    Raises:
        ItemNotFound: no item has that id.
        ItemsNotLogged: the item is not at a final status.
    """
    item = store.items.get(item_id)
    if item.status not in FINAL_STATUSES:
        raise ItemsNotLogged({item.id: item.status.value}, final=FINAL_STATUSES[0].value)
    return _logged(item, scenes=store.results.scenes(item_id), frames=store.results.frames(item_id),
                   segments=store.results.transcript(item_id))


def plan_selection(store: Store, selection: Selection) -> SelectionPlan:
    """Check a selection and count it by frame rate.

    Raises:
        ItemNotFound: an id names no item (an item the other filters leave out is no error).
        ItemsNotLogged: items named by id or status are not at a final status.
    """
    if selection.ids:
        # Each named item must exist and be logged, whether or not the other filters keep it.
        with Session(store.engine) as session:
            known: dict[str, str] = {item_id: status for item_id, status in session.execute(
                select(Item.id, Item.status).where(Item.id.in_(selection.ids)))}
        missing = [item_id for item_id in selection.ids if item_id not in known]
        if missing:
            raise ItemNotFound(missing[0])
        unlogged = {item_id: status for item_id, status in known.items() if Status(status) not in FINAL_STATUSES}
        if unlogged:
            raise ItemsNotLogged(unlogged, final=FINAL_STATUSES[0].value)
    query = select(Item.id, Item.status, Item.nominal_fps, Item.start_timecode, Item.probe).where(
        *_conditions(store, selection, logged_only=False))
    rates: Counter[str] = Counter()
    not_logged: dict[str, str] = {}
    width = height = sample_rate = 0
    with Session(store.engine) as session:
        # yield_per: the ORM would otherwise buffer every row (and its probe) before the first.
        rows = session.execute(query.order_by(Item.id).execution_options(yield_per=PAGE_SIZE))
        for item_id, status, nominal_fps, start_timecode, probe in rows:
            if Status(status) not in FINAL_STATUSES:
                not_logged[item_id] = status
                continue
            rates[SourceClock.of(nominal_fps, start_timecode, probe).fps_label] += 1
            facts = probe or {}
            width = max(width, int(facts.get("display_width") or facts.get("width") or 0))
            height = max(height, int(facts.get("display_height") or facts.get("height") or 0))
            sample_rate = max([sample_rate, *(int(track.get("sample_rate") or 0)
                                              for track in facts.get("audio_tracks") or [])])
    if not_logged:
        raise ItemsNotLogged(not_logged, final=FINAL_STATUSES[0].value)
    return SelectionPlan(count=sum(rates.values()), rates=dict(rates), display_width=width, display_height=height,
                         sample_rate=sample_rate)


def iter_selection(store: Store, selection: Selection, *, parts: frozenset[str] = PARTS,
                   page_size: int = PAGE_SIZE) -> Iterator[LoggedItem]:
    """Yield the selection's logged items in id order, reading ``page_size`` items at a time.

    Only the ``parts`` named (of ``scenes``, ``frames``, ``segments``) are read; the others
    are left empty.
    """
    after: str | None = None
    while True:
        query: Select[Item] = select(Item).where(*_conditions(store, selection, logged_only=True))
        if after is not None:
            query = query.where(Item.id > after)
        with Session(store.engine) as session:
            items = [to_view(row) for row in session.scalars(query.order_by(Item.id).limit(page_size))]
            if not items:
                return
            ids = [item.id for item in items]
            scenes = _grouped(session, Scene, SceneView, ids) if "scenes" in parts else defaultdict(list)
            frames = _grouped(session, Frame, FrameView, ids) if "frames" in parts else defaultdict(list)
            segments = (_grouped(session, TranscriptSegment, SegmentView, ids) if "segments" in parts
                        else defaultdict(list))
        for item in items:
            yield _logged(item, scenes=scenes[item.id], frames=frames[item.id], segments=segments[item.id])
        after = items[-1].id


def _logged(item: ItemView, *, scenes: Sequence[SceneView], frames: Sequence[FrameView],
            segments: Sequence[SegmentView]) -> LoggedItem:
    return LoggedItem(item=item, probe=ProbeResult.from_dict(item.probe) if item.probe else None,
                      clock=SourceClock.of(item.nominal_fps, item.start_timecode, item.probe),
                      scenes=tuple(scenes), frames=tuple(frames), segments=tuple(segments))


def _conditions(store: Store, selection: Selection, *, logged_only: bool) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if selection.ids:
        conditions.append(Item.id.in_(selection.ids))
    if selection.status is not None:
        conditions.append(Item.status == selection.status.value)
    if logged_only or not (selection.ids or selection.status):
        conditions.append(Item.status.in_([status.value for status in FINAL_STATUSES]))
    if selection.text:
        matching = store.search.matching(selection.text).subquery()
        conditions.append(Item.id.in_(select(matching.c.item_id)))
    if selection.fps is not None:
        conditions.append(Item.nominal_fps == stored_rate(selection.fps))
    return conditions


View = TypeVar("View", SceneView, FrameView, SegmentView)


def _grouped(session: Session, model: type[Scene | Frame | TranscriptSegment], view: type[View], ids: list[str]
             ) -> defaultdict[str, list[View]]:
    """Read the items' rows of ``model`` in one query as ``view``s, grouped by item in position order.

    Columns, not ORM objects, are read: a page of 500 items has thousands of frame rows.
    """
    columns = [getattr(model, name) for name in view.__dataclass_fields__]
    query = select(model.item_id, *columns).where(model.item_id.in_(ids)).order_by(model.item_id, model.position)
    grouped: defaultdict[str, list[View]] = defaultdict(list)
    for item_id, *values in session.execute(query):
        grouped[item_id].append(view(*values))
    return grouped
