"""Which items an export holds: ids, status, text and rate filters, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from autolog.errors import InvalidItemId, ItemNotFound
from autolog.exports import (
    InvalidExportOption,
    ItemsNotLogged,
    Selection,
    UnknownExportFormat,
    export_item,
    export_selection,
    iter_selection,
)
from autolog.exports.records import plan_selection
from autolog.statuses import Status
from autolog.store import NewItem, Store
from tests.unit.exports.logged import Clip, log_clip


def selected(store: Store, selection: Selection, *, page_size: int = 500) -> list[str]:
    return [logged.item.id for logged in iter_selection(store, selection, page_size=page_size)]


@pytest.fixture
def logged_store(store: Store) -> Store:
    """Three logged items, one at 25 fps from an s3 source, and one item still being analysed."""
    log_clip(store, Clip("LF1409"))
    log_clip(store, Clip("LF1410", source="/media/Day 2/Café_Take2.mov"))
    log_clip(store, Clip("MX-25", rate="25", start_timecode="10:00:00:00", source="s3://rushes/MX-25.mxf"))
    log_clip(store, Clip("WIP1"), status=Status.PROCESSING_FRAME_INFO)
    return store


def test_the_default_selection_is_every_logged_item_in_id_order(logged_store: Store) -> None:
    assert selected(logged_store, Selection(), page_size=2) == ["LF1409", "LF1410", "MX-25"]


def test_text_searches_ids_and_sources_whatever_their_case(logged_store: Store) -> None:
    assert selected(logged_store, Selection.parse(text="lf14")) == ["LF1409", "LF1410"]
    assert selected(logged_store, Selection.parse(text="café_take")) == ["LF1410"]
    assert selected(logged_store, Selection.parse(text="S3://RUSHES")) == ["MX-25"]
    assert selected(logged_store, Selection.parse(text="100%_")) == []


def test_ids_status_and_rate_narrow_the_selection(logged_store: Store) -> None:
    assert selected(logged_store, Selection.parse(ids=["MX-25", "LF1409"])) == ["LF1409", "MX-25"]
    assert selected(logged_store, Selection.parse(status=Status.AVID_DESCRIPTION.value, fps="29.97")) == [
        "LF1409", "LF1410"]
    assert selected(logged_store, Selection.parse(fps="25/1")) == ["MX-25"]


def test_filters_narrow_the_ids_given_without_calling_an_item_missing(logged_store: Store) -> None:
    # Given two logged items by id, one at 25 fps, and a rate or a search only one of them matches
    both = ["LF1409", "MX-25"]

    assert selected(logged_store, Selection.parse(ids=both, fps="25")) == ["MX-25"]
    assert plan_selection(logged_store, Selection.parse(ids=both, fps="25")).count == 1
    assert export_selection(logged_store, Selection.parse(ids=both, text="zzzz"), "csv").items == 0


def test_a_named_item_not_logged_is_refused_whatever_the_other_filters(logged_store: Store) -> None:
    # An item still at step 1 has no rate yet: a rate filter alone would have dropped it without a word
    logged_store.items.create([NewItem("FRESH", "/media/FRESH.mov")])

    with pytest.raises(ItemsNotLogged, match="'FRESH' is at '0 - Pending File Info'"):
        export_selection(logged_store, Selection.parse(ids=["MX-25", "FRESH"], fps="25"), "ale")


def test_a_status_is_named_as_the_listing_names_it(logged_store: Store) -> None:
    # The API's /items?status= and the CLI's --status take a number, a label or a prefix of one
    for spelling in ("7", "Avid Description", "avid", Status.AVID_DESCRIPTION.value):
        assert Selection.parse(status=spelling).status is Status.AVID_DESCRIPTION


def test_an_item_named_by_id_must_be_logged(logged_store: Store) -> None:
    with pytest.raises(ItemsNotLogged) as refused:
        export_selection(logged_store, Selection.parse(ids=["LF1409", "WIP1"]), "ale")

    assert refused.value.statuses == {"WIP1": Status.PROCESSING_FRAME_INFO.value}
    assert "'WIP1' is at '5 - Processing Frame Info'" in str(refused.value)


def test_a_status_before_the_end_is_refused_by_its_items(logged_store: Store) -> None:
    with pytest.raises(ItemsNotLogged, match="WIP1"):
        export_selection(logged_store, Selection.parse(status=Status.PROCESSING_FRAME_INFO.value), "csv")


def test_an_unknown_id_is_not_found(logged_store: Store) -> None:
    with pytest.raises(ItemNotFound, match="NOPE"):
        export_selection(logged_store, Selection.parse(ids=["LF1409", "NOPE"]), "csv")


def test_an_item_export_of_an_item_still_in_the_pipeline_names_its_status(logged_store: Store) -> None:
    logged_store.items.create([NewItem("NEW1", "/media/NEW1.mov")])

    with pytest.raises(ItemsNotLogged, match="'NEW1' is at '0 - Pending File Info'"):
        export_item(logged_store, "NEW1", "srt")


@pytest.mark.parametrize(("values", "error"), [
    ({"ids": ["../x"]}, InvalidItemId),
    ({"ids": [f"I{number}" for number in range(1001)]}, InvalidExportOption),
    ({"status": "8 - Done"}, InvalidExportOption),
    ({"status": "9"}, InvalidExportOption),
    ({"fps": "fast"}, InvalidExportOption),
    ({"fps": "-25"}, InvalidExportOption),
])
def test_malformed_filters_are_refused(values: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Selection.parse(**values)  # type: ignore[arg-type]


def test_formats_of_one_item_are_not_selection_formats(logged_store: Store) -> None:
    with pytest.raises(UnknownExportFormat, match="no selection export format 'edl'; formats: ale, csv"):
        export_selection(logged_store, Selection(), "edl")
    with pytest.raises(UnknownExportFormat, match="formats: ale, markers, edl, fcp7xml, srt, vtt, csv"):
        export_item(logged_store, "LF1409", "docx")
