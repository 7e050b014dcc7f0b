"""Full-text search in the store, on SQLite (FTS5) and PostgreSQL (tsvector): ranking, paging, fields, upkeep."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from autolog.errors import InvalidSearchQuery
from autolog.statuses import Status
from autolog.store import FrameView, SearchField, SegmentView, Store
from autolog.store.engine import alembic_config
from tests.conftest import POSTGRES_ADMIN_URL
from tests.old_schema import store_at_revision
from tests.search_items import FILLER, log_item


@pytest.fixture
def filled(store: Store) -> Store:
    """A store with the filler items."""
    for number, (description, words) in enumerate(FILLER):
        log_item(store, f"FILL{number}", descriptions=[description], speech=[(0.5, words)])
    return store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def query_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store per database for the module's read-only queries, holding one item in several scripts."""
    name = f"autolog_test_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'autolog.db'}"
    else:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    store = Store.open(url)
    log_item(store, "KITE", descriptions=["a red kite, 東京タワー, café"], speech=[(0.5, "Москва ½ ǅ x² ٣")])
    yield store
    store.close()
    if request.param == "postgresql":
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ids(store: Store, query: str, **options: object) -> list[str]:
    return [hit.item_id for hit in store.search.search(query, **options).hits]  # type: ignore[arg-type]


def test_an_item_holding_the_word_in_two_places_ranks_above_one_holding_it_once(filled: Store) -> None:
    log_item(filled, "ONCE", descriptions=["a red kite over the dunes"], speech=[(0.5, "look at that")])
    log_item(filled, "TWICE", descriptions=["a red kite over the dunes"], speech=[(0.5, "the kite is up")])

    page = filled.search.search("kite")

    assert [hit.item_id for hit in page.hits] == ["TWICE", "ONCE"]
    assert [hit.matches for hit in page.hits] == [2, 1]
    assert page.hits[0].rank > page.hits[1].rank > 0


def test_a_word_only_in_a_description_and_one_only_in_a_transcript_report_their_field_and_frame(
        filled: Store) -> None:
    log_item(filled, "BEACH", descriptions=["waves on a pebble beach", "a lighthouse on the cliff"],
             keywords=[["sea"], ["lighthouse", "cliff"]], speech=[(0.2, "it is windy"), (2.5, "the ferry leaves soon")])

    described = filled.search.search("lighthouse").hits
    spoken = filled.search.search("ferry").hits

    assert [(hit.item_id, hit.field, hit.frame, hit.time_s, hit.timecode) for hit in described] == [
        ("BEACH", SearchField.DESCRIPTION, 1, 3.0, "01:00:03:00")]
    assert [(part.text, part.hit) for part in described[0].snippet if part.hit] == [("lighthouse", True)]
    assert described[0].marked() == "a [lighthouse] on the cliff"
    # The speech starts at 2.5 s, in the second shot (2-4 s); 62.5 frames at 25 fps is frame 62 (the earlier).
    assert [(hit.item_id, hit.field, hit.frame, hit.time_s, hit.timecode) for hit in spoken] == [
        ("BEACH", SearchField.TRANSCRIPT, 1, 2.5, "01:00:02:12")]
    assert spoken[0].marked() == "the [ferry] leaves soon"


def test_keywords_ids_and_sources_are_searched(filled: Store) -> None:
    log_item(filled, "A001C003-7f3e", descriptions=["an empty room"], keywords=[["interior", "furniture"]],
             source="/cards/Day 2/A001C003_Take.MXF")

    assert [(hit.item_id, hit.field) for hit in filled.search.search("furniture").hits] == [
        ("A001C003-7f3e", SearchField.KEYWORDS)]
    assert [(hit.item_id, hit.field) for hit in filled.search.search("A001C003-7f3e").hits] == [
        ("A001C003-7f3e", SearchField.ID)]
    assert [(hit.item_id, hit.field) for hit in filled.search.search("take mxf").hits] == [
        ("A001C003-7f3e", SearchField.SOURCE)]


