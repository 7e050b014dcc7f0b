"""Metric names: those the dashboards and alerts query, and those a scrape exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO

DASHBOARDS = REPO / "ops" / "grafana" / "dashboards"
ALERTS = REPO / "ops" / "prometheus" / "alerts.yml"

#: Metrics Prometheus makes itself, not any exporter.
PROMETHEUS_METRICS = frozenset({"up"})

#: A metric name in PromQL: ours all start with ``autolog_``; ``up`` is Prometheus's.
_NAME = re.compile(r"\b(autolog_[a-zA-Z0-9_]+|up)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    return set(_NAME.findall(expr))


def _targets(panels: list[dict[str, Any]]) -> list[str]:
    exprs = []
    for panel in panels:
        exprs.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
        exprs.extend(_targets(panel.get("panels", [])))
    return exprs


def dashboard_queries(folder: Path = DASHBOARDS) -> dict[str, list[str]]:
    """Return every panel query, by dashboard file name."""
    return {path.name: _targets(json.loads(path.read_text())["panels"]) for path in sorted(folder.glob("*.json"))}


def alert_queries(path: Path = ALERTS) -> dict[str, str]:
    """Return each alert's expression, by alert name."""
    document = yaml.safe_load(path.read_text())
    return {rule["alert"]: rule["expr"] for group in document["groups"] for rule in group["rules"] if "alert" in rule}


def queried_names() -> dict[str, set[str]]:
    """Return, per dashboard panel query or alert, the metrics it needs."""
    queries = {f"{name}: {expr}": metric_names(expr) for name, exprs in dashboard_queries().items() for expr in exprs}
    queries.update({f"alert {name}": metric_names(expr) for name, expr in alert_queries().items()})
    return queries


#: The sample names a family of each type exports.
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"), "untyped": ("",)}


def exported_names(text: str) -> tuple[set[str], set[str]]:
    """Return the sample names a scrape has values for, and those only declared (no samples)."""
    with_samples: set[str] = set()
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        names = {sample.name for sample in family.samples}
        with_samples |= names
        if not names:
            declared |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return with_samples, declared
