"""The tests' own timecode arithmetic: an oracle independent of the code and of the libraries."""

from __future__ import annotations


def smpte_frames(timecode: str, base: int, *, drop: bool) -> int:
    """Return the frame count of ``HH:MM:SS:FF`` at ``base`` frames per timecode second.

    Drop-frame (SMPTE ST 12-1) skips ``base // 15`` frame numbers at the start of each minute
    except every tenth.
    """
    hours, minutes, seconds, frames = (int(part) for part in timecode.replace(";", ":").split(":"))
    total_minutes = hours * 60 + minutes
    count = (total_minutes * 60 + seconds) * base + frames
    if drop:
        count -= (base // 15) * (total_minutes - total_minutes // 10)
    return count


def ndf_timecode(count: int, base: int) -> str:
    """Spell a frame count as non-drop ``HH:MM:SS:FF`` at ``base`` frames per second: ``smpte_frames``'s inverse."""
    seconds, frames = divmod(count, base)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{frames:02d}"
