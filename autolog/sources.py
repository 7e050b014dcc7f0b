"""Item sources: local paths confined to the media roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autolog.errors import InvalidSource, MediaMissing

#: Schemes accepted besides plain local paths.
REMOTE_SCHEMES = ("s3://",)


def validate_source(source: str, roots: Sequence[Path]) -> str:
    """Return the canonical form of ``source`` if autolog may read it.

    A local path must resolve, after following symlinks and ``..``, to a file inside one of
    ``roots``; it is returned absolute. An ``s3://bucket/key`` source is returned as is.

    Raises:
        InvalidSource: the path is empty, relative to nothing, or leaves the media roots.
    """
    if not source or "\x00" in source:
        raise InvalidSource(source, "empty or contains a NUL byte")
    if source.startswith(REMOTE_SCHEMES):
        bucket, _, key = source.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise InvalidSource(source, "expected s3://bucket/key")
        return source
    if "://" in source:
        raise InvalidSource(source, "unsupported scheme; use a local path or s3://bucket/key")
    resolved = Path(source).expanduser().resolve()
    for root in roots:
        if resolved.is_relative_to(root.resolve()):
            return str(resolved)
    listed = ", ".join(str(root) for root in roots) or "(none configured)"
    raise InvalidSource(source, f"outside the media roots ({listed}); set AUTOLOG_MEDIA_ROOTS")


def local_path(source: str, roots: Sequence[Path]) -> Path:
    """Return the local file behind a stored local ``source``, checked again at use time.

    Raises:
        InvalidSource: the source is remote or has left the media roots since it was stored.
        MediaMissing: the file does not exist.
    """
    if source.startswith(REMOTE_SCHEMES):
        raise InvalidSource(source, "remote sources are not supported by this worker")
    path = Path(validate_source(source, roots))
    if not path.is_file():
        raise MediaMissing(str(path), "file not found")
    return path
