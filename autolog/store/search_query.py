"""What a user types into a search box, turned into terms both databases match safely.

The rules, the same on SQLite and PostgreSQL:

- Words are runs of letters and digits (any script); everything else separates them, so
  FTS syntax (``"`` aside) is plain text: ``NEAR``, ``AND``, ``OR``, ``NOT`` are words, and
  ``*``, ``-``, ``(``, ``)``, ``:``, ``^`` never act as operators.
- An item matches when every term is found somewhere in it (its id, source, a frame
  record's description or keywords, or its transcript); terms need not share a field.
- ``"two words"`` is a phrase: its words in that order, in one field of one frame record,
  one transcript segment or the item's name. A run of words joined by marks without spaces
  (``C0001-3f9a2c1b``, ``A001C003.MOV``, ``3.5``) is a phrase too.
- ``word*`` matches words starting with ``word``. The last word of the query does too,
  while it is being typed: unless the query ends with a space or a closing quote.
- Case and (on SQLite always, on PostgreSQL with ``unaccent``) accents do not matter.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from autolog.errors import InvalidSearchQuery

#: The longest query accepted, in characters.
MAX_QUERY_CHARS = 500

#: The most terms (words and phrases) a query may hold; each is one index lookup.
MAX_TERMS = 12

#: A word: letters and digits of any script (``_`` is a separator, as in both tokenizers).
_WORD = re.compile(r"[^\W_]+")

#: A quoted phrase (closed or running to the end) with an optional ``*``, or a chunk without spaces.
_CHUNK = re.compile(r'"(?P<phrase>[^"]*)(?P<closed>"?)(?P<star>\*?)|(?P<bare>[^\s"]+)')


@dataclass(frozen=True)
class SearchTerm:
    """One thing every hit must contain: a word, or a phrase of words in order.

    ``words`` are as typed (the databases fold case and accents); with ``prefix`` the last
    word matches any word it starts.
    """

    words: tuple[str, ...]
    prefix: bool = False

    def fts5(self) -> str:
        """Return the term as an FTS5 string (words hold no ``"``, so it needs no escaping)."""
        return '"' + " ".join(self.words) + '"' + ("*" if self.prefix else "")

    def tsquery(self) -> str:
        """Return the term as ``to_tsquery`` text: quoted lexemes joined by ``<->``, ``:*`` for a prefix."""
        lexemes = [f"'{word}'" for word in self.words]
        if self.prefix:
            lexemes[-1] += ":*"
        return "(" + " <-> ".join(lexemes) + ")"


def parse_query(query: str) -> tuple[SearchTerm, ...]:
    """Return the terms of ``query``; none when it holds no letter or digit (it then matches nothing).

    Raises:
        InvalidSearchQuery: the query is blank (nothing to search for) or longer than
            :data:`MAX_QUERY_CHARS`, or it holds more than :data:`MAX_TERMS` terms.
    """
    if not query.strip():
        raise InvalidSearchQuery(query, "the query is blank; type a word to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidSearchQuery(query, f"the query has {len(query)} characters, more than {MAX_QUERY_CHARS}")
    text = unicodedata.normalize("NFC", query)
    terms: list[SearchTerm] = []
    typing = False
    for chunk in _CHUNK.finditer(text):
        if chunk.group("bare") is not None:
            bare = chunk.group("bare")
            words, prefix, typing = tuple(_WORD.findall(bare)), bare.endswith("*"), True
        else:
            words, prefix = tuple(_WORD.findall(chunk.group("phrase"))), bool(chunk.group("star"))
            typing = not chunk.group("closed")
        if words:
            terms.append(SearchTerm(words=words, prefix=prefix))
    if terms and typing and not text[-1].isspace():
        terms[-1] = SearchTerm(words=terms[-1].words, prefix=True)
    if len(terms) > MAX_TERMS:
        raise InvalidSearchQuery(query, f"the query has {len(terms)} words or phrases, more than {MAX_TERMS}")
    return tuple(terms)
