"""Search over what the real pipeline wrote: real workers, ffmpeg and pocketsphinx, the index kept by the steps."""

from __future__ import annotations

import re
from collections.abc import Callable

from autolog.context import Context
from autolog.store import SearchField
from tests.conftest import SampleClips, log_through_pipeline


def test_words_the_steps_wrote_are_found_in_their_field_and_frame(
    context: Context, test_media: SampleClips, drain: Callable[..., None], unique_id: Callable[[str], str],
) -> None:
    # Given the speech clip logged by steps 1 to 6
    item_id = unique_id("spoken")
    log_through_pipeline(context, drain, test_media.path("speech.mp4"), item_id)
    frames = context.store.results.frames(item_id)
    spoken = {word.lower() for segment in context.store.results.transcript(item_id)
              for word in re.findall(r"[a-z]+", segment.text.lower())}
    described = {word.lower() for frame in frames for word in re.findall(r"[A-Za-z]+", frame.description)}

    # When a word only the transcript holds, and one only the first frame record's description holds, are searched
    said = sorted(word for word in spoken - described if word in {"quick", "brown", "fox", "lazy", "dog", "scene"})
    name = f"{item_id} {context.store.items.get(item_id).source}".lower()
    shown = sorted(word for word in re.findall(r"[A-Za-z]{4,}", frames[0].description)
                   if word.lower() not in spoken and word.lower() not in name)
    by_speech = context.store.search.search(said[0]).hits
    by_picture = context.store.search.search(shown[0]).hits

    # Then the item is found in its transcript, at a frame record of the clip, and in that description
    assert [(hit.item_id, hit.field) for hit in by_speech] == [(item_id, SearchField.TRANSCRIPT)]
    assert by_speech[0].frame in {frame.position for frame in frames}
    assert [(hit.item_id, hit.field) for hit in by_picture] == [(item_id, SearchField.DESCRIPTION)]
    assert by_picture[0].timecode in {frame.timecode for frame in frames}
