"""The Grafana dashboard and the alerts: well formed, and every query names a known metric."""

from __future__ import annotations

import json

import yaml

from tests.conftest import REPO
from tests.metric_names import alert_queries, dashboard_queries, metric_names, queried_names

GRAFANA = REPO / "ops" / "grafana"

#: What the dashboard must show, as metric names some panel queries.
REQUIRED = {
    "per-step throughput": "autolog_messages_total",
    "latency p50/p95": "autolog_message_duration_seconds_bucket",
    "failures": "autolog_messages_dead_lettered_total",
    "queue depth": "autolog_queue_ready_messages",
    "queue age": "autolog_queue_oldest_message_age_seconds",
    "status funnel": "autolog_status_items",
    "rate limiter": "autolog_rate_limit_calls_total",
    "workers": "autolog_pool_live_processes",
}


def test_every_panel_has_a_unique_id_a_place_and_the_datasource_variable() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "autolog.json").read_text())
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]

    assert len(ids) == len(set(ids))
    assert all({"x", "y", "w", "h"} <= set(panel["gridPos"]) for panel in panels)
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in panels if panel["type"] != "row")
    assert [variable["name"] for variable in dashboard["templating"]["list"]] == ["datasource"]
    assert all(panel.get("targets") for panel in panels if panel["type"] != "row")


def test_the_rate_limiter_panels_say_why_they_may_be_empty() -> None:
    # With no Gemini key nothing is rate limited: an empty panel must not read as a broken scrape.
    panels = json.loads((GRAFANA / "dashboards" / "autolog.json").read_text())["panels"]
    limiter = [panel for panel in panels if panel["type"] != "row"
               and any("autolog_rate_limit_" in target["expr"] for target in panel["targets"])]

    assert len(limiter) == 3
    assert all("AUTOLOG_GEMINI_API_KEY" in panel["description"] for panel in limiter)
    assert all("no Gemini key" in panel["fieldConfig"]["defaults"]["noValue"] for panel in limiter)


def test_the_dashboard_shows_every_required_view() -> None:
    queried = set().union(*(metric_names(expr) for exprs in dashboard_queries().values() for expr in exprs))

    missing = {view: name for view, name in REQUIRED.items() if name not in queried}

    assert not missing


def test_the_alerts_cover_backlog_age_dead_letters_errors_rate_limits_and_workers() -> None:
    assert {"AutologBacklogGrowing", "AutologOldestMessageTooOld", "AutologDeadLettersPresent",
            "AutologHighErrorRate", "AutologRateLimitSaturated", "AutologNoLiveWorkers"} <= set(alert_queries())


def test_metric_names_are_read_from_promql_without_functions_or_labels() -> None:
    expr = ('histogram_quantile(0.95, sum by (actor_name, le) (rate(autolog_message_duration_seconds_bucket'
            '{outcome="succeeded"}[5m]))) / max by (queue_name) (autolog_queue_ready_messages offset 15m) or up')

    assert metric_names(expr) == {"autolog_message_duration_seconds_bucket", "autolog_queue_ready_messages", "up"}


def test_every_query_names_at_least_one_metric() -> None:
    assert all(names for names in queried_names().values())


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "autolog.yml").read_text())
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "autolog.yml").read_text())

    assert providers["providers"][0]["type"] == "file"
    assert datasources["datasources"][0]["type"] == "prometheus"
