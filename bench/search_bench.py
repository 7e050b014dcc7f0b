"""Full-text search over many items against a bare ``LIKE '%word%'`` scan, on SQLite and PostgreSQL.

Usage: .venv/bin/python bench/search_bench.py [--items N] [--frames F] [--segments S] [--runs R]
       [--databases sqlite,postgresql] [--postgres-admin URL]

It stores N logged items (F frame records with descriptions and keywords, and S transcript
segments each; the text drawn from word lists with a fixed seed, common words common and rare
words rare) in a scratch SQLite file and a scratch PostgreSQL database, through the same
triggers the steps' writes go through, then runs each query R times as
``store.search.search(query, limit=20)`` (the page of the best 20 with the total) and as a
bare scan that finds the same items by ``LIKE '%word%'`` over ids, sources, descriptions,
keywords and transcripts (every word somewhere in the item), and prints p50/p95 of each with
the ratio scan / search. Matches differ where they should: ``LIKE`` also finds the word inside
longer words. The default run (5,000 items) takes about a minute; ``--items 100000`` several.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from autolog.statuses import Status  # noqa: E402
from autolog.store import Store  # noqa: E402
from autolog.store.models import Frame, Item, TranscriptSegment  # noqa: E402

SEED = 20261130
SHOTS = ["wide", "medium", "close-up", "aerial", "tracking", "static", "handheld", "low-angle", "over-the-shoulder"]
SUBJECTS = ["a fisherman", "two children", "a cyclist", "an old woman", "the crowd", "a street vendor", "a dog",
            "the presenter", "a nurse", "a farmer", "a drummer", "the mayor", "a climber", "a chef", "a tram",
            "seagulls", "a delivery van", "a kayak", "a horse", "the choir", "a welder", "a lighthouse keeper"]
ACTIONS = ["walks along", "waits by", "runs across", "looks at", "talks beside", "repairs", "paints", "crosses",
           "sits on", "climbs", "films", "stands near", "dances in", "leaves", "enters", "cleans", "points at"]
PLACES = ["the harbour", "a market square", "the old bridge", "a bakery", "the railway station", "a hospital ward",
          "a wheat field", "the town hall", "a rooftop", "a quarry", "the riverbank", "a night club", "a car park",
          "a vineyard", "the cathedral", "a football pitch", "a forest path", "a shipyard", "a laundrette"]
LIGHT = ["at dawn", "in the rain", "under streetlights", "in harsh noon sun", "at golden hour", "in fog",
         "under fluorescent light", "at dusk", "in snow", "backlit by the sea"]
KEYWORDS = ["exterior", "interior", "night", "day", "people", "crowd", "water", "vehicle", "animal", "food",
            "architecture", "nature", "sport", "music", "work", "portrait", "motion", "silhouette", "weather",
            "industry", "celebration", "interview", "b-roll", "establishing", "detail", "café", "Zürich", "Kraków"]
SPEECH = ("we have been here since six this morning and the boats are late again because of the wind "
          "my grandfather built this place with his own hands you can still see the marks on the beams "
          "nobody expected the council to close the road but here we are waiting for an answer "
          "the bread goes in at four and comes out when the bells ring it has always been like that "
          "turn the camera a little to the left yes there that is where the old door used to be "
          "if the water rises again we will lose the lower field and the harvest with it "
          "she sang in the choir for forty years and never missed a single rehearsal not one "
          "listen to the engine it knocks when it is cold but it has never let us down").split()
#: A word that appears in about one item in a few thousand, for the "rare word" query.
RARE = ["albatross", "zeppelin", "marzipan", "quokka", "theremin"]

#: The queries timed: (label, query).
QUERIES = [
    ("common word", "harbour"),
    ("rare word", "zeppelin"),
    ("two words, two fields", "fisherman wind"),
    ("phrase", '"old bridge"'),
    ("prefix while typing", "lighth"),
    ("item id", "LF{middle:06d}"),
    ("accented", "zurich"),
]


def sentence(rng: random.Random) -> str:
    """Return one frame description."""
    text_ = (f"A {rng.choice(SHOTS)} shot of {rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} "
             f"{rng.choice(PLACES)} {rng.choice(LIGHT)}.")
    if rng.random() < 0.0005:
        text_ += f" A {rng.choice(RARE)} appears."
    return text_


def speech(rng: random.Random) -> str:
    """Return one transcript segment: 8-20 consecutive words of the speech text."""
    start = rng.randrange(len(SPEECH) - 20)
    return " ".join(SPEECH[start:start + rng.randint(8, 20)]).capitalize() + "."


def fill(store: Store, *, items: int, frames: int, segments: int, batch: int = 2000) -> float:
    """Insert the items through the index triggers, ``batch`` items per transaction; return the seconds taken."""
    rng = random.Random(SEED)
    started = time.perf_counter()
    for first in range(0, items, batch):
        ids = [f"LF{number:06d}" for number in range(first, min(first + batch, items))]
        with store.engine.begin() as connection:
            connection.execute(insert(Item), [
                {"id": item_id, "source": f"/media/Day {number % 30 + 1}/A{number % 999:03d}C{number % 97:03d}.mov",
                 "status": Status.AVID_DESCRIPTION.value if number % 10 else Status.PROCESSING_FRAME_INFO.value,
                 "force_resume": False, "dead_lettered": False, "cancelled": False, "version": 1,
                 "start_timecode": "01:00:00:00", "nominal_fps": "25/1"}
                for number, item_id in enumerate(ids, start=first)])
            connection.execute(insert(Frame), [
                {"item_id": item_id, "position": shot, "time_s": 4.0 * shot + 2.0, "timecode": "01:00:00:00",
                 "image_path": f"/var/{item_id}/{shot}.jpg", "description": sentence(rng),
                 "keywords": rng.sample(KEYWORDS, rng.randint(2, 5)), "analysis": {}, "transcript": None}
                for item_id in ids for shot in range(frames)])
            connection.execute(insert(TranscriptSegment), [
                {"item_id": item_id, "position": position, "start_s": 3.0 * position, "end_s": 3.0 * position + 2.5,
                 "text": speech(rng)} for item_id in ids for position in range(segments)])
    return time.perf_counter() - started


def like_scan(store: Store, query: str) -> Callable[[], int]:
    """Return a function counting the items holding every word of ``query``, found by ``LIKE '%word%'``."""
    words = [word.strip('"*').lower() for word in query.split()]
    if query.startswith('"'):
        words = [query.strip('"*').lower()]
    one = ("SELECT id FROM items WHERE lower(id) LIKE :w{n} OR lower(source) LIKE :w{n}"
           " UNION SELECT item_id FROM frames WHERE lower(description) LIKE :w{n}"
           " OR lower(CAST(keywords AS TEXT)) LIKE :w{n}"
           " UNION SELECT item_id FROM transcript_segments WHERE lower(text) LIKE :w{n}")
    sql = " INTERSECT ".join(f"SELECT * FROM ({one.format(n=n)}) AS w{n}" for n in range(len(words)))
    statement = text(f"SELECT count(*) FROM ({sql}) AS matched")
    params = {f"w{n}": f"%{word}%" for n, word in enumerate(words)}

    def scan() -> int:
        with store.engine.connect() as connection:
            return int(connection.execute(statement, params).scalar_one())
    return scan


def timed(run: Callable[[], int], runs: int) -> tuple[float, float, int]:
    """Run ``run`` once to warm up, then ``runs`` times; return p50 and p95 in ms, and its last answer."""
    answer = run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = run()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], answer


@contextmanager
def scratch_store(database: str, admin_url: str) -> Iterator[Store]:
    """Yield a migrated store in a scratch SQLite file or PostgreSQL database, removed afterwards."""
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            store = Store.open(f"sqlite:///{folder}/bench.db")
            try:
                yield store
            finally:
                store.close()
        return
    name = f"autolog_search_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        store = Store.open(admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}")
        try:
            yield store
        finally:
            store.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(database: str, args: argparse.Namespace) -> None:
    with scratch_store(database, args.postgres_admin) as store:
        fill_s = fill(store, items=args.items, frames=args.frames, segments=args.segments)
        if database == "postgresql":
            with store.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        print(f"\n{database}: {args.items:,} items, {args.frames} frame records and {args.segments} transcript "
              f"segments each, stored with their index in {fill_s:.1f} s ({args.items / fill_s:,.0f} items/s)")
        print(f"{'query':<24} {'search p50':>10} {'p95':>8} {'LIKE p50':>10} {'p95':>8} {'LIKE/search p50':>16}"
              f" {'matches':>8} {'LIKE':>7}")
        for label, pattern in QUERIES:
            query = pattern.format(middle=args.items // 2)
            search_p50, search_p95, total = timed(lambda q=query: store.search.search(q, limit=20).total, args.runs)
            like_p50, like_p95, like_total = timed(like_scan(store, query), max(3, args.runs // 4))
            print(f"{label:<24} {search_p50:>8.1f}ms {search_p95:>6.1f}ms {like_p50:>8.1f}ms {like_p95:>6.1f}ms"
                  f" {like_p50 / search_p50:>15.1f}x {total:>8,} {like_total:>7,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=3, help="frame records per item")
    parser.add_argument("--segments", type=int, default=3, help="transcript segments per item")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each search (the scan runs a quarter)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL URL of a role that may create databases (default: %(default)s)")
    args = parser.parse_args()
    for database in args.databases.split(","):
        bench(database, args)


if __name__ == "__main__":
    main()
