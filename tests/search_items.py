"""Items with frame records and speech, written straight to the store, for the search tests."""

from __future__ import annotations

from collections.abc import Sequence

from autolog.statuses import Status
from autolog.store import FrameView, NewItem, SceneView, SegmentView, Store

#: Text of items that match none of the tests' words, so a word's rarity means something to the ranking.
FILLER = [
    ("a grey street at dawn with parked cars", "morning traffic noise"),
    ("two people talk at a kitchen table", "pass the salt please"),
    ("a dog runs across a wet field", "come back here"),
    ("close-up of hands typing on a laptop", "the deadline is friday"),
]


def log_item(store: Store, item_id: str, *, descriptions: Sequence[str] = (), keywords: Sequence[Sequence[str]] = (),
             speech: Sequence[tuple[float, str]] = (), source: str | None = None,
             status: Status | None = None) -> None:
    """Store an item with one 2 s shot and frame record per description, and timed speech."""
    store.items.create([NewItem(id=item_id, source=source or f"/media/{item_id}.mov")])
    store.items.update(item_id, start_timecode="01:00:00:00", nominal_fps="25/1",
                       **({"status": status.value} if status else {}))
    store.results.save_scenes(item_id, [
        SceneView(position=position, start_s=2.0 * position, end_s=2.0 * position + 2, sample_s=2.0 * position + 1,
                  image_path=f"{item_id}-{position}.jpg") for position in range(len(descriptions))])
    store.results.save_frames(item_id, [
        FrameView(position=position, time_s=2.0 * position + 1, timecode=f"01:00:{2 * position + 1:02d}:00",
                  image_path=f"{item_id}-{position}.jpg", description=description,
                  keywords=list(keywords[position]) if position < len(keywords) else [], analysis={},
                  transcript=None)
        for position, description in enumerate(descriptions)])
    store.results.save_transcript(item_id, [
        SegmentView(position=position, start_s=start, end_s=start + 1.5, text=words)
        for position, (start, words) in enumerate(speech)], {})
