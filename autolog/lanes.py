"""Lanes: the pools one worker group serves, each a queue with its own threads (``actors.lanes``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Lane:
    """One pool served by a worker group: its name, its queue and its threads per worker process."""

    pool: str
    queue: str
    threads: int

    def __str__(self) -> str:
        return f"{self.pool}:{self.queue}:{self.threads}"


def format_lanes(lanes: Sequence[Lane]) -> str:
    """Return ``--lanes``'s value: ``pool:queue:threads`` joined by commas."""
    return ",".join(str(lane) for lane in lanes)


def parse_lanes(text: str) -> tuple[Lane, ...]:
    """Parse ``format_lanes``'s output.

    Raises:
        ValueError: a lane is not ``pool:queue:threads`` with a positive thread count, or a queue repeats.
    """
    lanes = []
    for part in text.split(","):
        pool, queue, threads = part.split(":")
        if not pool or not queue or int(threads) < 1:
            raise ValueError(f"bad lane {part!r}: expected pool:queue:threads")
        lanes.append(Lane(pool=pool, queue=queue, threads=int(threads)))
    if len({lane.queue for lane in lanes}) != len(lanes):
        raise ValueError(f"a queue is in two lanes: {text!r}")
    return tuple(lanes)