def test_every_word_must_be_in_the_item_but_not_in_the_same_field(filled: Store) -> None:
    log_item(filled, "HARBOUR", descriptions=["fishing boats in the harbour"], speech=[(0.5, "nets are drying")])
    log_item(filled, "BOATS", descriptions=["boats on a lake"])

    assert ids(filled, "harbour nets") == ["HARBOUR"]
    assert sorted(ids(filled, "boats")) == ["BOATS", "HARBOUR"]
    assert ids(filled, "boats nets") == ["HARBOUR"]
    assert ids(filled, "boats zebra") == []


def test_a_quoted_phrase_needs_its_words_in_order(filled: Store) -> None:
    log_item(filled, "KITE", descriptions=["a red kite"])
    log_item(filled, "ROSE", descriptions=["a kite and a red rose"])

    assert ids(filled, '"red kite"') == ["KITE"]
    assert sorted(ids(filled, "red kite")) == ["KITE", "ROSE"]


def test_the_last_word_and_a_starred_word_match_as_prefixes(filled: Store) -> None:
    log_item(filled, "LIGHT", descriptions=["a lighthouse beam at night"])

    assert ids(filled, "lighth") == ["LIGHT"]
    assert ids(filled, "lighth ") == []
    assert ids(filled, "lig* beam") == ["LIGHT"]
    assert ids(filled, '"a lighth"') == []


def test_paging_covers_every_match_once_with_the_total_on_each_page(filled: Store) -> None:
    for number in range(23):
        log_item(filled, f"SNOW{number:02d}", descriptions=[f"snow on the roofs {'and snow ' * (number % 4)}"])

    pages = [filled.search.search("snow", limit=10, offset=offset) for offset in (0, 10, 20, 30)]

    assert [page.total for page in pages] == [23, 23, 23, 23]
    assert [len(page.hits) for page in pages] == [10, 10, 3, 0]
    assert [page.next_offset for page in pages] == [10, 20, None, None]
    seen = [hit.item_id for page in pages for hit in page.hits]
    assert sorted(seen) == [f"SNOW{number:02d}" for number in range(23)]
    ranks = [hit.rank for page in pages for hit in page.hits]
    assert ranks == sorted(ranks, reverse=True)


def test_the_status_filter_narrows_matches_and_their_total(filled: Store) -> None:
    log_item(filled, "DONE", descriptions=["a tram in the rain"], status=Status.AVID_DESCRIPTION)
    log_item(filled, "WIP", descriptions=["a tram at night"], status=Status.PROCESSING_FRAME_INFO)

    page = filled.search.search("tram", status=Status.AVID_DESCRIPTION)

    assert (page.total, [hit.item_id for hit in page.hits]) == (1, ["DONE"])
    assert page.hits[0].status is Status.AVID_DESCRIPTION
    assert filled.search.search("tram").total == 2


def test_case_accents_and_other_scripts_match(filled: Store) -> None:
    log_item(filled, "PARIS", descriptions=["Un café près de l'Opéra"], speech=[(0.5, "Déjà vu, Москва")])
    log_item(filled, "TOKYO", descriptions=["東京タワー の 夜景"], source="/media/Ünïcode/東京.mov")

    assert ids(filled, "CAFE") == ["PARIS"]
    assert ids(filled, "opera") == ["PARIS"]
    assert ids(filled, "deja vu") == ["PARIS"]
    assert ids(filled, "МОСКВА") == ["PARIS"]
    assert ids(filled, "東京タワー") == ["TOKYO"]
    assert ids(filled, "東京") == ["TOKYO"]
    assert ids(filled, "unicode") == ["TOKYO"]
    spoken = filled.search.search("москва").hits[0]
    assert [part.text for part in spoken.snippet if part.hit] == ["Москва"]


def test_a_blank_query_is_refused_with_a_reason(filled: Store) -> None:
    for query in ("", "   ", "\t\n"):
        with pytest.raises(InvalidSearchQuery, match="blank"):
            filled.search.search(query)


