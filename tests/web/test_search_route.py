"""``GET /items?q=`` and ``GET /exports/{format}?q=``: search through the API, on real Redis and SQLite."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient

from autolog.statuses import Status
from autolog.store import Store
from tests.search_items import FILLER, log_item


@pytest.fixture
def logged(sqlite_store: Store) -> Store:
    """The filler items and two logged items about gulls, one of them also in its speech."""
    for number, (description, words) in enumerate(FILLER):
        log_item(sqlite_store, f"FILL{number}", descriptions=[description], speech=[(0.5, words)])
    log_item(sqlite_store, "GULL1", descriptions=["a gull on a post", "the pier at low tide"],
             speech=[(2.5, "that gull stole my chips")], status=Status.AVID_DESCRIPTION)
    log_item(sqlite_store, "GULL2", descriptions=["gulls over a trawler"], speech=[(0.5, "engine noise")],
             status=Status.PROCESSING_FRAME_INFO)
    return sqlite_store


def test_a_search_answers_the_hits_best_first_with_their_context(client: TestClient, logged: Store) -> None:
    result = client.simulate_get("/items", params={"q": "chips"})

    assert result.status_code == 200
    assert result.json == {
        "query": "chips", "total": 1, "limit": 20, "offset": 0, "next_offset": None,
        "hits": [{
            "item_id": "GULL1", "status": Status.AVID_DESCRIPTION.value, "source": "/media/GULL1.mov",
            "rank": result.json["hits"][0]["rank"], "matches": 1, "field": "transcript",
            "snippet": [{"text": "that gull stole my ", "hit": False}, {"text": "chips", "hit": True}],
            "frame": 1, "time_s": 2.5, "timecode": "01:00:02:12", "media_kind": None,
        }],
    }


def test_a_search_pages_by_offset_and_filters_by_status(client: TestClient, logged: Store) -> None:
    first = client.simulate_get("/items", params={"q": "gull", "limit": "1"}).json
    second = client.simulate_get("/items", params={"q": "gull", "limit": "1", "offset": "1"}).json
    logged_only = client.simulate_get("/items", params={"q": "gull", "status": Status.AVID_DESCRIPTION.value}).json

    assert (first["total"], second["total"]) == (2, 2)
    assert [hit["item_id"] for hit in first["hits"] + second["hits"]] == ["GULL1", "GULL2"]
    assert (first["next_offset"], second["next_offset"]) == (1, None)
    assert [hit["item_id"] for hit in logged_only["hits"]] == ["GULL1"]


@pytest.mark.parametrize("query_string", ["q=", "q=%20%20", "q=%09"])
def test_a_blank_query_is_400_saying_so(client: TestClient, logged: Store, query_string: str) -> None:
    result = client.simulate_get("/items", query_string=query_string)

    assert result.status_code == 400
    assert "blank" in result.json["description"]


@pytest.mark.parametrize("query_string, field", [
    ("q=gull&cursor=GULL1", "cursor"), ("q=gull&updated_after=2026-01-01T00:00:00", "updated_after"),
    ("offset=5", "offset"), ("q=gull&offset=-1", "offset"), ("q=gull&limit=0", "limit"), ("q=a&q=b", "q"),
])
def test_listing_and_search_options_are_not_mixed(client: TestClient, logged: Store, query_string: str,
                                                  field: str) -> None:
    result = client.simulate_get("/items", query_string=query_string)

    assert result.status_code == 400
    assert field in result.json["description"] or field in result.json["title"]


@pytest.mark.parametrize("query", ['"', "NEAR(gull post)", "-gull", "gull*", "(gull", "q:gull", "AND OR", "😀"])
def test_search_syntax_in_q_is_never_a_server_error(client: TestClient, logged: Store, query: str) -> None:
    result = client.simulate_get("/items", params={"q": query})

    assert result.status_code == 200
    assert result.json["total"] == len(result.json["hits"])


def test_without_q_the_listing_is_unchanged(client: TestClient, logged: Store) -> None:
    result = client.simulate_get("/items", params={"limit": "2"})

    assert [item["id"] for item in result.json["items"]] == ["FILL0", "FILL1"]
    assert result.json["next_cursor"] == "FILL1"


def test_a_search_needs_an_api_key(anonymous: TestClient, logged: Store) -> None:
    result = anonymous.simulate_get("/items", params={"q": "gull"})

    assert result.status_code == 401
    assert "GULL1" not in result.text


def test_a_selection_export_keeps_the_items_the_search_matches(client: TestClient, logged: Store) -> None:
    matched = client.simulate_get("/exports/csv", params={"q": "stole chips"})
    unmatched = client.simulate_get("/exports/csv", params={"q": "albatross"})
    too_many = client.simulate_get("/exports/csv", params={"q": " ".join(["w"] * 13)})

    assert (matched.status_code, matched.headers["X-Export-Items"]) == (200, "1")
    assert "GULL1" in matched.text and "FILL0" not in matched.text
    assert (unmatched.status_code, unmatched.headers["X-Export-Items"]) == (200, "0")
    assert too_many.status_code == 400
