"""``/health`` reports the sweep: degraded when no sweep holds its lease in Redis, or this machine's died."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from falcon.testing import TestClient

from autolog.lease import Lease
from autolog.local_redis import free_port
from autolog.settings import Settings
from autolog.store import Store
from ops.stack import Stack
from pipelines.discovery import LEASE_KEY
from tests.conftest import wait_for
from tests.web.conftest import KEY, http


def test_health_is_degraded_naming_the_sweep_once_this_machines_sweep_is_killed(
    serve_api: Callable[[dict[str, str]], str], tmp_path: Path, redis_client: redis.Redis,
) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'sweep.db'}", "AUTOLOG_NAMESPACE": f"sweep-health-{tmp_path.name}",
           "AUTOLOG_DISCOVERY_INTERVAL_S": "1", "AUTOLOG_WATCH_FOLDERS": "off",
           "AUTOLOG_METRICS_PORT_BASE": str(free_port())}
    base = serve_api(env)
    settings = Settings.from_env({**os.environ, **env, "AUTOLOG_VAR_DIR": str(tmp_path / "api-var")})
    try:
        # Given every pool stopped on purpose and the sweep started, holding its lease: healthy
        assert http("POST", f"{base}/workers/stop", headers={"X-API-Key": KEY})[0] == 200
        status, started = http("POST", f"{base}/run/lf_discovery", headers={"X-API-Key": KEY})
        assert status == 200, started
        wait_for(lambda: http("GET", f"{base}/health")[1]["status"] == "healthy", what="the sweep to take its lease")

        # When the sweep is killed
        os.kill(started["pid"], signal.SIGKILL)

        # Then /health is degraded and says the sweep is down here, at once (its lease has not expired yet)
        _, health = wait_for(lambda: (answer := http("GET", f"{base}/health"))[1]["status"] == "degraded" and answer,
                             timeout_s=10, what="/health to report the sweep")
        assert health["sweep"]["state"] == "down" and health["sweep"]["running_here"] is False
        assert all(pool["state"] == "stopped" for pool in health["pools"].values())
    finally:
        Stack(settings).down(timeout_s=10)


def health_document(client: TestClient) -> dict[str, Any]:
    """GET /health's document."""
    document: dict[str, Any] = client.simulate_get("/health").json
    return document


def test_health_follows_another_hosts_sweep_by_its_lease_and_is_degraded_once_it_expires(
    api_settings: Settings, sqlite_store: Store, redis_client: redis.Redis, tmp_path: Path,
) -> None:
    from web.app import create_app

    settings = api_settings.replace(namespace=f"sweep-lease-{tmp_path.name}")
    app = create_app(settings, store=sqlite_store)
    try:
        client = TestClient(app, headers={"X-API-Key": KEY})
        # Given no sweep on this machine, and one on another host holding the lease
        lease = Lease(redis_client, f"{settings.namespace}:{LEASE_KEY}", ttl_ms=1000, owner="other-host:42")
        assert lease.acquire()

        # Then /health names it as the sweep that acts
        assert health_document(client)["sweep"] == {"state": "ok", "lease_holder": lease.token, "running_here": False}

        # When that sweep stops renewing (killed, its host gone), the lease expires and /health says so
        health = wait_for(lambda: (document := health_document(client))["sweep"]["state"] == "down" and document,
                          timeout_s=10, what="the lease to expire")
        assert health["sweep"] == {"state": "down", "lease_holder": None, "running_here": False}
        assert health["status"] == "degraded"
    finally:
        app.close()
