"""Full-text search over items: ids, sources, frame records and transcripts, ranked and paged.

The index is ``search_entries`` (migration ``0005``): one entry per item name (id and
source), per frame record (description and keywords) and per transcript segment, written by
database triggers in the same transaction as the rows they index. SQLite searches it with
FTS5 (``bm25``, ``snippet``), PostgreSQL with a ``tsvector`` GIN index (``ts_rank_cd``,
``ts_headline``). :mod:`autolog.store.search_query` says how typed text becomes terms.

Ranking: an item's rank is the sum, over every term and every entry of the item that holds
the term, of that entry's relevance to the term (FTS5 ``-bm25``, or ``ts_rank_cd``), with a
match in the id weighing most, then the source, the keywords, and the description or the
transcript. So an item that holds a word in two places ranks above one that holds it once
in a like field. Ties go by the number of matches, then by item id.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import String, TextualSelect, bindparam, text
from sqlalchemy.orm import Session, sessionmaker

from autolog.media.timecode import frame_timecode
from autolog.statuses import Status
from autolog.store.search_query import SearchTerm, parse_query


class SearchField(enum.StrEnum):
    """Where in an item a search hit was found."""

    ID = "id"
    SOURCE = "source"
    DESCRIPTION = "description"
    KEYWORDS = "keywords"
    TRANSCRIPT = "transcript"


#: Each ``search_entries`` text column, in FTS5 column order, and the field it holds.
_COLUMNS: tuple[tuple[str, SearchField], ...] = (
    ("ident", SearchField.ID), ("source", SearchField.SOURCE), ("description", SearchField.DESCRIPTION),
    ("keywords", SearchField.KEYWORDS), ("transcript", SearchField.TRANSCRIPT),
)

#: FTS5 ``bm25`` weight of each column, in column order; mirrors PostgreSQL's weights below.
_BM25_WEIGHTS = "2.5, 2.0, 1.0, 1.5, 1.0"

#: ``ts_rank_cd`` weights of the ``D, C, B, A`` labels: description and transcript (D),
#: keywords (C), source (B), id (A).
_TS_RANK_WEIGHTS = "'{0.4, 0.6, 0.8, 1.0}'"

#: What marks a hit in a snippet as the databases write it; control characters no footage text holds.
_HIT_START, _HIT_END = "\x02", "\x03"

#: How many words a snippet shows around its hits.
SNIPPET_WORDS = 16


@dataclass(frozen=True)
class SnippetPart:
    """A piece of a snippet: text, and whether it is (part of) a hit."""

    text: str
    hit: bool


@dataclass(frozen=True)
class SearchHit:
    """One item that matches a query, with where it matched best.

    Attributes:
        item_id, status, source: the item.
        media_kind: the item's, once step 1 has found it: ``video``, or ``audio`` for an
            audio-only item (which has no poster or frame images); None before.
        rank: relevance, higher is better; comparable within one query only.
        matches: how many (term, entry) pairs matched: each term counted once per item name,
            frame record and transcript segment that holds it.
        field: the field of the best match; ``snippet`` is from that field.
        snippet: the text around the hit, hits marked; ``…`` where text was left out.
        frame: the frame record's position (its index in the item), for a description or
            keywords hit, or for a transcript hit the frame record whose shot the speech
            starts in; None for an id or source hit, or speech in an item with no frames.
        time_s: clip time of that frame (description, keywords) or of the speech's start (transcript).
        timecode: the source timecode at ``time_s``, when the item's timecode is known.
    """

    item_id: str
    status: Status
    source: str
    rank: float
    matches: int
    field: SearchField
    snippet: tuple[SnippetPart, ...]
    frame: int | None = None
    time_s: float | None = None
    timecode: str | None = None
    media_kind: str | None = None

    def marked(self, start: str = "[", end: str = "]") -> str:
        """Return the snippet as text with each hit between ``start`` and ``end``."""
        return "".join(f"{start}{part.text}{end}" if part.hit else part.text for part in self.snippet)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; ``snippet`` is a list of ``{"text", "hit"}``."""
        return {
            "item_id": self.item_id, "status": self.status.value, "source": self.source,
            "rank": round(self.rank, 6), "matches": self.matches, "field": self.field.value,
            "snippet": [{"text": part.text, "hit": part.hit} for part in self.snippet],
            "frame": self.frame, "time_s": self.time_s, "timecode": self.timecode, "media_kind": self.media_kind,
        }


