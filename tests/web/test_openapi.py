"""The OpenAPI document: it lists every route, and schemathesis finds no 5xx against it."""

from __future__ import annotations

import re

import falcon.inspect
import schemathesis
from falcon.testing import TestClient
from hypothesis import HealthCheck, given, settings

from tests.web.conftest import KEY
from web.app import AutologApi

#: Routes that start or stop processes, or stream for up to an hour (``max_s``): their own tests
#: drive them, the fuzzer does not.
UNFUZZED_ROUTES = r"^/(workers/(start|stop)|run/lf_discovery|stop/lf_discovery|items/\{item_id\}/progress|ui/progress)$"


def served_operations(api: AutologApi) -> set[tuple[str, str]]:
    """Every (path, method) the Falcon app routes, with ``{name:converter}`` fields written as ``{name}``."""
    operations = set()
    for route in falcon.inspect.inspect_routes(api.api):
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
        operations |= {(path, method.method.lower()) for method in route.methods if not method.internal}
    return operations


def documented_operations(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(path, method) for path, item in paths.items() for method in item}


def test_every_route_is_in_the_document_and_every_documented_route_is_served(client: TestClient,
                                                                             api: AutologApi) -> None:
    document = client.simulate_get("/openapi.json").json

    assert document["openapi"].startswith("3.")
    assert served_operations(api) - documented_operations(document) == set(), "routes missing from /openapi.json"
    assert documented_operations(document) - served_operations(api) == set(), "documented routes not served"


def test_the_redis_down_policy_is_documented(client: TestClient) -> None:
    document = client.simulate_get("/openapi.json").json

    assert '"queued": false' in document["info"]["description"]
    assert "discovery" in document["paths"]["/items"]["post"]["description"]


def test_no_operation_answers_a_server_error(api: AutologApi) -> None:
    # Hypothesis is driven directly: schemathesis's pytest plugin does not run on this pytest.
    loaded = schemathesis.openapi.from_wsgi("/openapi.json", api, headers={"X-API-Key": KEY}).exclude(
        path_regex=UNFUZZED_ROUTES)
    failures: list[str] = []
    operations = [result.ok() for result in loaded.get_all_operations()]

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers={"X-API-Key": KEY})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}")

        call()

    assert len(operations) > 30
    assert failures == []
