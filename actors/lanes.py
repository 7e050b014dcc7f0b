"""A worker group: one ``dramatiq`` process group serving several pools, each queue with its own threads.

``python -m actors.lanes --lanes POOL:QUEUE:THREADS[,...] [dramatiq's arguments]`` runs
dramatiq's own master (its pid file, log file, signal handling, graceful stop, and exit of
the whole group when one worker process dies), with two changes:

- The master imports the actors and the step graph before it forks, so its worker processes
  share those pages with it (copy-on-write) instead of each importing them again.
- Each worker process runs a ``LaneWorker``: every lane (one pool's queue) has its own work
  queue and its own threads, so a pool keeps its concurrency limit and its prefetch in a
  process that serves other pools too: eight probes waiting on ``ffprobe`` never take the
  threads of a transcription, and a full lane never holds another's messages.
- Each ``LaneWorker`` gives the broker it inherited from the master a fresh broker id, so
  each worker process has its own heartbeat and ack sets, as under dramatiq's own CLI.
- Each worker process asks the kernel for a SIGTERM when its master dies (``PR_SET_PDEATHSIG``,
  Linux), so a master killed with SIGKILL leaves no orphan that keeps consuming: the worker
  stops as on a normal stop (its running steps get the grace period, then are put back).

Each worker process announces one live entry per lane (``middleware.Metrics``), so ``/health``
and the pool gauges count every pool on its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from queue import PriorityQueue
from typing import Any

import dramatiq
import dramatiq.cli
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import iter_queue, q_name
from dramatiq.errors import BrokerConnectionError
from dramatiq.worker import ConsumerThread, WorkerThread, _WorkerMiddleware, _WorkQueueItem

from autolog.lanes import Lane, parse_lanes

#: How long a stopping worker waits for its consumers after the grace period, in milliseconds: each
#: ends within one fetch timeout (``worker_timeout``, 1 s) once told to stop.
CONSUMER_STOP_MS = 3000

#: How often a worker process looks whether its master is still its parent, in seconds.
ORPHAN_POLL_S = 1.0

#: What a worker process whose master died is given beyond its own stop to exit, in seconds.
ORPHAN_EXIT_MARGIN_S = 5.0

#: ``prctl`` option that sets the signal a process gets when its parent dies (``<linux/prctl.h>``).
PR_SET_PDEATHSIG = 1


def stop_with_parent(parent_pid: int) -> None:
    """Have this process get SIGTERM when ``parent_pid``, its parent, dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)``, see prctl(2)); elsewhere nothing is done. The
    signal is tied to the thread that calls this, so call it from the process's main thread.
    A parent that died before the call is caught too: this process then sends itself SIGTERM.

    Raises:
        OSError: ``prctl`` refused.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def join_by_deadline(threads: Iterable[Any], timeout_s: float) -> None:
    """Join every thread within ``timeout_s`` seconds in all, all against one deadline.

    Not dramatiq's ``join_all``: it takes the total time spent so far from a budget it has
    already reduced, so in a group of 30 idle threads and 3 busy ones the budget ran out on
    the idle ones in seconds and the busy steps were put back long before their grace period.
    """
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


