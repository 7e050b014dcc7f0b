"""What a worker's boot does to its process: the objects it holds leave the garbage collector's generations."""

from __future__ import annotations

import gc

import dramatiq

from actors import broker
from autolog.context import Context


def collected(held: object) -> bool:
    """Whether ``held`` is in one of the cyclic garbage collector's generations (not frozen)."""
    return any(found is held for found in gc.get_objects())


def test_a_booted_worker_freezes_what_the_process_holds_and_unfreezes_it_as_it_stops(context: Context) -> None:
    # Given an object the process holds before a worker boots, in the collector's generations
    gc.unfreeze()
    held: list[str] = ["made before the boot"]
    assert collected(held)

    # When a worker boots, then stops
    worker = dramatiq.Worker(broker, queues={"services_idle"}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        frozen, walked = gc.get_freeze_count(), collected(held)
    finally:
        worker.stop()

    # Then while it ran, full collections did not walk the object (nor the rest it booted with);
    # after, the process's objects are back in the generations
    assert frozen > 0
    assert not walked
    assert gc.get_freeze_count() == 0
    assert collected(held)