def test_a_query_too_long_or_with_too_many_words_is_refused_with_a_reason(filled: Store) -> None:
    with pytest.raises(InvalidSearchQuery, match="characters"):
        filled.search.search("kite " * 200)
    with pytest.raises(InvalidSearchQuery, match="words or phrases"):
        filled.search.search(" ".join(f"w{number}" for number in range(13)))


@pytest.mark.parametrize("query", [
    '"', '""', '"red', 'red"kite', "*", "kite*", "**kite", "NEAR(red kite)", "NEAR", "red NEAR kite", "-kite",
    "red -kite", "(kite", "kite)", "description:kite", "ident:KITE", ":", "kite AND OR NOT", "AND", "OR NOT",
    "^kite", "kite + red", "{kite}", "'kite'", "kite's", "\\kite", "%kite%", "_", "kite\x00",
    "k'); DROP TABLE items;--", "a" * 400, "😀 kite", "\u200bkite", "kite:*", "kite <-> red", "!kite",
    "kite & red | rose",
])
def test_search_syntax_in_a_query_is_plain_text_and_never_an_error(query_store: Store, query: str) -> None:
    page = query_store.search.search(query)

    assert page.total == len(page.hits)
    assert {hit.item_id for hit in page.hits} <= {"KITE"}
    assert query_store.items.get("KITE").id == "KITE"


def test_operator_words_match_as_words(filled: Store) -> None:
    log_item(filled, "NEAR", descriptions=["a boat near the shore or the pier"])

    assert ids(filled, "NEAR(the shore)") == ["NEAR"]
    assert ids(filled, "shore OR pier") == ["NEAR"]
    assert ids(filled, "-shore") == ["NEAR"]
    assert ids(filled, "boat:near") == ["NEAR"]


def test_the_index_follows_steps_rewriting_frames_and_transcripts(filled: Store) -> None:
    log_item(filled, "REDO", descriptions=["a kite on the beach"], speech=[(0.5, "hold the string")])
    assert ids(filled, "kite") == ["REDO"]

    filled.results.save_frames("REDO", [FrameView(
        position=0, time_s=1.0, timecode="01:00:01:00", image_path="x.jpg", description="a glider over the hill",
        keywords=["glider"], analysis={}, transcript=None)])
    filled.results.save_transcript("REDO", [SegmentView(position=0, start_s=0.5, end_s=1.0, text="let it go")],
                                   {0: "let it go"})

    assert ids(filled, "kite") == []
    assert ids(filled, "string") == []
    assert ids(filled, "glider") == ["REDO"]
    assert ids(filled, "let go") == ["REDO"]

    filled.results.save_frames("REDO", [])
    filled.results.save_transcript("REDO", [], {})
    assert ids(filled, "glider") == []
    assert ids(filled, "let go") == []


def test_the_index_follows_a_changed_source_and_a_deleted_item(filled: Store) -> None:
    log_item(filled, "MOVED", descriptions=["a quiet lane"], source="/media/old_name.mov")

    filled.items.update("MOVED", source="/media/new_name.mov")
    assert ids(filled, "old_name") == []
    assert ids(filled, "new_name") == ["MOVED"]

    with filled.engine.begin() as connection:
        connection.execute(text("DELETE FROM items WHERE id = 'MOVED'"))
    assert ids(filled, "lane") == []
    assert ids(filled, "MOVED") == []
    with filled.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM search_entries WHERE item_id = 'MOVED'")).scalar() == 0


def test_exports_select_items_with_the_same_search(filled: Store) -> None:
    log_item(filled, "GULL", descriptions=["a gull on a post"], status=Status.AVID_DESCRIPTION)
    log_item(filled, "CROW", descriptions=["a crow on a wire"], status=Status.AVID_DESCRIPTION)

    from autolog.exports import Selection, iter_selection

    chosen = [logged.item.id for logged in iter_selection(filled, Selection.parse(text="gull post"))]

    assert chosen == ["GULL"]


