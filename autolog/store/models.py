"""SQLAlchemy models: items, their timeline and what the steps produce."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every autolog table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Item(Base):
    """One piece of footage and where it stands in the pipeline."""

    __tablename__ = "items"
    #: A page of one status in id order (``GET /items?status=``, ``autolog status --status``) reads the index only.
    __table_args__ = (Index("ix_items_status_id", "status", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(40))
    force_resume: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt: Mapped[str | None] = mapped_column(Text)
    probe: Mapped[dict[str, Any] | None]
    has_audio: Mapped[bool | None] = mapped_column(Boolean)
    #: Facts from step 1 that exports and filters need without parsing ``probe``:
    #: ``video`` or ``audio``, the SMPTE start timecode, the nominal rate (``num/den``), the reel.
    media_kind: Mapped[str | None] = mapped_column(String(10))
    start_timecode: Mapped[str | None] = mapped_column(String(16))
    drop_frame: Mapped[bool | None] = mapped_column(Boolean)
    nominal_fps: Mapped[str | None] = mapped_column(String(24))
    reel: Mapped[str | None] = mapped_column(String(120))
    #: The source as step 1 saw it: size, mtime_ns and a hash of its head and tail.
    source_fingerprint: Mapped[dict[str, Any] | None]
    #: The last failure: step, type, message, attempt, traceback, at.
    error: Mapped[dict[str, Any] | None]
    dead_lettered: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Its messages were purged: discovery leaves it alone until someone queues it again.
    purged: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Bumped by every status change; lets readers detect a concurrent change.
    version: Mapped[int] = mapped_column(Integer, default=0)
    #: The fencing token of the step run that holds the item: set when a delivery starts
    #: the step; writes of any other run are refused (``autolog.store.fencing``).
    run_token: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class TimelineEvent(Base):
    """One thing that happened to an item: a message queued, started, failed; a status change."""

    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_item_at", "item_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event: Mapped[str] = mapped_column(String(20))
    step: Mapped[str | None] = mapped_column(String(20))
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    attempt: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(200))
    wait_ms: Mapped[int | None] = mapped_column(Integer)
    run_ms: Mapped[int | None] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(40))
    to_status: Mapped[str | None] = mapped_column(String(40))
    error_type: Mapped[str | None] = mapped_column(String(120))
    error_message: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]


class Artifact(Base):
    """A file a step wrote for an item: poster, contact sheet, sampled frame."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("item_id", "kind", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(Text)


class Scene(Base):
    """A shot found by step 3, with the time of its representative frame."""

    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    sample_s: Mapped[float] = mapped_column(Float)
    image_path: Mapped[str] = mapped_column(Text)


class Analysis(Base):
    """Step 4's result for an item: one analyzer run over its sampled frames."""

    __tablename__ = "analyses"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    prompt: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]]
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Frame(Base):
    """Step 5's record of one sampled frame: timecode, image, description, keywords, speech."""

    __tablename__ = "frames"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float] = mapped_column(Float)
    timecode: Mapped[str] = mapped_column(String(16))
    image_path: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[Any]]
    analysis: Mapped[dict[str, Any]]
    transcript: Mapped[str | None] = mapped_column(Text)


class TranscriptSegment(Base):
    """Step 6's output: a stretch of speech with its start and end."""

    __tablename__ = "transcript_segments"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)


class StatusCountChange(Base):
    """A change to the number of items at one status: ``+1`` as an item enters it, ``-1`` as it leaves.

    Written only by the triggers of migration 0008, in the writer's transaction; the counts
    are the sums per status, folded into one row per status by ``Items.fold_status_counts``.
    """

    __tablename__ = "status_count_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(64))
    change: Mapped[int] = mapped_column(Integer)


class OutboxMessage(Base):
    """A message committed with the change that calls for it, waiting to be sent to the broker.

    Written in the same transaction as the status (or the item) it follows from, so a crash
    or a broker outage after the commit leaves the message here, not lost. The writer holds
    a lease on its rows and sends them right after the commit; a relay sends whatever
    outlives its lease (``autolog.store.outbox``).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: The broker message's id. Redis would keep a second copy of it as a message of its own, so a
    #: relay sends a row again only if Redis no longer holds that id (``relay_outbox``).
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    queue_name: Mapped[str] = mapped_column(String(100))
    #: The message as the broker encodes it (``dramatiq.Message.asdict()``).
    message: Mapped[dict[str, Any]]
    delay_ms: Mapped[int | None] = mapped_column(Integer)
    #: Until when (seconds since the epoch) the row's claimant may send it before others may.
    lease_until_s: Mapped[float] = mapped_column(Float, index=True)
    #: Who holds the lease: a random token per claim.
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
