"""Fenced writes against SQLite and PostgreSQL: only the run that holds an item stores its work."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from autolog.errors import StaleRun
from autolog.statuses import Status
from autolog.store import NewEvent, NewItem, RunFence, SceneView, Store


def started(item_id: str, token: str) -> NewEvent:
    return NewEvent(item_id=item_id, event="started", step="assess", detail={"run": token})


def scene(path: str) -> SceneView:
    return SceneView(position=0, start_s=0.0, end_s=1.0, sample_s=0.5, image_path=path)


@pytest.fixture
def assessing(store: Store) -> Store:
    """An item at ``2 - Thumbnails Complete``, where step 3 runs from."""
    store.items.create([NewItem("LF1", "/a")])
    store.items.transition("LF1", Status.PENDING_FILE_INFO, Status.THUMBNAILS_COMPLETE)
    return store


def test_a_superseded_run_stores_nothing_and_cannot_move_the_item(assessing: Store) -> None:
    # Given a run of step 3, then a newer delivery of the same step taking the item over
    assert assessing.items.start_run("LF1", Status.THUMBNAILS_COMPLETE, "old", event=started("LF1", "old"))
    old = assessing.fenced(RunFence("LF1", "old", Status.THUMBNAILS_COMPLETE))
    assert assessing.items.start_run("LF1", Status.THUMBNAILS_COMPLETE, "new", event=started("LF1", "new"))
    new = assessing.fenced(RunFence("LF1", "new", Status.THUMBNAILS_COMPLETE))
    new.results.save_scenes("LF1", [scene("/art/LF1/assess-new/0.jpg")])

    # When the old run saves its work and its status
    with pytest.raises(StaleRun):
        old.results.save_scenes("LF1", [scene("/art/LF1/assess-old/0.jpg")])
    with pytest.raises(StaleRun):
        old.items.update("LF1", error={"message": "stale failure"})
    moved = old.items.transition("LF1", Status.THUMBNAILS_COMPLETE, Status.CREATING_FRAMES)

    # Then nothing of it is stored, and the current run still can
    assert moved is False
    assert [row.image_path for row in assessing.results.scenes("LF1")] == ["/art/LF1/assess-new/0.jpg"]
    assert assessing.items.get("LF1").error is None
    assert new.items.transition("LF1", Status.THUMBNAILS_COMPLETE, Status.CREATING_FRAMES) is True


def test_a_run_whose_item_moved_on_stores_nothing(assessing: Store) -> None:
    assessing.items.start_run("LF1", Status.THUMBNAILS_COMPLETE, "run", event=started("LF1", "run"))
    run = assessing.fenced(RunFence("LF1", "run", Status.THUMBNAILS_COMPLETE))
    assessing.items.transition("LF1", Status.THUMBNAILS_COMPLETE, Status.AWAITING_USER_INPUT)

    with pytest.raises(StaleRun):
        run.results.save_scenes("LF1", [scene("/late.jpg")])

    assert assessing.results.scenes("LF1") == []


def test_a_run_starts_only_from_the_steps_status_and_not_for_a_cancelled_item(assessing: Store) -> None:
    assert not assessing.items.start_run("LF1", Status.PENDING_FILE_INFO, "t1", event=started("LF1", "t1"))
    assessing.items.update("LF1", cancelled=True)
    assert not assessing.items.start_run("LF1", Status.THUMBNAILS_COMPLETE, "t2", event=started("LF1", "t2"))
    assert not assessing.items.start_run("nope", Status.THUMBNAILS_COMPLETE, "t3", event=started("nope", "t3"))

    assert [event.event for event in assessing.timeline.for_item("LF1")] == ["created", "transition"]


def test_a_fence_leaves_other_items_writes_alone(assessing: Store) -> None:
    assessing.items.create([NewItem("LF2", "/b")])
    fenced = assessing.fenced(RunFence("LF1", "gone", Status.THUMBNAILS_COMPLETE))

    fenced.results.save_artifacts("LF2", "poster", ["/p.jpg"])

    assert [artifact.path for artifact in assessing.results.artifacts("LF2")] == ["/p.jpg"]


def test_migration_0006_matches_the_run_token_column(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from autolog.store.models import Base

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert [diff for diff in differences if "run_token" in repr(diff)] == []


def test_a_run_reads_its_item_as_its_start_left_it_without_a_read_until_it_writes(assessing: Store) -> None:
    # Given an item with file info, and a run of step 3 that took it
    assessing.items.update("LF1", probe={"duration_s": 2.0}, prompt="describe", reel="A001")
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(assessing.engine, "before_cursor_execute", seen)
    try:
        assert assessing.items.start_run("LF1", Status.THUMBNAILS_COMPLETE, "run", event=started("LF1", "run"))
        run = assessing.fenced(RunFence("LF1", "run", Status.THUMBNAILS_COMPLETE))
        statements.clear()

        # When the step reads its item, Then it gets the row as stored, with no statement of its own
        view = run.items.get("LF1")
        assert statements == []
        assert view == assessing.items.get("LF1")
        assert (view.probe, view.prompt, view.reel, view.status) == (
            {"duration_s": 2.0}, "describe", "A001", Status.THUMBNAILS_COMPLETE)

        # And after a write of the run, or for another run's fence, it reads the store again
        run.items.update("LF1", reel="A002")
        assert run.items.get("LF1").reel == "A002"
        assert assessing.items.start_run("LF1", Status.THUMBNAILS_COMPLETE, "next", event=started("LF1", "next"))
        assessing.items.update("LF1", prompt="changed")
        statements.clear()
        assert run.items.get("LF1").prompt == "changed"
        assert statements
    finally:
        event.remove(assessing.engine, "before_cursor_execute", seen)
