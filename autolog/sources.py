"""Item sources: local paths confined to the media roots, and ``s3://`` objects fetched on use."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from autolog.errors import InvalidSource, MediaMissing, SourceFetchFailed
from autolog.settings import Settings

#: Schemes accepted besides plain local paths.
REMOTE_SCHEMES = ("s3://",)

#: File name endings of footage and sound a folder ingest or a watch folder takes (any case):
#: camera and editorial containers, MPEG transport streams (``.ts``, ``.m2t``, AVCHD's
#: ``.mts``/``.m2ts``) and sound files. Sidecars (XML, THM, JSON) are left alone.
MEDIA_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mxf", ".mts", ".m2ts", ".ts", ".m2t", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
    ".dv", ".3gp", ".wav", ".bwf", ".aif", ".aiff", ".flac", ".mp3", ".m4a", ".ogg",
})


def is_media_name(path: Path) -> bool:
    """True when ``path``'s name ends as footage or sound does (``MEDIA_SUFFIXES``, any case)."""
    return path.suffix.lower() in MEDIA_SUFFIXES


def is_remote(source: str) -> bool:
    """Tell whether ``source`` names an object store object rather than a local file."""
    return source.startswith(REMOTE_SCHEMES)


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
    try:
        resolved = Path(source).expanduser().resolve()
    except RuntimeError as ex:
        # ``~nosuchuser/clip.mov``: no such user, so no home folder to expand.
        raise InvalidSource(source, f"cannot expand the home folder: {ex}") from ex
    for root in roots:
        if resolved.is_relative_to(root.resolve()):
            return str(resolved)
    listed = ", ".join(str(root) for root in roots) or "(none configured)"
    raise InvalidSource(source, f"outside the media roots ({listed}); set AUTOLOG_MEDIA_ROOTS")


def check_source(source: str, roots: Sequence[Path]) -> str:
    """Return the canonical form of a source to submit: ``validate_source``, and a local one must be a file.

    Raises:
        InvalidSource: the source is malformed or outside the media roots, the file does not
            exist, or it is a folder.
    """
    checked = validate_source(source, roots)
    if is_remote(checked):
        return checked
    path = Path(checked)
    if path.is_dir():
        raise InvalidSource(source, "a folder, not a file")
    if not path.is_file():
        raise InvalidSource(source, "no such file")
    return checked


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


#: S3 error codes that mean the object is not there: a retry cannot help.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


@dataclass(frozen=True)
class S3Config:
    """Where ``s3://`` sources live and how to sign in; None fields defer to boto3's defaults."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Config:
        """Take the ``s3_*`` fields of ``settings``."""
        return cls(endpoint_url=settings.s3_endpoint_url, access_key_id=settings.s3_access_key_id,
                   secret_access_key=settings.s3_secret_access_key, region=settings.s3_region)


def make_s3_client(config: S3Config) -> Any:
    """Return a boto3 S3 client for ``config``, with path-style addressing for MinIO."""
    # Imported here: boto3 costs about 30 MiB, and only a process fetching an s3:// source needs it.
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3", endpoint_url=config.endpoint_url, aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key, region_name=config.region,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


def split_s3(source: str) -> tuple[str, str]:
    """Return the bucket and key of an ``s3://bucket/key`` source.

    Raises:
        InvalidSource: it is not one.
    """
    bucket, _, key = source.removeprefix("s3://").partition("/")
    if not source.startswith(REMOTE_SCHEMES) or not bucket or not key:
        raise InvalidSource(source, "expected s3://bucket/key")
    return bucket, key


def _local_name(key: str) -> str:
    """Name the downloaded file after the key's last part, keeping its extension for ffprobe."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(key).name).lstrip(".")
    return name or "object"


@contextmanager
def materialise(
    source: str,
    roots: Sequence[Path],
    *,
    s3: S3Config | None = None,
    scratch_dir: Path | None = None,
    client_factory: Callable[[S3Config], Any] = make_s3_client,
) -> Iterator[Path]:
    """Yield a local file holding ``source``: the file itself, or an S3 object downloaded for the block.

    A downloaded copy lives in a private scratch folder that is deleted when the block exits,
    whether it succeeds or raises.

    Raises:
        InvalidSource: a local source left the media roots, or an S3 source is malformed.
        MediaMissing: the file or object does not exist.
        SourceFetchFailed: the object store could not be reached or refused for another reason.
    """
    if not source.startswith(REMOTE_SCHEMES):
        yield local_path(source, roots)
        return
    # Imported here, as in ``make_s3_client``: only an s3:// source needs botocore.
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(source)
    client = client_factory(s3 or S3Config())
    with tempfile.TemporaryDirectory(prefix="autolog-s3-", dir=scratch_dir) as scratch:
        target = Path(scratch) / _local_name(key)
        try:
            client.download_file(bucket, key, str(target))
        except ClientError as ex:
            code = str(ex.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                raise MediaMissing(source, "object not found") from ex
            raise SourceFetchFailed(source, f"S3 error {code}: {ex}") from ex
        except BotoCoreError as ex:
            raise SourceFetchFailed(source, str(ex)) from ex
        yield target
