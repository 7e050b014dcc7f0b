"""What the steps produce: artifacts, scenes, analysis, frames and transcript.

Every save replaces the item's previous rows of that kind in one transaction, so a
redelivered step leaves exactly one copy. Through a fenced store (``Store.fenced``) a save
is refused with ``StaleRun`` once its run no longer holds the item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from autolog.store.driver_sql import CompiledFor
from autolog.store.fencing import RunFence, hold_fence
from autolog.store.group_commit import GroupCommit
from autolog.store.models import Analysis, Artifact, Frame, Scene, TranscriptSegment
from autolog.store.views import AnalysisView, ArtifactView, FrameView, SceneView, SegmentView

_ARTIFACTS = cast("Table", Artifact.__table__)
_SCENES = cast("Table", Scene.__table__)
_ANALYSES = cast("Table", Analysis.__table__)
_FRAMES = cast("Table", Frame.__table__)
_SEGMENTS = cast("Table", TranscriptSegment.__table__)

# The saves' statements, built once and run on a transaction's connection: building, compiling
# and flushing ORM objects per save cost about twice what the SQL does (SQLite, 0.9 of
# ~1.3 ms for a poster's save; each item makes five saves). Core, not ORM, writes: the
# search index is kept by database triggers, and nothing here reads the rows back. Each is
# compiled once per dialect and runs on the driver's cursor (``autolog.store.driver_sql``):
# through ``Connection.execute`` a save still cost 0.37 ms. The reads steps 4 and 5 make
# (scenes, analysis) are built once too.
_DELETE_ARTIFACTS = CompiledFor(delete(_ARTIFACTS).where(_ARTIFACTS.c.item_id == bindparam("owner"),
                                                         _ARTIFACTS.c.kind == bindparam("of_kind")))
_DELETE_SCENES = CompiledFor(delete(_SCENES).where(_SCENES.c.item_id == bindparam("owner")))
_DELETE_ANALYSIS = CompiledFor(delete(_ANALYSES).where(_ANALYSES.c.item_id == bindparam("owner")))
_DELETE_FRAMES = CompiledFor(delete(_FRAMES).where(_FRAMES.c.item_id == bindparam("owner")))
_SCENES_OF = (select(_SCENES.c.position, _SCENES.c.start_s, _SCENES.c.end_s, _SCENES.c.sample_s,
                      _SCENES.c.image_path)
              .where(_SCENES.c.item_id == bindparam("owner")).order_by(_SCENES.c.position))
_ANALYSIS_OF = (select(_ANALYSES.c.provider, _ANALYSES.c.model, _ANALYSES.c.prompt, _ANALYSES.c.result,
                       _ANALYSES.c.input_tokens, _ANALYSES.c.output_tokens, _ANALYSES.c.cost_usd)
                .where(_ANALYSES.c.item_id == bindparam("owner")))
_INSERT_ARTIFACTS = CompiledFor(insert(_ARTIFACTS))
_INSERT_SCENES = CompiledFor(insert(_SCENES))
_INSERT_ANALYSIS = CompiledFor(insert(_ANALYSES))
_INSERT_FRAMES = CompiledFor(insert(_FRAMES))
_DELETE_SEGMENTS = CompiledFor(delete(_SEGMENTS).where(_SEGMENTS.c.item_id == bindparam("owner")))
_INSERT_SEGMENTS = CompiledFor(insert(_SEGMENTS))
_CLEAR_FRAME_TEXTS = CompiledFor(update(_FRAMES).where(_FRAMES.c.item_id == bindparam("owner")).values(transcript=None))
_SET_FRAME_TEXT = CompiledFor(update(_FRAMES)
                              .where(_FRAMES.c.item_id == bindparam("owner"), _FRAMES.c.position == bindparam("at"))
                              .values(transcript=bindparam("text")))


def _row(item_id: str, view: Any) -> dict[str, Any]:
    """Return the columns of a view dataclass's row: its fields as they are, and ``item_id``.

    Not ``to_dict``: its deep copy (``dataclasses.asdict``) of an analysis or of frames'
    keywords cost more than the insert, and the insert only reads the values.
    """
    return {"item_id": item_id, **{field.name: getattr(view, field.name) for field in fields(view)}}


class Results:
    """Idempotent writes and reads of step outputs.

    Args:
        sessions: the store's session factory (reads).
        group: where the saves run: the items' group commit, so on SQLite a save shares a
            transaction with other threads' writes, and none pays for an ORM session.
        fence: the step run these saves belong to (``Store.fenced``).
    """

    def __init__(self, sessions: sessionmaker[Session], group: GroupCommit, *, fence: RunFence | None = None) -> None:
        self._sessions = sessions
        self._group = group
        self.fence = fence

    def _connect(self) -> Connection:
        """Return a pooled connection for a read the steps make (no session: a third of the cost, as ``Items.get``)."""
        return cast("Connection", self._sessions.kw["bind"].connect())

    def _save(self, item_id: str, write: Callable[[Connection], None]) -> None:
        """Run ``write`` in one transaction, after the fence check (``StaleRun``); return once committed.

        ``write`` replaces rows (deletes, then inserts), so it may run twice (``GroupCommit.run``).
        """
        def save(connection: Connection) -> None:
            hold_fence(connection, self.fence, item_id)
            write(connection)

        self._group.run(save, idempotent=True)

    def save_artifacts(self, item_id: str, kind: str, paths: Sequence[str]) -> None:
        """Replace the item's artifacts of ``kind`` with ``paths``, in order."""
        self.save_artifact_kinds(item_id, {kind: paths})

    def save_artifact_kinds(self, item_id: str, kinds: Mapping[str, Sequence[str]]) -> None:
        """Replace the item's artifacts of each kind in ``kinds`` (kind → paths, in order), in one transaction."""
        def write(connection: Connection) -> None:
            for kind, paths in kinds.items():
                _DELETE_ARTIFACTS.run(connection, {"owner": item_id, "of_kind": kind})
                _INSERT_ARTIFACTS.run_many(connection, [{"item_id": item_id, "kind": kind, "position": position,
                                                         "path": path} for position, path in enumerate(paths)])

        self._save(item_id, write)

    def artifacts(self, item_id: str) -> list[ArtifactView]:
        """Return the item's artifacts by kind and position."""
        query = select(Artifact).where(Artifact.item_id == item_id).order_by(Artifact.kind, Artifact.position)
        with self._sessions() as session:
            return [ArtifactView(kind=row.kind, position=row.position, path=row.path)
                    for row in session.scalars(query)]

    def items_with_artifact(self, item_ids: Sequence[str], kind: str) -> set[str]:
        """Return which of ``item_ids`` have an artifact of ``kind`` (a page of posters, in one query)."""
        if not item_ids:
            return set()
        query = select(Artifact.item_id).where(Artifact.item_id.in_(item_ids), Artifact.kind == kind).distinct()
        with self._sessions() as session:
            return set(session.scalars(query))

    def save_scenes(self, item_id: str, scenes: Sequence[SceneView]) -> None:
        """Replace the item's scenes, and its frame artifacts with their images."""
        scene_rows = [_row(item_id, scene) for scene in scenes]
        sample_rows = [{"item_id": item_id, "kind": "sample", "position": scene.position, "path": scene.image_path}
                       for scene in scenes]

        def write(connection: Connection) -> None:
            _DELETE_SCENES.run(connection, {"owner": item_id})
            _DELETE_ARTIFACTS.run(connection, {"owner": item_id, "of_kind": "sample"})
            _INSERT_SCENES.run_many(connection, scene_rows)
            _INSERT_ARTIFACTS.run_many(connection, sample_rows)

        self._save(item_id, write)

    def scenes(self, item_id: str) -> list[SceneView]:
        """Return the item's scenes in order."""
        with self._connect() as connection:
            return [SceneView(position=row.position, start_s=row.start_s, end_s=row.end_s,
                              sample_s=row.sample_s, image_path=row.image_path)
                    for row in connection.execute(_SCENES_OF, {"owner": item_id})]

    def save_analysis(self, item_id: str, analysis: AnalysisView) -> None:
        """Replace the item's analysis."""
        row = _row(item_id, analysis)

        def write(connection: Connection) -> None:
            _DELETE_ANALYSIS.run(connection, {"owner": item_id})
            _INSERT_ANALYSIS.run_many(connection, [row])

        self._save(item_id, write)

    def analysis(self, item_id: str) -> AnalysisView | None:
        """Return the item's analysis, if step 4 has stored one."""
        with self._connect() as connection:
            row = connection.execute(_ANALYSIS_OF, {"owner": item_id}).first()
            if row is None:
                return None
            return AnalysisView(provider=row.provider, model=row.model, prompt=row.prompt, result=row.result,
                                input_tokens=row.input_tokens, output_tokens=row.output_tokens,
                                cost_usd=row.cost_usd)

    def save_frames(self, item_id: str, frames: Sequence[FrameView]) -> None:
        """Replace the item's frame records."""
        rows = [_row(item_id, frame) for frame in frames]

        def write(connection: Connection) -> None:
            _DELETE_FRAMES.run(connection, {"owner": item_id})
            _INSERT_FRAMES.run_many(connection, rows)

        self._save(item_id, write)

    def frames(self, item_id: str) -> list[FrameView]:
        """Return the item's frame records in order."""
        query = select(Frame).where(Frame.item_id == item_id).order_by(Frame.position)
        with self._sessions() as session:
            return [_frame_view(row) for row in session.scalars(query)]

    def save_transcript(
        self, item_id: str, segments: Sequence[SegmentView], frame_texts: Mapping[int, str]
    ) -> None:
        """Replace the item's transcript and write each frame's share of it."""
        segment_rows = [_row(item_id, segment) for segment in segments]
        texts = [{"owner": item_id, "at": position, "text": text} for position, text in frame_texts.items()]

        def write(connection: Connection) -> None:
            _DELETE_SEGMENTS.run(connection, {"owner": item_id})
            _INSERT_SEGMENTS.run_many(connection, segment_rows)
            _CLEAR_FRAME_TEXTS.run(connection, {"owner": item_id})
            if texts:
                _SET_FRAME_TEXT.run_many(connection, texts)

        self._save(item_id, write)

    def transcript(self, item_id: str) -> list[SegmentView]:
        """Return the item's transcript segments in order."""
        query = select(TranscriptSegment).where(TranscriptSegment.item_id == item_id).order_by(
            TranscriptSegment.position)
        with self._sessions() as session:
            return [SegmentView(position=row.position, start_s=row.start_s, end_s=row.end_s, text=row.text)
                    for row in session.scalars(query)]

    def counts(self, item_id: str) -> dict[str, Any]:
        """Count the item's stored outputs of each kind; tests use it to prove idempotence."""
        with self._sessions() as session:
            return {
                "artifacts": len(session.scalars(select(Artifact.id).where(Artifact.item_id == item_id)).all()),
                "scenes": len(session.scalars(select(Scene.id).where(Scene.item_id == item_id)).all()),
                "frames": len(session.scalars(select(Frame.id).where(Frame.item_id == item_id)).all()),
                "segments": len(session.scalars(
                    select(TranscriptSegment.id).where(TranscriptSegment.item_id == item_id)).all()),
            }


def _frame_view(row: Frame) -> FrameView:
    return FrameView(position=row.position, time_s=row.time_s, timecode=row.timecode, image_path=row.image_path,
                     description=row.description, keywords=list(row.keywords), analysis=row.analysis,
                     transcript=row.transcript)
