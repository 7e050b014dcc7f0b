"""The work of each pipeline step: read the item, do the media work, store what it made.

Each function is idempotent (outputs are written atomically and saved by replacing the
item's previous rows) and returns the status the item should move to. It never changes
the status itself: the status middleware does that, after the work is stored. Given a
fenced context (``Context.fenced``), its saves go through only while its run is current,
and its files go to a folder of the run's own.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autolog.context import Context
from autolog.errors import MalformedAnalysis, MediaError, PermanentError, SourceChanged
from autolog.media import (
    FrameInput,
    ProbeResult,
    detect_scenes,
    disk_faults,
    extract_frames,
    frame_timecode,
    make_contact_sheet,
    make_poster,
    map_segments_to_frames,
    poster_time_s,
    probe_media,
)
from autolog.source_state import fingerprint_source, source_changed
from autolog.sources import S3Config, is_remote, materialise
from autolog.statuses import AUDIO_ONLY, Status
from autolog.store import AnalysisView, FrameView, ItemView, SceneView, SegmentView

#: What every step returns: the item and the status it should move to, plus small facts.
StepResult = dict[str, Any]


def _result(item_id: str, status: Status, **facts: Any) -> StepResult:
    return {"item_id": item_id, "status": status.value, **facts}


@contextmanager
def _source(context: Context, item: ItemView) -> Iterator[Path]:
    """Yield the item's source as a local file; an ``s3://`` object is downloaded and deleted after."""
    with materialise(item.source, context.settings.resolved_media_roots,
                     s3=S3Config.from_settings(context.settings)) as path:
        yield path


def _probe(item: ItemView) -> ProbeResult:
    if item.probe is None:
        raise PermanentError(f"item {item.id!r} has no file info; run step 1 first")
    return ProbeResult.from_dict(item.probe)


def _output_dir(context: Context, item_id: str, step_name: str) -> Path:
    """Return the folder a run of a step writes its files to: one per run, named ``STEP-TOKEN``.

    A run writes only to its own folder, and the store points at it only if the run is
    current when it saves (a fenced write), so a stale run's files are never the item's.
    Outside a fenced run (a direct call), the item's folder itself.
    """
    fence = context.store.items.fence
    if fence is not None and fence.item_id == item_id:
        return run_folder(context.settings.artifacts_root, item_id, step_name, fence.token)
    return context.settings.artifacts_root / item_id


def run_folder(artifacts_root: Path, item_id: str, step_name: str, token: str) -> Path:
    """Return the folder of one run of a step (``<artifacts>/<item>/<step>-<token>``)."""
    return artifacts_root / item_id / f"{step_name}-{token}"


def _prune_runs(context: Context, item_id: str, step_name: str) -> None:
    """Remove the folders of the step's other runs, once this run's files are the stored ones."""
    kept = _output_dir(context, item_id, step_name)
    for folder in kept.parent.glob(f"{step_name}-*"):
        if folder != kept and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def probe_item(context: Context, item_id: str) -> StepResult:
    """Step 1: probe the source and store its file info and fingerprint.

    A local source has settled before this runs (``middleware.SourceChecks``). Audio-only
    items go on to transcription (``6 - Generating Description``), the rest to step 2.

    Raises:
        SourceChanged: a file that failed to probe changed meanwhile: it was still being
            written, so it is probed again once it settles instead of failing for good.
    """
    item = context.store.items.get(item_id)
    settings = context.settings
    with _source(context, item) as source:
        seen = None if is_remote(item.source) else fingerprint_source(source)
        try:
            probe = probe_media(source, default_start_timecode=settings.default_start_timecode,
                                audio_timecode_rate=settings.audio_timecode_rate)
        except MediaError as ex:
            if seen is not None and source_changed(seen, source) is not None:
                raise SourceChanged(item.source, f"changed while it was probed ({ex.reason})") from ex
            raise
    context.store.items.update(
        item_id, probe=probe.asdict(), has_audio=probe.has_audio, media_kind=probe.media_kind,
        start_timecode=probe.start_timecode, drop_frame=probe.drop_frame, nominal_fps=probe.nominal_fps,
        reel=probe.reel, source_fingerprint=seen.asdict() if seen is not None else None,
    )
    status = Status.GENERATING_DESCRIPTION if probe.media_kind == AUDIO_ONLY else Status.FILE_INFO_COMPLETE
    return _result(item_id, status, duration_s=probe.duration_s, has_audio=probe.has_audio,
                   media_kind=probe.media_kind)


def make_item_thumbnails(context: Context, item_id: str) -> StepResult:
    """Step 2: write a poster frame and a contact sheet, as a player shows the picture."""
    item = context.store.items.get(item_id)
    probe = _probe(item)
    out = _output_dir(context, item_id, "thumbnails")
    poster_s = poster_time_s(probe)
    with _source(context, item) as source, disk_faults(out):
        poster = make_poster(source, probe, out / "poster.jpg", at_s=poster_s)
        sheet = make_contact_sheet(source, probe, out / "contact_sheet.jpg")
    context.store.results.save_artifact_kinds(item_id, {"poster": [str(poster)], "contact_sheet": [str(sheet)]})
    _prune_runs(context, item_id, "thumbnails")
    return _result(item_id, Status.THUMBNAILS_COMPLETE, poster_s=poster_s)


