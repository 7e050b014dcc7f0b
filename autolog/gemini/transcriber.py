"""The Gemini transcriber: a clip's speech audio in, timed phrases in clip time out.

The audio tracks that carry speech are laid out in clip time and mixed exactly as for the
offline recogniser (``autolog.media.speech_tracks``), encoded small and sent inline in one
``generateContent`` call that asks for phrases with start and end times. Because the audio
sent starts at clip time 0, the times Gemini gives are clip times. Like the analyzer, it
makes one call per item and never retries by itself; ``middleware.RateLimits`` holds the
calls to the Gemini quota the analyzer shares.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google import genai
from google.genai import types

from autolog.errors import CorruptMedia, MalformedTranscript, UnsupportedMedia
from autolog.gemini.analyzer import PROVIDER, generate_content, make_client, why_empty
from autolog.media._run import Runner, first_error_line, run_process, run_tool
from autolog.media.probe import AudioTrack
from autolog.media.speech_tracks import extract_speech_audio
from autolog.media.transcribe import Segment, Transcript
from autolog.settings import Settings

#: What Gemini is told it is doing.
SYSTEM_INSTRUCTION = (
    "You transcribe speech recorded with film and video footage, for editors who search it. "
    "Write down what is said, word for word, in the language spoken, as phrases of a few "
    "seconds each. Give each phrase's start and end in seconds from the start of the audio. "
    "Leave out music, noise and silence; when nobody speaks, return no segments."
)

#: The answer's JSON schema: phrases with times in seconds of the audio sent.
TRANSCRIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start_s": {"type": "number", "minimum": 0},
                    "end_s": {"type": "number", "minimum": 0},
                    "text": {"type": "string"},
                },
                "required": ["start_s", "end_s", "text"],
            },
        },
    },
    "required": ["segments"],
}

#: The audio goes as Ogg Opus at 16 kbit/s: Gemini reduces any audio to 16 kbit/s itself
#: (https://ai.google.dev/gemini-api/docs/audio), so more would be paid in upload, not heard.
AUDIO_MIME_TYPE = "audio/ogg"
AUDIO_BITRATE = "16k"

#: Inline request bodies may be 20 MB; base64 adds a third, and the prompt needs a little.
#: At 16 kbit/s this is about two hours of audio.
MAX_AUDIO_BYTES = 14 * 1024 * 1024

#: A phrase may end this far past the audio (model rounding); one starting later is made up.
_END_SLACK_S = 1.0


class GeminiTranscriber:
    """Transcribes a clip's speech tracks with one structured-output Gemini call.

    Args:
        client: a ``google.genai.Client``; point it at another server with ``http_options``.
        model: the model name, e.g. ``gemini-2.5-flash``.
        run: runs ffmpeg.
        timeout_s: ffmpeg's time limit per run.
    """

    name = PROVIDER

    def __init__(self, *, client: genai.Client, model: str, run: Runner = run_process,
                 timeout_s: float = 600.0) -> None:
        self.model = model
        self._client = client
        self._run = run
        self._timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> GeminiTranscriber:
        """Build the transcriber and its client from the ``gemini_*`` settings.

        Raises:
            ConfigError: no Gemini key is configured.
        """
        return cls(client=make_client(settings), model=settings.gemini_model)

    def transcribe(self, path: Path, tracks: Sequence[AudioTrack]) -> Transcript:
        """Return the phrases spoken on the tracks that carry speech, in clip time.

        No track with speech means no call.

        Raises:
            CorruptMedia: ffmpeg cannot decode or encode the audio.
            UnsupportedMedia: the speech audio is too long for one inline request.
            ToolFailed: ffmpeg is missing or timed out.
            UpstreamRateLimited: Gemini answered 429; ``retry_after_s`` is its delay.
            UpstreamUnavailable: Gemini failed with a 5xx, timed out or could not be reached.
            UpstreamRejected: Gemini refused the request (any other 4xx).
            MalformedTranscript: the answer is empty, not JSON, or does not fit the schema.
        """
        with tempfile.TemporaryDirectory(prefix="autolog-asr-") as temp_dir:
            speech = extract_speech_audio(path, tracks, Path(temp_dir), run=self._run, timeout_s=self._timeout_s)
            if speech is None:
                return Transcript(segments=(), track_indexes=())
            audio = self._encode(path, speech.wav_path, Path(temp_dir) / "speech.ogg")
        contents = types.Content(role="user", parts=[
            types.Part.from_text(text=f"Transcribe this audio. It is {speech.duration_s:.2f} s long."),
            types.Part.from_bytes(data=audio, mime_type=AUDIO_MIME_TYPE),
        ])
        config = types.GenerateContentConfig(
            system_instruction=SYSTEM_INSTRUCTION, response_mime_type="application/json",
            response_json_schema=TRANSCRIPT_SCHEMA, temperature=0.0,
        )
        response = generate_content(self._client, self.model, contents, config)
        text = response.text
        if not text:
            raise MalformedTranscript(f"{PROVIDER} returned no text ({why_empty(response)})")
        usage = response.usage_metadata
        return Transcript(
            segments=parse_segments(text, duration_s=speech.duration_s), track_indexes=speech.track_indexes,
            input_tokens=(usage.prompt_token_count or 0) if usage else 0,
            # Thinking tokens are billed as output.
            output_tokens=((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0,
        )

    def _encode(self, path: Path, wav_path: Path, out_path: Path) -> bytes:
        command = [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav_path),
            "-c:a", "libopus", "-b:a", AUDIO_BITRATE, "-application", "voip",
            "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "ogg", str(out_path),
        ]  # fmt: skip
        completed = run_tool(command, run=self._run, timeout_s=self._timeout_s)
        if completed.returncode != 0:
            raise CorruptMedia(str(path), f"ffmpeg could not encode the speech: {first_error_line(completed.stderr)}")
        size_bytes = out_path.stat().st_size
        if size_bytes > MAX_AUDIO_BYTES:
            raise UnsupportedMedia(str(path), f"the speech audio is {size_bytes / 2**20:.1f} MiB encoded, more than "
                                              f"one Gemini request takes ({MAX_AUDIO_BYTES / 2**20:.0f} MiB)")
        return out_path.read_bytes()


def parse_segments(text: str, *, duration_s: float) -> tuple[Segment, ...]:
    """Check Gemini's answer against ``TRANSCRIPT_SCHEMA``; return its phrases in time order.

    Phrases with no text are dropped; times past the audio (by up to 1 s of rounding) are
    cut to ``duration_s``.

    Raises:
        MalformedTranscript: not JSON, not the schema, a time that is not a finite number,
            a phrase that ends before it starts, or one that ends over 1 s after the audio.
    """
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as ex:
        raise MalformedTranscript(f"{PROVIDER} output is not valid JSON: {ex}") from ex
    entries = answer.get("segments") if isinstance(answer, dict) else None
    if not isinstance(entries, list):
        raise MalformedTranscript(f"{PROVIDER} output has no list of segments")
    segments = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise MalformedTranscript(f"{PROVIDER} segment {position} is not an object with a text")
        start_s, end_s = _time(entry, "start_s", position), _time(entry, "end_s", position)
        if end_s < start_s:
            raise MalformedTranscript(f"{PROVIDER} segment {position} ends before it starts ({start_s:g}-{end_s:g} s)")
        if end_s > duration_s + _END_SLACK_S:
            raise MalformedTranscript(f"{PROVIDER} segment {position} runs {start_s:g}-{end_s:g} s, "
                                      f"past the {duration_s:.2f} s of audio")
        words = " ".join(entry["text"].split())
        if words:
            segments.append(Segment(start_s=round(min(start_s, duration_s), 3),
                                    end_s=round(min(end_s, duration_s), 3), text=words))
    return tuple(sorted(segments, key=lambda segment: (segment.start_s, segment.end_s)))


def _time(entry: dict[str, Any], key: str, position: int) -> float:
    value = entry.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise MalformedTranscript(f"{PROVIDER} segment {position} has no valid {key}: {value!r}")
    return float(value)
