"""Whether a local source is still being written, and the fingerprint step 1 stores.

A file still being copied onto a media root must not be probed: a half-copied MP4 has no
``moov`` box yet and would fail for good as "not media", and a half-copied MPEG-TS probes
fine but is shorter than the finished file. So step 1 waits until the file has been quiet
(size and modification times unchanged) for ``Settings.source_settle_s``, and stores a
fingerprint of what it probed; later steps compare the file with it, and a changed source
goes back to step 1 (``middleware.SourceChecks``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from autolog.errors import MediaMissing

#: Bytes read from each end of a file for its fingerprint's hash: enough to cover an MP4's
#: ``ftyp``/``moov`` at either end and an MPEG-TS's first and last packets, cheap on a NAS.
SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SourceStat:
    """A file's size and times as ``os.stat`` gives them, in bytes and nanoseconds."""

    size_bytes: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> SourceStat:
        """Stat ``path``.

        A string is stat'ed as it is: a step-1 message's check stats the source it names, and making
        a ``Path`` of it first cost as much as the ``stat`` (issue #13).

        Raises:
            MediaMissing: it does not exist or is not a regular file.
        """
        try:
            result = os.stat(path)
        except FileNotFoundError as ex:
            raise MediaMissing(str(path), "no such file") from ex
        if not S_ISREG(result.st_mode):  # one system call, not a second stat
            raise MediaMissing(str(path), "not a regular file")
        return cls(size_bytes=result.st_size, mtime_ns=result.st_mtime_ns, ctime_ns=result.st_ctime_ns)

    @property
    def changed_at_s(self) -> float:
        """The last change to the file's content or inode, in Unix seconds.

        The inode change time counts too: ``cp -p`` and ``touch -d`` put an old
        modification time on a file that was just written.
        """
        return max(self.mtime_ns, self.ctime_ns) / 1e9

    def asdict(self) -> dict[str, int]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceStat:
        """Rebuild from :meth:`asdict`'s output."""
        return cls(size_bytes=int(data["size_bytes"]), mtime_ns=int(data["mtime_ns"]),
                   ctime_ns=int(data["ctime_ns"]))


@dataclass(frozen=True)
class Sighting:
    """A file's stat, and when a worker first saw it with exactly that stat (Unix seconds)."""

    stat: SourceStat
    since_s: float

    def asdict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"stat": self.stat.asdict(), "since_s": self.since_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sighting:
        """Rebuild from :meth:`asdict`'s output."""
        return cls(stat=SourceStat.from_dict(data["stat"]), since_s=float(data["since_s"]))


def settle_remaining_s(current: SourceStat, *, now_s: float, settle_s: float, last: Sighting | None = None) -> float:
    """Return how many more seconds ``current`` must stay unchanged to count as settled; 0 when it is.

    The file's own times say how long it has been quiet. A worker's earlier ``last``
    sighting of the very same stat counts as well, so a file whose times lie in the
    future (a NAS whose clock runs ahead) still settles after ``settle_s`` of watching.
    """
    quiet_s = now_s - current.changed_at_s
    if last is not None and last.stat == current:
        quiet_s = max(quiet_s, now_s - last.since_s)
    return max(0.0, settle_s - quiet_s)


@dataclass(frozen=True)
class SourceFingerprint:
    """What step 1 probed: size in bytes, modification time in ns, SHA-256 of both ends.

    ``head_tail_sha256`` hashes the first and the last ``sample_bytes`` of the file (the
    whole file when it is shorter than twice that).
    """

    size_bytes: int
    mtime_ns: int
    head_tail_sha256: str
    sample_bytes: int = SAMPLE_BYTES

    def asdict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, as stored in the item's ``source_fingerprint``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceFingerprint:
        """Rebuild from :meth:`asdict`'s output."""
        return cls(size_bytes=int(data["size_bytes"]), mtime_ns=int(data["mtime_ns"]),
                   head_tail_sha256=str(data["head_tail_sha256"]),
                   sample_bytes=int(data.get("sample_bytes", SAMPLE_BYTES)))


def fingerprint_source(path: Path, *, sample_bytes: int = SAMPLE_BYTES) -> SourceFingerprint:
    """Fingerprint the file at ``path``: its size, modification time and a hash of both ends.

    Raises:
        MediaMissing: it does not exist or is not a regular file.
    """
    stat = SourceStat.of(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            digest.update(file.read(sample_bytes))
            if stat.size_bytes > sample_bytes:
                file.seek(max(sample_bytes, stat.size_bytes - sample_bytes), os.SEEK_SET)
                digest.update(file.read(sample_bytes))
    except FileNotFoundError as ex:
        raise MediaMissing(str(path), "no such file") from ex
    return SourceFingerprint(size_bytes=stat.size_bytes, mtime_ns=stat.mtime_ns,
                             head_tail_sha256=digest.hexdigest(), sample_bytes=sample_bytes)


def source_changed(before: SourceFingerprint, path: Path) -> SourceFingerprint | None:
    """Return the file's fingerprint now if it differs from ``before``; None when it is the same file.

    Raises:
        MediaMissing: the file is gone.
    """
    now = fingerprint_source(path, sample_bytes=before.sample_bytes)
    return None if now == before else now