class LaneWorker(dramatiq.Worker):
    """A dramatiq ``Worker`` whose every queue has its own work queue and threads.

    dramatiq's worker feeds one work queue from every consumer to one set of threads; here
    each canonical queue (its delay queue feeds it too) gets its lane's threads and a
    prefetch of twice that, as dramatiq's own worker would with that many threads. The lanes
    it serves are ``lanes``, which ``middleware.Metrics`` reads at boot to announce each pool.

    Args:
        broker, queues, worker_timeout: as ``dramatiq.Worker``; ``queues`` must all be lanes' queues.
        lanes: the pools the worker group serves, each a canonical queue name with its threads.
        worker_threads: ignored (dramatiq's CLI passes ``--threads``); the lanes' sum is used.
        master_pid: the dramatiq master that forked this worker process; when given, the process
            gets SIGTERM when the master dies (``stop_with_parent``). None in tests that run a
            worker in their own process.
        orphan_exit_s: with ``master_pid``, a process still alive this long after its master
            died exits at once (``os._exit``). The SIGTERM stop normally ends it first; this
            covers a main thread that cannot stop, such as one blocked for good in dramatiq's
            boot handshake on a lock the dead master held. Its messages then come back when its
            heartbeat expires.
    """

    def __init__(self, broker: dramatiq.Broker, *, queues: set[str] | None = None, worker_timeout: int = 1000,
                 worker_threads: int = 0, lanes: Sequence[Lane], master_pid: int | None = None,
                 orphan_exit_s: float | None = None) -> None:
        chosen = set(queues) if queues else {lane.queue for lane in lanes}
        unknown = chosen - {lane.queue for lane in lanes}
        if unknown:
            raise ValueError(f"queues with no lane: {sorted(unknown)}")
        #: The lanes this worker serves, in queue order.
        self.lanes = tuple(sorted((lane for lane in lanes if lane.queue in chosen), key=lambda lane: lane.queue))
        super().__init__(broker, queues=chosen, worker_timeout=worker_timeout,
                         worker_threads=sum(lane.threads for lane in self.lanes))
        self._threads = {lane.queue: lane.threads for lane in self.lanes}
        self.lane_queues: dict[str, PriorityQueue[_WorkQueueItem]] = {queue: PriorityQueue() for queue in self._threads}
        self.master_pid = master_pid
        self.orphan_exit_s = orphan_exit_s

    def start(self) -> None:
        """Boot as dramatiq's worker does, with each lane's threads on its own work queue.

        The broker was built in the master, before the fork, so every worker process would
        share its ``broker_id``: one heartbeat for all, which a frozen or killed process's
        live siblings keep fresh, and one ack set per queue, which any of them emptied at
        shutdown. dramatiq's Redis broker names its heartbeat and ack sets by that id
        (``dispatch.lua``); each process takes its own here, before any consumer runs.

        dramatiq's CLI calls this from the worker process's main thread, which lives as long as
        the process: the thread the death signal of ``master_pid`` is tied to.
        """
        if self.master_pid is not None:
            stop_with_parent(self.master_pid)
            if self.orphan_exit_s is not None:
                threading.Thread(target=self._exit_when_orphaned, args=(self.master_pid, self.orphan_exit_s),
                                 name="orphan-watch", daemon=True).start()
        if isinstance(self.broker, RedisBroker):
            self.broker.broker_id = str(uuid.uuid4())
        self.broker.emit_before("worker_boot", self)
        self.broker.add_middleware(_WorkerMiddleware(self))
        for queue, threads in self._threads.items():
            for _ in range(threads):
                thread = WorkerThread(broker=self.broker, consumers=self.consumers,
                                      work_queue=self.lane_queues[queue], worker_timeout=self.worker_timeout)
                thread.start()
                self.workers.append(thread)
        self.broker.emit_after("worker_boot", self)

    def _exit_when_orphaned(self, master_pid: int, after_s: float) -> None:
        """Once ``master_pid`` is no longer this process's parent, wait ``after_s``, then exit if still here."""
        while os.getppid() == master_pid:
            time.sleep(ORPHAN_POLL_S)
        time.sleep(after_s)
        self.logger.error("The master (pid %d) died %.0f s ago and this worker process has not stopped; exiting.",
                          master_pid, after_s)
        os._exit(1)

    def _add_consumer(self, queue_name: str, *, delay: bool = False) -> None:
        canonical = q_name(queue_name)
        if queue_name in self.consumers or canonical not in self._threads:
            return
        threads = self._threads[canonical]
        consumer = self.consumers[queue_name] = ConsumerThread(
            broker=self.broker, queue_name=queue_name, prefetch=min(threads * (1000 if delay else 2), 65535),
            work_queue=self.lane_queues[canonical], worker_timeout=self.worker_timeout)
        consumer.start()

    def stop(self, timeout: int = 600000) -> None:
        """Stop as dramatiq's worker does: threads finish their messages, then every lane's prefetched ones go back.

        ``timeout`` (milliseconds, the grace period) bounds the wait for the running steps; the
        consumers then get at most ``CONSUMER_STOP_MS`` more, so the whole stop, and
        ``ShutdownRequeue`` putting back what still runs, ends well within the grace period plus
        ``ops.pools.STOP_MARGIN_S``, before the group is killed. (dramatiq's own ``stop`` waits
        up to ``timeout`` for the threads and then up to ``timeout`` again for the consumers.)
        """
        self.broker.emit_before("worker_shutdown", self)
        self.logger.info("Shutting down...")
        for worker in self.workers:
            worker.stop()
        join_by_deadline(self.workers, timeout / 1000)
        # Kept running until now, as in dramatiq, so the heartbeat goes on while the steps finish.
        for consumer in self.consumers.values():
            consumer.stop()
        join_by_deadline(self.consumers.values(), CONSUMER_STOP_MS / 1000)
        waiting: dict[str, list[Any]] = defaultdict(list)
        for lane in self.lane_queues.values():
            for item in iter_queue(lane):
                waiting[item.message.queue_name].append(item.message)
        for queue_name, messages in waiting.items():
            try:
                self.consumers[queue_name].requeue_messages(messages)
            except BrokerConnectionError:
                self.logger.warning("Failed to requeue messages on queue %r.", queue_name, exc_info=True)
        for consumer in self.consumers.values():
            consumer.close()
        self.broker.emit_after("worker_shutdown", self)
        self.logger.info("Worker has been shut down.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run dramatiq's CLI with ``--lanes`` taken out: actors imported before the fork, a ``LaneWorker`` per process.

    Raises:
        SystemExit: ``--lanes`` is missing or malformed (exit code 2).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        at = args.index("--lanes")
        lanes = parse_lanes(args[at + 1])
    except (ValueError, IndexError) as ex:
        print(f"actors.lanes: --lanes POOL:QUEUE:THREADS[,...] is required: {ex}", file=sys.stderr)
        return 2
    del args[at:at + 2]
    # Imported here, in the master, so the worker processes dramatiq forks share these pages.
    import actors  # noqa: F401
    import pipelines  # noqa: F401

    parsed = dramatiq.cli.make_argument_parser().parse_args(args)
    dramatiq.cli.Worker = functools.partial(  # type: ignore[attr-defined,assignment]
        LaneWorker, lanes=lanes, master_pid=os.getpid(),
        orphan_exit_s=(parsed.worker_shutdown_timeout + CONSUMER_STOP_MS) / 1000 + ORPHAN_EXIT_MARGIN_S)
    code: int = dramatiq.cli.main(parsed)
    return code


if __name__ == "__main__":
    sys.exit(main())