@dataclass(frozen=True)
class SearchPage:
    """One page of search results, best first.

    Attributes:
        query: the query as given.
        total: how many items match (with the status filter), on every page.
        limit, offset: the page asked for; ``hits`` holds up to ``limit`` items after the first ``offset``.
        hits: the page's items.
    """

    query: str
    total: int
    limit: int
    offset: int
    hits: tuple[SearchHit, ...]

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or None on the last."""
        following = self.offset + len(self.hits)
        return following if self.hits and following < self.total else None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"query": self.query, "total": self.total, "limit": self.limit, "offset": self.offset,
                "next_offset": self.next_offset, "hits": [hit.to_dict() for hit in self.hits]}


class _Dialect(Protocol):
    """The SQL one database needs: term matching with relevance, and snippets."""

    def match_param(self, terms: Sequence[SearchTerm]) -> str:
        """Return the bound value matching any of ``terms``."""

    def term_matches(self, count: int) -> str:
        """Return the common table expressions ``term_hits`` read, each followed by ``, `` (may be empty)."""

    def term_hits(self, index: int) -> str:
        """Return a SELECT of ``item_id, term, relevance, entry`` of the entries matching term ``:t{index}``."""

    def best_entry(self) -> str:
        """Return aggregate select-list items over ``hits`` giving ``best_entry``, the most relevant hit's entry."""

    def snippets(self) -> str:
        """Return a SELECT of ``entry`` and a snippet per text column of the entries ``:entries``, for ``:any``."""

    def clean(self, snippet: str) -> str:
        """Return a snippet as the database wrote it, without what only matching needed."""


class _Sqlite:
    """FTS5: ``bm25`` relevance and ``snippet``."""

    def match_param(self, terms: Sequence[SearchTerm]) -> str:
        return " OR ".join(term.fts5() for term in terms)

    def term_hits(self, index: int) -> str:
        return (f"SELECT e.item_id AS item_id, {index} AS term, found.relevance AS relevance, e.id AS entry"
                f" FROM found{index} AS found JOIN search_entries e ON e.id = found.entry")

    def term_matches(self, count: int) -> str:
        # NOTE(search): bm25() only works where the FTS5 scan drives the query, so each term's
        # matches are read first (a MATERIALIZED CTE is never flattened) and joined to entries after.
        return "".join(
            f"found{index} AS MATERIALIZED (SELECT rowid AS entry, -bm25(search_fts, {_BM25_WEIGHTS}) AS relevance"
            f" FROM search_fts WHERE search_fts MATCH :t{index}), "
            for index in range(count))

    def best_entry(self) -> str:
        # NOTE(search): with exactly one max(), SQLite takes a bare column from the row holding the maximum.
        return "max(relevance) AS best_relevance, entry AS best_entry"

    def clean(self, snippet: str) -> str:
        return snippet

    def snippets(self) -> str:
        columns = ", ".join(
            f"snippet(search_fts, {number}, char(2), char(3), '…', {SNIPPET_WORDS}) AS {name}"
            for number, (name, _field) in enumerate(_COLUMNS))
        return (f"SELECT search_fts.rowid AS entry, {columns} FROM search_fts"
                " WHERE search_fts MATCH :any AND search_fts.rowid IN :entries")


class _Postgres:
    """``tsvector``: ``ts_rank_cd`` relevance and ``ts_headline``."""

    _QUERY = "to_tsquery('autolog_search', :{name})"

    def match_param(self, terms: Sequence[SearchTerm]) -> str:
        return " | ".join(term.tsquery() for term in terms)

    def term_matches(self, count: int) -> str:
        return ""

    def term_hits(self, index: int) -> str:
        query = self._QUERY.format(name=f"t{index}")
        return (f"SELECT e.item_id AS item_id, {index} AS term,"
                f" ts_rank_cd({_TS_RANK_WEIGHTS}, e.document, {query}) AS relevance, e.id AS entry"
                f" FROM search_entries e WHERE e.document @@ {query}")

    def best_entry(self) -> str:
        return "(array_agg(entry ORDER BY relevance DESC, entry))[1] AS best_entry"

    def snippets(self) -> str:
        options = (f"StartSel=\"{_HIT_START}\", StopSel=\"{_HIT_END}\", MaxWords={SNIPPET_WORDS},"
                   " MinWords=6, ShortWord=0, MaxFragments=1, FragmentDelimiter=\" … \"")
        query = self._QUERY.format(name="any")
        columns = ", ".join(
            f"CASE WHEN e.{name} IS NULL THEN '' ELSE ts_headline('autolog_search',"
            f" autolog_search_text(e.{name}), {query}, '{options}') END AS {name}"
            for name, _field in _COLUMNS)
        return f"SELECT e.id AS entry, {columns} FROM search_entries e WHERE e.id IN :entries"

    def clean(self, snippet: str) -> str:
        # NOTE(search): autolog_search_text put a zero-width space after marks that would fuse words.
        return snippet.replace("\u200b", "")


