"""A local stand-in for Gemini's ``generateContent``, for tests that run the real client.

``GeminiStandIn`` is a real ``ThreadingHTTPServer`` on 127.0.0.1. It answers
``POST /v1beta/models/{model}:generateContent`` (and ``/v1/...``) with canned structured
JSON built from the request: one frame entry per "Frame index N" label it was sent, or, for
a request carrying audio, a transcript with one phrase ("stand-in phrase N") per stretch of
sound in that audio (decoded with ffmpeg), timed in the audio's seconds.
It records each call's arrival and finish time, and answers 429 (with a ``RetryInfo``
delay), 400, 500, malformed model output or a non-JSON body when told to, for the next calls.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from autolog.statuses import Status
from autolog.store import NewItem, SceneView, Store

_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):generateContent$")
_FRAME = re.compile(r"Frame index (\d+) at")

#: Gemini bills each second of audio as 32 input tokens (https://ai.google.dev/gemini-api/docs/audio).
AUDIO_TOKENS_PER_S = 32


@dataclass(frozen=True)
class Call:
    """One request the stand-in received, with what it answered."""

    arrived_s: float
    finished_s: float
    model: str
    frames: tuple[int, ...]
    images: tuple[tuple[int, int], ...]
    prompt: str
    status: int
    api_key: str | None
    #: Inline audio parts sent, as (MIME type, bytes).
    audio: tuple[tuple[str, bytes], ...] = ()
    #: The ``promptTokenCount`` the answer reported, if it reported usage.
    prompt_tokens: int | None = None


class GeminiStandIn:
    """Serves ``generateContent`` on a free port until ``close``.

    Args:
        latency_s: how long each answer takes, to make calls overlap like real ones.
    """

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._plan: deque[tuple[str, Any]] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="gemini-standin", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The URL to give ``HttpOptions(base_url=...)`` or ``AUTOLOG_GEMINI_BASE_URL``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def calls(self) -> list[Call]:
        """Every call so far, in arrival order."""
        with self._lock:
            return sorted(self._calls, key=lambda call: call.arrived_s)

    def answer_next(self, kind: str, count: int = 1, *, retry_delay_s: float = 1.0, reason: str = "") -> None:
        """Answer the next ``count`` calls with ``kind``.

        Kinds: ``429`` (RESOURCE_EXHAUSTED with a ``RetryInfo`` of ``retry_delay_s``),
        ``400`` (INVALID_ARGUMENT with ``reason``), ``500``, ``malformed`` (model text that
        is not JSON), ``missing_frame`` (valid JSON that leaves out the last frame) and
        ``garbage`` (an HTTP 200 body that is not JSON).
        """
        with self._lock:
            for _ in range(count):
                self._plan.append((kind, {"retry_delay_s": retry_delay_s, "reason": reason}))

    def reset(self) -> None:
        """Forget recorded calls and planned answers."""
        with self._lock:
            self._calls.clear()
            self._plan.clear()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def _next_kind(self) -> tuple[str, Any]:
        with self._lock:
            return self._plan.popleft() if self._plan else ("ok", {})

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)


def _handler_for(standin: GeminiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            match = _PATH.match(self.path.split("?", 1)[0])
            if match is None:
                self._send(404, {"error": {"code": 404, "message": f"no route {self.path}", "status": "NOT_FOUND"}})
                return
            request = json.loads(body)
            texts, images, audio = _parts(request)
            frames = tuple(int(index) for text in texts for index in _FRAME.findall(text))
            kind, extra = standin._next_kind()
            if standin.latency_s:
                time.sleep(standin.latency_s)
            if audio:
                status, payload = _answer_audio(kind, extra, match["model"], audio, texts)
            else:
                status, payload = _answer(kind, extra, match["model"], frames, texts, len(images))
            standin._record(Call(arrived_s=arrived, finished_s=time.time(), model=match["model"], frames=frames,
                                 images=tuple(images), prompt=" ".join(texts), status=status,
                                 api_key=self.headers.get("x-goog-api-key"), audio=tuple(audio),
                                 prompt_tokens=_prompt_tokens(payload)))
            self._send(status, payload)

        def _send(self, status: int, payload: Any) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _prompt_tokens(payload: Any) -> int | None:
    usage = payload.get("usageMetadata") if isinstance(payload, dict) else None
    return int(usage["promptTokenCount"]) if usage else None


def _parts(request: dict[str, Any]) -> tuple[list[str], list[tuple[int, int]], list[tuple[str, bytes]]]:
    texts: list[str] = []
    images: list[tuple[int, int]] = []
    audio: list[tuple[str, bytes]] = []
    for content in request.get("contents", []):
        for part in content.get("parts", []):
            if "text" in part:
                texts.append(part["text"])
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                mime_type = str(inline.get("mimeType") or inline.get("mime_type") or "")
                raw = base64.urlsafe_b64decode(inline["data"] + "=" * (-len(inline["data"]) % 4))
                if mime_type.startswith("audio/"):
                    audio.append((mime_type, raw))
                else:
                    images.append(_image_size(raw))
    return texts, images, audio


def _image_size(raw: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(raw)) as image:
        return image.size


def sound_stretches(audio: bytes, *, loud_dbfs: float = -35.0) -> tuple[float, list[tuple[float, float]]]:
    """Return an encoded audio's duration and its stretches of sound louder than ``loud_dbfs``, in s.

    Levels are taken over 30 ms; quieter gaps shorter than 0.3 s do not split a stretch.
    """
    pcm = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "pipe:0",
                          "-ac", "1", "-ar", "16000", "-f", "s16le", "pipe:1"],
                         input=audio, capture_output=True, check=True, timeout=60).stdout
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    frame = 480
    usable = len(samples) // frame * frame
    levels = 10 * np.log10(np.square(samples[:usable].reshape(-1, frame)).mean(axis=1) + 1e-12)
    stretches: list[tuple[float, float]] = []
    for index in np.flatnonzero(levels > loud_dbfs):
        start_s, end_s = index * frame / 16000, (index + 1) * frame / 16000
        if stretches and start_s - stretches[-1][1] < 0.3:
            stretches[-1] = (stretches[-1][0], end_s)
        else:
            stretches.append((start_s, end_s))
    return len(samples) / 16000, stretches


def _answer(kind: str, extra: dict[str, Any], model: str, frames: tuple[int, ...], texts: list[str],
            images: int) -> tuple[int, Any]:
    if kind == "429":
        return 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                               "message": "You exceeded your current quota (stand-in).",
                               "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                            "retryDelay": f"{extra['retry_delay_s']}s"}]}}
    if kind == "400":
        return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": extra["reason"] or "bad request"}}
    if kind == "500":
        return 500, {"error": {"code": 500, "status": "INTERNAL", "message": "stand-in internal error"}}
    if kind == "garbage":
        return 200, b"<html>upstream proxy error</html>"
    entries = [{"index": index, "description": f"Stand-in description of frame {index}.",
                "keywords": ["stand-in", f"frame-{index}"], "shot_type": "wide",
                "people": ["a person in a red coat"] if index % 2 == 0 else [], "objects": ["test pattern"]}
               for index in frames]
    if kind == "missing_frame":
        entries = entries[:-1]
    text = '{"frames": [{"index": 0, "description": ' if kind == "malformed" else json.dumps({"frames": entries})
    prompt_tokens = 258 * images + sum(len(part) for part in texts) // 4
    return 200, {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 40 * len(frames),
                          "totalTokenCount": prompt_tokens + 40 * len(frames)},
        "modelVersion": model,
    }


def _answer_audio(kind: str, extra: dict[str, Any], model: str, audio: list[tuple[str, bytes]],
                  texts: list[str]) -> tuple[int, Any]:
    if kind != "ok":
        return _answer(kind, extra, model, (), texts, 0)
    duration_s, stretches = sound_stretches(audio[0][1])
    segments = [{"start_s": round(start_s, 2), "end_s": round(end_s, 2), "text": f"stand-in phrase {number}"}
                for number, (start_s, end_s) in enumerate(stretches, start=1)]
    prompt_tokens = math.ceil(duration_s) * AUDIO_TOKENS_PER_S + sum(len(part) for part in texts) // 4
    return 200, {
        "candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps({"segments": segments})}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 12 * len(segments),
                          "totalTokenCount": prompt_tokens + 12 * len(segments)},
        "modelVersion": model,
    }


def max_calls_in_window(times: list[float], window_s: float) -> int:
    """Return the most calls that fall in any half-open window ``[t, t + window_s)``."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def add_analysis_item(store: Store, item_id: str, frames_dir: Path, *, frames: int = 3,
                      size: tuple[int, int] = (1280, 720), prompt: str | None = None) -> None:
    """Create an item ready for step 4: at ``3 - Creating Frames`` with sampled frame images."""
    frames_dir.mkdir(parents=True, exist_ok=True)
    scenes = []
    for position in range(frames):
        image = frames_dir / f"{item_id}-{position}.jpg"
        Image.new("RGB", size, ((position * 70) % 256, 120, 200)).save(image, format="JPEG")
        scenes.append(SceneView(position=position, start_s=position * 2.0, end_s=position * 2.0 + 2.0,
                                sample_s=position * 2.0 + 1.0, image_path=str(image)))
    store.items.create([NewItem(item_id, str(frames_dir / f"{item_id}.mp4"), force_resume=True, prompt=prompt)])
    store.items.transition(item_id, Status.PENDING_FILE_INFO, Status.CREATING_FRAMES)
    store.results.save_scenes(item_id, scenes)
