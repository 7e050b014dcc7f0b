"""The metrics middleware before boot (as in gunicorn), and the series it prepares."""

from __future__ import annotations

from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from prometheus_client import values

from autolog.metrics_instruments import Instruments
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
    metrics.after_enqueue(broker, message, 100)
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
