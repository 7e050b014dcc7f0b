"""A real stack scraped by a real Prometheus: two worker processes, their exporter, the API's /metrics.

One ``dramatiq --processes 2`` group serves every queue with its exporter on a private port;
this process serves the API's registry as a minimal WSGI app; a private Prometheus (1 s
scrapes, temporary storage, the shipped alert rules) scrapes both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import redis
from prometheus_client import make_wsgi_app

from autolog.context import Context
from autolog.local_redis import free_port
from autolog.metrics_multiproc import multiprocess_registry
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem, Store
from autolog.worker_presence import read_workers
from pipelines import actions
from tests.conftest import REPO, SampleClips, wait_for
from tests.metric_names import PROMETHEUS_METRICS, alert_queries, dashboard_queries, exported_names, queried_names

pytestmark = pytest.mark.slow

DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")
ITEMS = 4


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


def http_get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: bytes = answer.read()
            return body
    except OSError:
        return None


@dataclass
class Stack:
    context: Context
    metrics_dir: Path
    exporter_url: str
    api_url: str
    prometheus_url: str
    item_ids: list[str]

    def query(self, promql: str) -> dict[str, Any]:
        body = http_get(f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert body is not None, f"Prometheus did not answer {promql!r}"
        answer: dict[str, Any] = json.loads(body)
        return answer


def prometheus_config(path: Path, exporter: str, api: str) -> Path:
    path.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(REPO / "ops" / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "autolog-workers", "static_configs": [{"targets": [exporter]}]},
            {"job_name": "autolog-api", "static_configs": [{"targets": [api]}]},
        ],
    }))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, test_media: SampleClips, redis_url: str) -> Iterator[Stack]:
    """The stack after a run of ``ITEMS`` clips and one bad file through two worker processes."""
    from actors import broker, services
    from middleware import api_metrics_registry

    tmp = tmp_path_factory.mktemp("prometheus")
    flush_redis(redis_url)
    database_url = f"sqlite:///{tmp / 'autolog.db'}"
    settings = Settings.from_env()
    store = Store.open(database_url)
    context = Context.build(settings, store=store)
    services().install(context)
    exporter_port, api_port, prometheus_port = free_port(), free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "AUTOLOG_METRICS_PORT": str(exporter_port),
           "AUTOLOG_METRICS_DIR": str(tmp / "metrics"), "AUTOLOG_WORKER_POOL": "all"}
    log = (tmp / "workers.log").open("ab")
    workers = subprocess.Popen(
        [DRAMATIQ, "actors", "pipelines", "--processes", "2", "--threads", "2", "--path", str(REPO)],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = make_server("127.0.0.1", api_port, make_wsgi_app(
        api_metrics_registry(settings, broker=broker, client=broker.client, store=store, pools=["all"])),
        server_class=WSGIServer, handler_class=QuietHandler)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    prometheus_bin = shutil.which("prometheus")
    assert prometheus_bin, "prometheus is missing: `make system-deps` installs Debian's prometheus package"
    config = prometheus_config(tmp / "prometheus.yml", f"127.0.0.1:{exporter_port}", f"127.0.0.1:{api_port}")
    prometheus = subprocess.Popen(
        [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Both processes live before any work is queued, so both get a share of it.
        wait_for(lambda: sum(entry.live for entry in read_workers(
            broker.client, broker.namespace, timeout_ms=settings.heartbeat_timeout_ms,
            now_ms=int(time.time() * 1000))) == 2, timeout_s=60, what="two live worker processes")
        ids = [f"prom{index}" for index in range(ITEMS)]
        actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)
                                 for item_id in ids] + [NewItem("prombad", str(test_media.path("empty.mp4")))])
        wait_for(lambda: all(store.items.get(item_id).status is Status.AVID_DESCRIPTION for item_id in ids)
                 and store.items.get("prombad").dead_lettered, timeout_s=150, what="the pipeline run")
        yield Stack(context=context, metrics_dir=tmp / "metrics", exporter_url=f"http://127.0.0.1:{exporter_port}",
                    api_url=f"http://127.0.0.1:{api_port}", prometheus_url=f"http://127.0.0.1:{prometheus_port}",
                    item_ids=ids)
    finally:
        for process in (prometheus, workers):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        api.shutdown()
        api.server_close()
        log.close()
        services().uninstall()
        store.close()
        flush_redis(redis_url)


def flush_redis(url: str) -> None:
    """Empty the Redis database at ``url`` with a client closed at once (its socket is not left to the collector)."""
    with redis.Redis.from_url(url) as client:
        client.flushdb()


def test_counts_from_two_worker_processes_are_summed_by_the_exporter(stack: Stack) -> None:
    # Given the steps each worker process ran, from the timeline
    events = [event for item_id in stack.item_ids for event in stack.context.store.timeline.for_item(item_id)
              if event.event == "succeeded"]
    by_pid: dict[str, int] = {}
    for event in events:
        assert event.worker is not None
        by_pid[event.worker.split(":")[1]] = by_pid.get(event.worker.split(":")[1], 0) + 1

    # When the pool's exporter is scraped (a worker writes its counts every second: until it reports them all)
    def exported() -> int:
        body = http_get(f"{stack.exporter_url}/metrics")
        return -1 if body is None else int(sum(
            value for name, labels, value in _samples(body.decode()) if name == "autolog_messages_total"
            and labels.get("outcome") == "succeeded" and labels.get("actor_name") != "autolog.route"))

    wait_for(lambda: exported() == len(events), timeout_s=30, interval_s=0.25, what="the exporter to report every step",
             explain=lambda: f"exported {exported()} of {len(events)}")

    # Then both processes did part of the work, and the exporter reports the sum
    assert len(by_pid) == 2, by_pid
    assert len(events) == ITEMS * 5
    per_process = {pid: _process_total(stack.metrics_dir, pid) for pid in by_pid}
    assert per_process == by_pid


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [(sample.name, sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples]


def _process_total(folder: Path, pid: str) -> int:
    """Sum one process's own file, as if it were the only process."""
    alone = folder.parent / f"alone-{pid}"
    alone.mkdir(exist_ok=True)
    shutil.copy(folder / f"counter_{pid}.db", alone / f"counter_{pid}.db")
    registry = multiprocess_registry(alone)
    return int(sum(sample.value for family in registry.collect() if family.name == "autolog_messages"
                   for sample in family.samples if sample.labels.get("outcome") == "succeeded"
                   and sample.labels["actor_name"] != "autolog.route" and sample.name.endswith("_total")))


