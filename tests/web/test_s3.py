"""``s3://`` sources against a real S3-compatible server on loopback (moto's server mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from moto.server import ThreadedMotoServer

from autolog.errors import MediaMissing, SourceFetchFailed
from autolog.local_redis import free_port
from autolog.settings import Settings
from autolog.sources import S3Config, make_s3_client, materialise
from autolog.statuses import Status
from autolog.store import Store
from tests.conftest import SampleClips
from tests.web.conftest import KEY
from tests.web.test_webhooks import MINIO, minio_event
from web.app import create_app


@pytest.fixture(scope="module")
def s3_config() -> Iterator[S3Config]:
    """A moto S3 server on 127.0.0.1 for this module, with a ``footage`` bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    config = S3Config(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="test", secret_access_key="test")
    make_s3_client(config).create_bucket(Bucket="footage")
    yield config
    server.stop()


@pytest.fixture
def s3(s3_config: S3Config) -> Any:
    return make_s3_client(s3_config)


def test_object_is_downloaded_for_the_block_and_deleted_after(s3: Any, s3_config: S3Config, tmp_path: Path) -> None:
    s3.put_object(Bucket="footage", Key="day 1/LF 1409.mov", Body=b"frames")

    with materialise("s3://footage/day 1/LF 1409.mov", [], s3=s3_config, scratch_dir=tmp_path) as path:
        assert path.read_bytes() == b"frames"
        assert path.name == "LF_1409.mov"
        folder = path.parent

    assert not folder.exists()


def test_scratch_is_deleted_when_the_block_fails(s3: Any, s3_config: S3Config, tmp_path: Path) -> None:
    s3.put_object(Bucket="footage", Key="boom.mov", Body=b"x")

    with pytest.raises(RuntimeError), materialise("s3://footage/boom.mov", [], s3=s3_config,
                                                  scratch_dir=tmp_path) as path:
        raise RuntimeError(str(path))

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["s3://footage/missing.mov", "s3://no-such-bucket/x.mov"])
def test_missing_object_is_a_permanent_media_error(s3_config: S3Config, source: str, tmp_path: Path) -> None:
    with pytest.raises(MediaMissing), materialise(source, [], s3=s3_config, scratch_dir=tmp_path):
        pass


def test_unreachable_store_is_a_transient_error(tmp_path: Path) -> None:
    config = S3Config(endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id="a", secret_access_key="b")

    with pytest.raises(SourceFetchFailed), materialise("s3://footage/x.mov", [], s3=config, scratch_dir=tmp_path):
        pass


def test_uploaded_clip_announced_by_minio_runs_through_the_worker(
    drain: Callable[..., None], api_settings: Settings, sqlite_store: Store, s3: Any, s3_config: S3Config,
    test_media: SampleClips,
) -> None:
    s3.upload_file(str(test_media.path("cuts_noaudio.mp4")), "footage", "uploads/cuts no audio.mp4")
    settings = api_settings.replace(s3_endpoint_url=s3_config.endpoint_url, s3_access_key_id="test",
                                    s3_secret_access_key="test")
    app = create_app(settings, store=sqlite_store)
    client = TestClient(app, headers={"X-API-Key": KEY})
    try:
        event = minio_event("s3:ObjectCreated:Put", "footage", "uploads/cuts+no+audio.mp4")
        response = client.simulate_post("/webhook/minio", headers=MINIO, json=event)
        drain()

        [item_id] = response.json["created"]
        item = client.simulate_get(f"/items/{item_id}").json
        assert item["source"] == "s3://footage/uploads/cuts no audio.mp4"
        assert item["status"] == Status.AWAITING_USER_INPUT.value
        assert item["probe"]["duration_s"] > 0
        assert {artifact["kind"] for artifact in item["artifacts"]} >= {"poster", "contact_sheet", "sample"}
    finally:
        app.close()
