"""API keys, the dashboard behind them, and JSON errors everywhere."""

from __future__ import annotations

import base64
import logging

import pytest
from falcon.testing import TestClient

from tests.web.conftest import KEY, OTHER_KEY
from web.app import AutologApi


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()}


@pytest.mark.parametrize("route", ["/items", "/queue/status", "/workers/status", "/jobs", "/openapi.json",
                                   "/dead-letters", "/items/LF1"])
def test_routes_need_an_api_key(anonymous: TestClient, route: str) -> None:
    response = anonymous.simulate_get(route)

    assert response.status_code == 401
    assert response.json["title"] == "401 Unauthorized"
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("headers", [{"X-API-Key": "wrong"}, {"X-API-Key": KEY[:-1]}, basic("wrong"),
                                     {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!!"}])
def test_wrong_keys_are_401(anonymous: TestClient, headers: dict[str, str]) -> None:
    assert anonymous.simulate_post("/run/lf_queue_batch", headers=headers, json={}).status_code == 401


@pytest.mark.parametrize("headers", [{"X-API-Key": KEY}, {"X-API-Key": OTHER_KEY}, basic(KEY),
                                     {"Authorization": f"Bearer {OTHER_KEY}"}])
def test_every_configured_key_works_in_every_form(anonymous: TestClient, headers: dict[str, str]) -> None:
    assert anonymous.simulate_get("/queue/status", headers=headers).status_code == 200


def test_health_and_metrics_are_open(anonymous: TestClient) -> None:
    assert anonymous.simulate_get("/health").status_code == 200
    metrics = anonymous.simulate_get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")


def test_no_keys_configured_refuses_everything(api: AutologApi) -> None:
    from web.app import AutologApi as App

    locked = App(api.services.__class__(**{**api.services.__dict__,
                                           "settings": api.services.settings.replace(api_keys=())}),
                 api.metrics)

    response = TestClient(locked).simulate_get("/items", headers={"X-API-Key": KEY})

    assert response.status_code == 401
    assert "AUTOLOG_API_KEYS" in response.json["description"]


def test_dashboard_sits_behind_the_same_keys(anonymous: TestClient) -> None:
    refused = anonymous.simulate_get("/dashboard/")
    browser = anonymous.simulate_get("/dashboard/", headers=basic(KEY))
    tool = anonymous.simulate_get("/dashboard/", headers={"X-API-Key": KEY})
    bare = anonymous.simulate_get("/dashboard", headers={"X-API-Key": KEY})

    assert (refused.status_code, refused.headers["WWW-Authenticate"].startswith("Basic")) == (401, True)
    assert refused.json["description"]
    assert browser.status_code == tool.status_code == 200
    assert "Dramatiq Dashboard" in browser.text and "probe" in browser.text
    assert (bare.status_code, bare.headers["location"]) == (308, "/dashboard/")


def test_keys_are_never_logged(anonymous: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    anonymous.simulate_get("/items", headers={"X-API-Key": KEY})
    anonymous.simulate_get("/items", headers={"X-API-Key": "wrong-key-value"})

    assert KEY not in caplog.text and "wrong-key-value" not in caplog.text


@pytest.mark.parametrize(("method", "route", "status"), [
    ("GET", "/no/such/route", 404), ("DELETE", "/items", 405), ("GET", "/run/lf_queue", 405),
])
def test_http_errors_are_json_with_title_and_description(client: TestClient, method: str, route: str,
                                                         status: int) -> None:
    response = client.simulate_request(method, route)

    assert response.status_code == status
    assert set(response.json) == {"title", "description"}
    assert "Traceback" not in response.text


def test_oversized_body_is_413_before_it_is_read(client: TestClient) -> None:
    response = client.simulate_post("/items", body=b"x" * (4 * 1024 * 1024 + 1),
                                    headers={"Content-Type": "application/json"})

    assert response.status_code == 413
