"""The metrics middleware before boot (as in gunicorn), the series it prepares, and the changes it gathers."""

from __future__ import annotations

import logging
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from prometheus_client import values

from autolog.metrics_instruments import Instruments, Tally
from middleware import Metrics, serve_worker_metrics


def never_booted(tmp_path: Path, *, port: int | None = None) -> Metrics:
    return Metrics(client=redis.Redis(), namespace="unit",
                   directory=tmp_path / "metrics", exporter_port=port)


def test_a_process_that_never_boots_a_worker_records_nothing(tmp_path: Path) -> None:
    # Given the middleware as gunicorn has it: the broker is built, no worker ever boots
    metrics = never_booted(tmp_path)
    message = dramatiq.Message(queue_name="probe", actor_name="autolog.probe", args=("LF1",), kwargs={},
                               options={"retries": 1})
    broker = StubBroker()

    # When every hook runs
    metrics.count_retry(MessageProxy(message))
    metrics.before_process_message(broker, MessageProxy(message))
    metrics.after_process_message(broker, MessageProxy(message), exception=RuntimeError("x"))
    metrics.after_skip_message(broker, MessageProxy(message))
    metrics.after_nack(broker, MessageProxy(message))

    # Then nothing was created, on disk or in memory
    assert metrics.instruments is None
    assert not (tmp_path / "metrics").exists()


@pytest.mark.parametrize(("port", "forks"), [(None, []), (9191, [serve_worker_metrics])])
def test_the_exporter_is_forked_only_when_a_port_is_set(tmp_path: Path, port: int | None, forks: list[object]) -> None:
    assert never_booted(tmp_path, port=port).forks == forks


def test_prepared_series_exist_at_zero_before_any_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # In memory: an in-process worker earlier in the session may have switched this process to
    # file-backed values, whose files already hold these series.
    monkeypatch.setattr(values, "ValueClass", values.MutexValue)
    instruments = Instruments.create()

    instruments.prepare("frames", "autolog.make_frames", statuses=["7 - Avid Description"], terminal=True)

    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for metric in (instruments.messages, instruments.transitions, instruments.pipeline_duration)
               for family in metric.collect() for sample in family.samples}
    labels = (("actor_name", "autolog.make_frames"), ("queue_name", "frames"))
    assert samples[("autolog_messages_total", (*labels[:1], ("outcome", "failed"), *labels[1:]))] == 0
    assert samples[("autolog_status_transitions_total", (*labels[:1], ("outcome", "refused"), labels[1],
                                                         ("status", "7 - Avid Description")))] == 0
    assert samples[("autolog_pipeline_duration_seconds_count", labels)] == 0


def samples_of(instruments: Instruments) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in (instruments.messages, instruments.in_progress, instruments.duration,
                           instruments.queue_wait)
            for family in metric.collect() for sample in family.samples if not sample.name.endswith("_created")}


def test_a_flushed_tally_writes_what_each_change_written_at_once_would(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two sets of the metrics, in memory, and changes of messages that end in every kind of bucket:
    # on a bound, between bounds, past the last bound, below the first, at +Inf and NaN (in no bucket),
    # and a gauge that goes up and down
    monkeypatch.setattr(values, "ValueClass", values.MutexValue)
    direct, gathered = Instruments.create(), Instruments.create()
    labels = ("frames", "autolog.make_frames")
    durations = [0.0, 0.05, 0.07, 1.0, 2.5, 3.0, 4_000.0, 0.05, -1.0, float("inf"), float("nan")]
    tally = Tally()

    # When one set takes each change at once and the other through the tally, flushed twice
    for index, duration_s in enumerate(durations):
        direct.child(direct.in_progress, *labels).inc()
        direct.child(direct.duration, *labels, "succeeded").observe(duration_s)
        direct.child(direct.queue_wait, *labels).observe(duration_s / 3)
        direct.child(direct.messages, *labels, "succeeded").inc()
        tally.add(gathered.child(gathered.in_progress, *labels))
        tally.observe(gathered.child(gathered.duration, *labels, "succeeded"), duration_s)
        tally.observe(gathered.child(gathered.queue_wait, *labels), duration_s / 3)
        tally.add(gathered.child(gathered.messages, *labels, "succeeded"))
        if index % 2:
            direct.child(direct.in_progress, *labels).dec()
            tally.add(gathered.child(gathered.in_progress, *labels), -1)
        if index == 3:
            assert tally.flush() == 18
    assert len(tally) == 31
    assert tally.flush() == 31

    # Then both hold the same samples (every bucket, sum and count; sums added in another order), and nothing waits
    assert samples_of(gathered) == pytest.approx(samples_of(direct), rel=1e-12, nan_ok=True)
    assert samples_of(direct)[("autolog_messages_in_progress", (("actor_name", labels[1]),
                                                                ("queue_name", labels[0])))] == 6
    assert len(tally) == 0 and tally.flush() == 0


class UnwritableCounter:
    """A labelled counter whose value file cannot be written (a full disk)."""

    def inc(self, amount: float) -> None:
        raise OSError(28, "No space left on device")


def test_a_flush_that_cannot_write_a_series_writes_the_others_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given gathered changes of two series, one of whose value file cannot be written
    monkeypatch.setattr(values, "ValueClass", values.MutexValue)
    instruments = Instruments.create()
    written = instruments.child(instruments.messages, "frames", "autolog.make_frames", "succeeded")
    metrics = never_booted(tmp_path)
    metrics._tally.add(UnwritableCounter(), 1)  # type: ignore[arg-type]
    metrics._tally.add(written, 2)

    # When the worker flushes, Then nothing is raised into its hook or thread, the error is logged,
    # the other series is written, and nothing waits
    with caplog.at_level(logging.ERROR, logger="middleware.metrics"):
        metrics.flush()
    assert "Could not write" in caplog.text and "No space left" in caplog.text
    assert [sample.value for family in instruments.messages.collect() for sample in family.samples
            if sample.name == "autolog_messages_total"] == [2]
    assert len(metrics._tally) == 0