def assess_item(context: Context, item_id: str) -> StepResult:
    """Step 3: find the shots in one decode pass and take each one's middle frame at its time."""
    item = context.store.items.get(item_id)
    probe = _probe(item)
    settings = context.settings
    out = _output_dir(context, item_id, "assess")
    with _source(context, item) as source, disk_faults(out):
        scenes = detect_scenes(source, probe, threshold=settings.scene_threshold, min_shot_s=settings.min_shot_s)
        images = extract_frames(source, probe, scenes, out / "samples")
    context.store.results.save_scenes(item_id, [
        SceneView(position=scene.index, start_s=scene.start_s, end_s=scene.end_s, sample_s=scene.sample_s,
                  image_path=str(image))
        for scene, image in zip(scenes, images, strict=True)
    ])
    _prune_runs(context, item_id, "assess")
    resume = item.force_resume or settings.force_resume
    status = Status.CREATING_FRAMES if resume else Status.AWAITING_USER_INPUT
    return _result(item_id, status, scenes=len(scenes))


def analyze_item(context: Context, item_id: str) -> StepResult:
    """Step 4: describe the sampled frames with the configured analyzer and the user's prompt."""
    item = context.store.items.get(item_id)
    scenes = context.store.results.scenes(item_id)
    if not scenes:
        raise PermanentError(f"item {item_id!r} has no sampled frames; run step 3 first")
    inputs = [FrameInput(index=scene.position, time_s=scene.sample_s, image=Path(scene.image_path))
              for scene in scenes]
    analysis = context.analyzer.analyze(inputs, item.prompt)
    if sorted(frame.index for frame in analysis.frames) != [scene.position for scene in scenes]:
        raise MalformedAnalysis(
            f"{analysis.provider} described frames {[frame.index for frame in analysis.frames]}, "
            f"expected {[scene.position for scene in scenes]}"
        )
    context.store.results.save_analysis(item_id, AnalysisView(
        provider=analysis.provider, model=analysis.model, prompt=item.prompt, result=analysis.asdict(),
        input_tokens=analysis.input_tokens, output_tokens=analysis.output_tokens, cost_usd=analysis.cost_usd,
    ))
    return _result(item_id, Status.PROCESSING_FRAME_INFO, provider=analysis.provider,
                   input_tokens=analysis.input_tokens, output_tokens=analysis.output_tokens)


def make_item_frames(context: Context, item_id: str) -> StepResult:
    """Step 5: write one frame record per sampled frame: timecode, image, description, keywords."""
    item = context.store.items.get(item_id)
    probe = _probe(item)
    analysis = context.store.results.analysis(item_id)
    if analysis is None:
        raise PermanentError(f"item {item_id!r} has no analysis; run step 4 first")
    described = {frame["index"]: frame for frame in analysis.result["frames"]}
    frames = [
        FrameView(
            position=scene.position, time_s=scene.sample_s,
            timecode=frame_timecode(probe.start_timecode, probe.nominal_fps, scene.sample_s),
            image_path=scene.image_path, description=described[scene.position]["description"],
            keywords=list(described[scene.position]["keywords"]),
            analysis={"provider": analysis.provider, "model": analysis.model, **described[scene.position]},
            transcript=None,
        )
        for scene in context.store.results.scenes(item_id)
    ]
    context.store.results.save_frames(item_id, frames)
    status = Status.GENERATING_DESCRIPTION if probe.has_audio else Status.AVID_DESCRIPTION
    return _result(item_id, status, frames=len(frames))


def transcribe_item(context: Context, item_id: str) -> StepResult:
    """Step 6: transcribe the speech and map each stretch onto the frames it overlaps.

    Every audio track is considered (the transcriber picks the ones that carry speech) and
    the transcript is in clip time, the time base of the scenes, so each phrase lands on the
    frames shown while it is said. The result reports the tracks heard and, for a hosted
    transcriber, the input tokens billed (which ``RateLimits`` counts against the quota).
    """
    item = context.store.items.get(item_id)
    probe = _probe(item)
    with _source(context, item) as source:
        transcript = context.transcriber.transcribe(source, probe.audio_tracks)
    spans = [(scene.position, scene.start_s, scene.end_s) for scene in context.store.results.scenes(item_id)]
    context.store.results.save_transcript(
        item_id,
        [SegmentView(position=position, start_s=segment.start_s, end_s=segment.end_s, text=segment.text)
         for position, segment in enumerate(transcript.segments)],
        map_segments_to_frames(transcript.segments, spans),
    )
    return _result(item_id, Status.AVID_DESCRIPTION, segments=len(transcript.segments),
                   transcriber=context.transcriber.name, tracks=list(transcript.track_indexes),
                   input_tokens=transcript.input_tokens, output_tokens=transcript.output_tokens)