def _parts(snippet: str) -> tuple[SnippetPart, ...]:
    """Split a snippet with hit marks into parts; a snippet without marks is one plain part."""
    parts: list[SnippetPart] = []
    for number, piece in enumerate(snippet.split(_HIT_START)):
        hit, _, rest = piece.partition(_HIT_END) if number else ("", "", piece)
        if hit:
            parts.append(SnippetPart(text=hit, hit=True))
        if rest:
            parts.append(SnippetPart(text=rest, hit=False))
    return tuple(parts)


class Search:
    """Ranked, paged full-text search of items; see the module docstring for the rules."""

    def __init__(self, sessions: sessionmaker[Session], *, dialect: str) -> None:
        self._sessions = sessions
        self._dialect: _Dialect = _Postgres() if dialect == "postgresql" else _Sqlite()

    def search(self, query: str, *, status: Status | None = None, limit: int = 20, offset: int = 0) -> SearchPage:
        """Return the page of items matching ``query`` (at ``status``, if given), best first.

        Args:
            query: what the user typed; see :mod:`autolog.store.search_query`.
            status: only items at this status.
            limit: the page size, >= 1.
            offset: how many of the best items to skip, >= 0.

        Raises:
            InvalidSearchQuery: the query is blank, too long or has too many terms.
            ValueError: ``limit`` < 1 or ``offset`` < 0.
        """
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be >= 1 and offset >= 0, not {limit} and {offset}")
        terms = parse_query(query)
        if not terms:
            return SearchPage(query=query, total=0, limit=limit, offset=offset, hits=())
        sql, params = self._ranked(terms, status)
        with self._sessions() as session:
            rows = session.execute(text(f"{sql} LIMIT :limit OFFSET :offset"),
                                   {**params, "limit": limit, "offset": offset}).all()
            if rows:
                total = int(rows[0].total)
            else:
                total = int(session.execute(text(f"SELECT count(*) FROM ({sql}) AS page"), params).scalar_one())
            best = self._best_entries(session, terms, [int(row.best_entry) for row in rows])
            hits = tuple(self._hit(session, row, best.get(row.item_id)) for row in rows)
        return SearchPage(query=query, total=total, limit=limit, offset=offset, hits=hits)

    def matching(self, query: str) -> TextualSelect:
        """Return a SELECT of the ``item_id`` of every item matching ``query``, for use as a subquery.

        Raises:
            InvalidSearchQuery: the query is blank, too long or has too many terms.
        """
        terms = parse_query(query)
        if not terms:
            return text("SELECT id AS item_id FROM items WHERE 1 = 0").columns(item_id=String)
        sql, params = self._matched(terms)
        return text(f"{sql} SELECT item_id FROM matched").bindparams(**params).columns(item_id=String)

    def _matched(self, terms: Sequence[SearchTerm]) -> tuple[str, dict[str, Any]]:
        """Return the WITH clause whose ``matched`` holds each matching item's rank and matches, and its parameters."""
        hits = " UNION ALL ".join(self._dialect.term_hits(index) for index in range(len(terms)))
        sql = (
            f"WITH {self._dialect.term_matches(len(terms))}hits AS ({hits}),"
            " matched AS (SELECT item_id, sum(relevance) AS rank, count(*) AS matches,"
            f" {self._dialect.best_entry()} FROM hits GROUP BY item_id HAVING count(DISTINCT term) = :terms)"
        )
        params: dict[str, Any] = {f"t{index}": self._dialect.match_param([term]) for index, term in enumerate(terms)}
        params["terms"] = len(terms)
        return sql, params

    def _ranked(self, terms: Sequence[SearchTerm], status: Status | None) -> tuple[str, dict[str, Any]]:
        """Return the SQL of the matching items, best first, with their rank, matches and total."""
        matched, params = self._matched(terms)
        where = "WHERE i.status = :status" if status is not None else ""
        sql = (
            f"{matched} SELECT m.item_id AS item_id, m.rank AS rank, m.matches AS matches, m.best_entry AS best_entry,"
            " i.status AS status, i.media_kind AS media_kind,"
            " i.source AS source, i.start_timecode AS start_timecode, i.nominal_fps AS nominal_fps,"
            f" count(*) OVER () AS total FROM matched m JOIN items i ON i.id = m.item_id {where}"
            " ORDER BY m.rank DESC, m.matches DESC, m.item_id"
        )
        if status is not None:
            params["status"] = status.value
        return sql, params

    def _best_entries(self, session: Session, terms: Sequence[SearchTerm], entry_ids: list[int]
                      ) -> dict[str, tuple[Any, Any]]:
        """Return, per item, its best entry (``entry_ids``) with a snippet of each text column."""
        if not entry_ids:
            return {}
        snippets = {row.entry: row for row in session.execute(
            text(self._dialect.snippets()).bindparams(bindparam("entries", expanding=True)),
            {"any": self._dialect.match_param(terms), "entries": entry_ids})}
        entries = session.execute(
            text("SELECT id, item_id, kind, position, time_s, timecode FROM search_entries WHERE id IN :entries")
            .bindparams(bindparam("entries", expanding=True)), {"entries": entry_ids})
        return {entry.item_id: (entry, snippets.get(entry.id)) for entry in entries}

    def _hit(self, session: Session, row: Any, best: tuple[Any, Any] | None) -> SearchHit:
        common = {"item_id": row.item_id, "status": Status(row.status), "source": row.source,
                  "rank": float(row.rank), "matches": int(row.matches), "media_kind": row.media_kind}
        if best is None:
            # NOTE(search): its entry was replaced between the two reads; the hit stays, without its context.
            return SearchHit(**common, field=SearchField.ID, snippet=(SnippetPart(row.item_id, hit=False),))
        entry, snippets = best
        field, snippet = self._field(entry.kind, snippets)
        if entry.kind == "frame":
            return SearchHit(**common, field=field, snippet=snippet, frame=entry.position, time_s=entry.time_s,
                             timecode=entry.timecode)
        if entry.kind == "speech":
            return SearchHit(**common, field=field, snippet=snippet, frame=self._frame_at(session, row, entry.time_s),
                             time_s=entry.time_s, timecode=_timecode_at(row, entry.time_s))
        return SearchHit(**common, field=field, snippet=snippet)

    def _field(self, kind: str, snippets: Any) -> tuple[SearchField, tuple[SnippetPart, ...]]:
        """Return the first field of the entry whose snippet marks a hit, and that snippet."""
        fields = {"item": (0, 1), "frame": (2, 3), "speech": (4,)}[kind]
        texts = [(_COLUMNS[number], self._dialect.clean(snippets[number + 1] or "") if snippets else "")
                 for number in fields]
        for (_name, field), snippet in texts:
            if _HIT_START in snippet:
                return field, _parts(snippet)
        (_name, field), snippet = texts[0]
        return field, _parts(snippet)

    @staticmethod
    def _frame_at(session: Session, row: Any, time_s: float) -> int | None:
        """Return the position of the frame record whose shot holds ``time_s``, if the item has frames."""
        position = session.execute(text(
            "SELECT f.position FROM frames f JOIN scenes s ON s.item_id = f.item_id AND s.position = f.position"
            " WHERE f.item_id = :item_id AND s.start_s <= :time_s ORDER BY s.start_s DESC LIMIT 1"),
            {"item_id": row.item_id, "time_s": time_s}).scalar()
        if position is None:
            position = session.execute(text(
                "SELECT min(position) FROM frames WHERE item_id = :item_id"), {"item_id": row.item_id}).scalar()
        return None if position is None else int(position)


def _timecode_at(row: Any, time_s: float) -> str | None:
    """Return the source timecode ``time_s`` into the item, if its start timecode and rate are known."""
    if not row.start_timecode or not row.nominal_fps:
        return None
    try:
        return frame_timecode(row.start_timecode, row.nominal_fps, time_s)
    except ValueError:
        return None