def test_prometheus_scrapes_the_workers_and_the_api_and_answers_promql(stack: Stack) -> None:
    def both_up() -> bool:
        answer = stack.query('sum by (job) (up{job=~"autolog-.*"})')
        return sorted((series["metric"]["job"], series["value"][1]) for series in answer["data"]["result"]) == [
            ("autolog-api", "1"), ("autolog-workers", "1")]

    def values(promql: str) -> list[str]:
        return [series["value"][1] for series in stack.query(promql)["data"]["result"]]

    wait_for(both_up, timeout_s=60, what="Prometheus to scrape both targets")

    # The run ended less than a scrape interval ago: wait for a scrape that saw the end.
    wait_for(lambda: values('max by (status) (autolog_status_items{status="7 - Avid Description"})')
             == [str(ITEMS)], timeout_s=30, what="the finished items in Prometheus")
    wait_for(lambda: values('sum (autolog_messages_total{outcome="succeeded", actor_name="autolog.probe"})')
             == [str(ITEMS)], timeout_s=30, what="the workers' counts in Prometheus")


def test_every_dashboard_and_alert_query_runs_and_finds_its_series(stack: Stack) -> None:
    # Given what the exporters declare: rate-limit families are empty when no limit is configured
    text = b"".join(wait_for(lambda url=url: http_get(f"{url}/metrics"), timeout_s=30, what=url)
                    for url in (stack.exporter_url, stack.api_url)).decode()
    _, declared_only = exported_names(text)
    assert all(name.startswith("autolog_rate_limit_") for name in declared_only)
    wait_for(lambda: stack.query("autolog_pipeline_duration_seconds_count")["data"]["result"], timeout_s=60,
             what="the first scrapes")

    # When Prometheus is asked for every metric a panel or an alert queries
    missing = {}
    for query, names in queried_names().items():
        absent = {name for name in names - declared_only - PROMETHEUS_METRICS
                  if not stack.query(f'count({{__name__="{name}"}})')["data"]["result"]}
        if absent:
            missing[query] = absent

    # Then each has series, and every query is valid PromQL for this Prometheus
    assert not missing
    exprs = [expr for exprs in dashboard_queries().values() for expr in exprs] + list(alert_queries().values())
    invalid = {expr: answer.get("error") for expr in exprs
               if (answer := stack.query(expr.replace("$__rate_interval", "1m")))["status"] != "success"}
    assert not invalid
