"""The webhook deliveries table: migration 0002 matches the model; a delivery is accepted once."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from autolog.settings import Settings
from autolog.store import NewItem, Store
from autolog.store.deliveries import Deliveries, WebhookDelivery


def test_migration_0002_matches_the_model(store: Store) -> None:
    wanted = MetaData()
    WebhookDelivery.__table__.to_metadata(wanted)

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), wanted)

    assert [diff for diff in differences if "webhook_deliveries" in repr(diff) and diff[0] != "remove_table"] == []


def test_a_delivery_and_its_items_are_stored_together_once(store: Store) -> None:
    from sqlalchemy.orm import sessionmaker

    deliveries = Deliveries(sessionmaker(store.engine, expire_on_commit=False))

    first = deliveries.accept("g-1", webhook="ingest", body_sha256="0" * 64, items=[NewItem("G1", "/a")])
    again = deliveries.accept("g-1", webhook="ingest", body_sha256="0" * 64, items=[NewItem("G1", "/a")])

    assert (first.duplicate, again.duplicate, again.item_ids) == (False, True, ("G1",))
    assert [item.id for item in store.items.list()] == ["G1"]


def test_new_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({
        "AUTOLOG_MINIO_WEBHOOK_TOKEN": "t", "AUTOLOG_INGEST_WEBHOOK_SECRET": "s", "AUTOLOG_S3_ENDPOINT_URL": "http://s3",
        "AUTOLOG_S3_ACCESS_KEY_ID": "a", "AUTOLOG_S3_SECRET_ACCESS_KEY": "b", "AUTOLOG_S3_REGION": "eu-west-1",
        "AUTOLOG_DISCOVERY_INTERVAL_S": "5", "AUTOLOG_DISCOVERY_STUCK_AFTER_S": "60", "AUTOLOG_API_WORKERS": "3",
        "AUTOLOG_API_THREADS": "8",
    })

    assert (settings.minio_webhook_token, settings.ingest_webhook_secret) == ("t", "s")
    assert (settings.s3_endpoint_url, settings.s3_access_key_id, settings.s3_secret_access_key,
            settings.s3_region) == ("http://s3", "a", "b", "eu-west-1")
    assert (settings.discovery_interval_s, settings.discovery_stuck_after_s) == (5.0, 60.0)
    assert (settings.api_workers, settings.api_threads) == (3, 8)
