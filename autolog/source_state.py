"""Whether a local source is still being written, and the fingerprint step 1 stores.

A file still being copied onto a media root must not be probed: a half-copied MP4 has no
``moov`` box yet and would fail for good as "not media", and a half-copied MPEG-TS probes
fine but is shorter than the finished file. So step 1 waits until the file has been quiet
(size and modification times unchanged) for ``Settings.source_settle_s``, and stores a
fingerprint of what it probed; later steps compare the file with it, and a changed source
goes back to step 1 (``middleware.SourceChecks``).

A copy can also stall (a network share's hiccup, a card reader's retry) for longer than the
settle window. A file that is visibly cut short (``cut_short``: an MPEG-TS that ends inside a
packet, an MP4 or QuickTime file whose last box runs past its end or that has no ``moov``) is
waited for up to ``Settings.source_stall_s`` of quiet instead, so a stalled copy of the common
camera containers is not logged (a TS) or failed (an MP4) from the part that had arrived.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from autolog.errors import MediaMissing

#: MPEG transport streams by file suffix: the packet size in bytes and where its sync byte (0x47)
#: sits. 188 bytes (ISO/IEC 13818-1); BDAV's ``.m2ts``/``.mts`` (AVCHD, Blu-ray) put a 4-byte
#: arrival timestamp before each packet: 192.
TS_PACKETS = {".ts": (188, 0), ".m2t": (188, 0), ".trp": (188, 0), ".m2ts": (192, 4), ".mts": (192, 4)}

#: Packets whose sync byte must be in place (those the file holds, up to this many) for a stream to be judged.
SYNC_PACKETS = 4

#: ISO base media (ISO/IEC 14496-12) and QuickTime files by suffix: a sequence of top-level boxes,
#: each a 32-bit big-endian size (1: a 64-bit size follows the type; 0: to the end of the file) and
#: a 4-character type.
BMFF_SUFFIXES = frozenset((".mp4", ".m4v", ".m4a", ".mov", ".qt", ".3gp", ".3g2"))

#: Top-level box types a file may start with; a file that starts otherwise is not judged.
BMFF_FIRST_BOXES = frozenset((b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"))

#: Key of a step-1 wait's marker, and so of its ``deferred`` timeline event's detail, holding
#: ``cut_short``'s reason when the wait is for a stalled copy.
CUT_SHORT_DETAIL = "cut_short"

#: Top-level boxes walked at most; past that (a long fragmented MP4) no verdict is given.
MAX_BOXES = 4096

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
    return _quiet_remaining_s(current, current.changed_at_s, now_s=now_s, window_s=settle_s, last=last)


def stall_remaining_s(current: SourceStat, *, now_s: float, stall_s: float, last: Sighting | None = None) -> float:
    """Return how many more seconds a cut-short ``current`` must stay unchanged to be probed; 0 when none.

    Counted from the modification time alone: a copy moves it with every write, where a file
    cut short long ago and only moved or re-permissioned since (a new inode change time) is
    not a copy in progress. As in ``settle_remaining_s``, a worker's ``last`` sighting of the
    same stat counts too (a modification time in the future).
    """
    return _quiet_remaining_s(current, current.mtime_ns / 1e9, now_s=now_s, window_s=stall_s, last=last)


def _quiet_remaining_s(current: SourceStat, changed_at_s: float, *, now_s: float, window_s: float,
                       last: Sighting | None) -> float:
    """Seconds left of ``window_s`` of quiet since ``changed_at_s``, or since ``last`` saw the same stat."""
    quiet_s = now_s - changed_at_s
    if last is not None and last.stat == current:
        quiet_s = max(quiet_s, now_s - last.since_s)
    return max(0.0, window_s - quiet_s)


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


@functools.lru_cache(maxsize=4096)
def cut_short(path: str, stat: SourceStat) -> str | None:
    """Say how the file at ``path`` (as ``stat`` found it) is visibly cut short, or None.

    Only the structure of two families is judged, by suffix, from a few bytes: an MPEG
    transport stream (``TS_PACKETS``) whose first packet is in sync and whose size is not a
    whole number of packets; an ISO base media or QuickTime file (``BMFF_SUFFIXES``) whose
    top-level boxes run past its end or include no ``moov`` (the index a player needs, which
    a camera writes last). Anything else, or a file whose first bytes are not of its family,
    gets None: it is ffprobe's to judge. Answers are remembered per path and stat. A copy that
    stalls where the structure happens to end whole (a transport stream on a packet boundary: one
    64 KiB boundary in 3 for 192-byte packets, 1 in 47 for 188) or past ``MAX_BOXES`` boxes of a
    fragmented MP4 is not seen: the sweep's recheck (``Settings.source_recheck_s``) logs it again.

    Returns:
        The reason, as a phrase (``"it ends 36 bytes into a 188-byte packet"``), or None.

    Raises:
        OSError: the file cannot be read.
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix in TS_PACKETS:
        packet, sync = TS_PACKETS[suffix]
        with open(path, "rb") as file:
            head = file.read(SYNC_PACKETS * packet)
        # In sync: the sync byte at each whole packet read (one 0x47 alone is any file starting with "G").
        if len(head) < packet + sync + 1 or any(head[start] != 0x47 for start in range(sync, len(head), packet)):
            return None
        partial = stat.size_bytes % packet
        return f"it ends {partial} bytes into a {packet}-byte packet" if partial else None
    if suffix in BMFF_SUFFIXES:
        # Unbuffered: a box header is 16 bytes, where a buffered read would take 8 KiB a box.
        with open(path, "rb", buffering=0) as file:
            return _boxes_cut_short(file, stat.size_bytes)
    return None


def _boxes_cut_short(file: Any, size: int) -> str | None:
    """Walk the top-level boxes of an ISO base media file of ``size`` bytes (see ``cut_short``)."""
    offset, found = 0, set()
    for _ in range(MAX_BOXES):
        if offset >= size:
            break
        file.seek(offset)
        header = file.read(16)
        if len(header) < 8:
            if offset == 0 or b"moov" in found:
                return None  # too short to be of the family; or a whole file's few bytes of padding
            return f"it ends inside a box header ({len(header)} bytes after the last whole box)"
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not all(32 <= byte < 127 for byte in kind) or (offset == 0 and kind not in BMFF_FIRST_BOXES):
            return None  # not a box: not this family's file, or damaged
        if box_size == 1:
            if len(header) < 16:
                return f"it ends inside the header of its {kind.decode()!r} box"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:
            box_size = size - offset  # the last box, to the end of the file
        if box_size < 8:
            return None  # damaged: ffprobe says what it makes of it
        found.add(kind)
        if offset + box_size > size:
            return (f"its {kind.decode()!r} box runs past the end of the file ({offset + box_size:,} of"
                    f" {size:,} bytes)")
        offset += box_size
    else:
        return None  # too many boxes to walk
    if not found or b"moov" in found:
        return None  # an empty file has no structure to judge (``EmptyMedia``)
    return "it has no 'moov' box (the index a player needs, written last)"


def source_changed(before: SourceFingerprint, path: Path) -> SourceFingerprint | None:
    """Return the file's fingerprint now if it differs from ``before``; None when it is the same file.

    Raises:
        MediaMissing: the file is gone.
    """
    now = fingerprint_source(path, sample_bytes=before.sample_bytes)
    return None if now == before else now