def insert_old_rows(connection: Connection, item_id: str, *, description: str, keywords: str = "[]",
                    speech: str | None = None) -> None:
    """Insert an item with one frame record (and speech) by SQL that an older schema takes, bypassing the models."""
    connection.execute(text(
        "INSERT INTO items (id, source, status, force_resume, dead_lettered, cancelled, version, created_at,"
        " updated_at) VALUES (:id, '/media/old.mov', '7 - Avid Description', FALSE, FALSE, FALSE, 0,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": item_id})
    connection.execute(text(
        "INSERT INTO frames (item_id, position, time_s, timecode, image_path, description, keywords, analysis)"
        " VALUES (:id, 0, 1.0, '00:00:01:00', 'x.jpg', :description, :keywords, '{}')"),
        {"id": item_id, "description": description, "keywords": keywords})
    if speech is not None:
        connection.execute(text(
            "INSERT INTO transcript_segments (item_id, position, start_s, end_s, text)"
            " VALUES (:id, 0, 0.0, 1.0, :speech)"), {"id": item_id, "speech": speech})


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_migration_indexes_rows_written_before_it(request: pytest.FixtureRequest, tmp_path: Path,
                                                      database: str) -> None:
    with store_at_revision(request, tmp_path, database, "0003") as (url, connection):
        insert_old_rows(connection, "OLD1", description="a windmill turning", keywords='["mill"]',
                        speech="the sails creak")

    store = Store.open(url)
    try:
        assert [(hit.item_id, hit.field) for hit in store.search.search("windmill").hits] == [
            ("OLD1", SearchField.DESCRIPTION)]
        assert [hit.field for hit in store.search.search("mill").hits] == [SearchField.KEYWORDS]
        assert [hit.field for hit in store.search.search("creak").hits] == [SearchField.TRANSCRIPT]
    finally:
        store.close()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(query=st.text(max_size=60))
def test_any_text_is_a_query_or_a_clear_refusal(query_store: Store, query: str) -> None:
    try:
        page = query_store.search.search(query)
    except InvalidSearchQuery as ex:
        assert not query.strip() or len(query) > 500 or "words or phrases" in str(ex)
        return
    assert page.total == len(page.hits) <= 1


def test_the_migration_goes_down_and_up_again(store: Store) -> None:
    # NOTE(search): down to 0004 with no rows: 0006's SQLite downgrade rebuilds ``items`` with foreign keys on.
    config = alembic_config()

    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        insert_old_rows(connection, "BETWEEN", description="a stone wall")
    with store.engine.connect() as connection:
        tables = {row[0] for row in connection.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if store.engine.dialect.name == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
    assert not {"search_entries", "search_fts"} & tables
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    assert ids(store, "stone") == ["BETWEEN"]


def test_the_index_triggers_exist_at_the_newest_schema(store: Store) -> None:
    # A later SQLite migration that rebuilds one of these tables (batch mode) drops its triggers: it must recreate them.
    query = ("SELECT name FROM sqlite_master WHERE type = 'trigger'" if store.engine.dialect.name == "sqlite"
             else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    with store.engine.connect() as connection:
        triggers = {row[0] for row in connection.execute(text(query))}

    if store.engine.dialect.name == "sqlite":
        expected = {f"search_{table}_{change}" for table in ("items", "frames", "transcript_segments", "entries")
                    for change in ("ai", "ad", "au")}
    else:
        expected = {"search_items", "search_frames", "search_transcript_segments", "search_entries_document"}
    assert expected <= triggers


def test_without_unaccent_postgresql_search_works_and_accents_must_match(postgres_url: str) -> None:
    # Given a role that owns its tables but may not create extensions in the database
    role = f"autolog_plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC')
        owner.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
        owner.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
    url = postgres_url.replace("postgresql://postgres@", f"postgresql+psycopg://{role}@")
    try:
        # When it migrates the schema and items are logged
        store = Store.open(url)
        try:
            log_item(store, "PARIS", descriptions=["un café près de l'Opéra"])

            # Then search works, without folding accents
            assert ids(store, "café") == ["PARIS"]
            assert ids(store, "opéra") == ["PARIS"]
            assert ids(store, "cafe") == []
        finally:
            store.close()
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
