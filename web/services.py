"""The collaborators the API's resources share, built once per API process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy.orm import sessionmaker

from autolog.context import Context
from autolog.media import LocalAnalyzer, PocketsphinxTranscriber
from autolog.settings import Settings
from autolog.store import Store
from autolog.store.deliveries import Deliveries
from autolog.store.jobs import Jobs
from ops.discovery import DiscoveryProcess
from ops.pools import PoolManager
from pipelines.dead_letters import DeadLetters
from pipelines.queues import Queues


@dataclass(frozen=True)
class ApiServices:
    """Settings, the step context, the broker and the repositories and managers the API drives."""

    settings: Settings
    context: Context
    broker: Any
    redis_client: redis.Redis
    pools: PoolManager
    discovery: DiscoveryProcess
    jobs: Jobs
    deliveries: Deliveries
    queues: Queues
    dead_letters: DeadLetters

    @property
    def store(self) -> Store:
        """The database."""
        return self.context.store

    @classmethod
    def build(
        cls,
        settings: Settings,
        broker: Any,
        *,
        store: Store | None = None,
        redis_client: redis.Redis | None = None,
        pools: PoolManager | None = None,
        discovery: DiscoveryProcess | None = None,
    ) -> ApiServices:
        """Open what was not given: the store from settings, Redis through the broker's client."""
        store = store or Store.open(settings.sqlalchemy_url)
        # The API never runs a step; the context's analyzer and transcriber are never called.
        context = Context(settings=settings, store=store, analyzer=LocalAnalyzer(reason="not used by the API"),
                          transcriber=PocketsphinxTranscriber())
        client = redis_client or broker.client
        sessions = sessionmaker(store.engine, expire_on_commit=False)
        jobs = Jobs(sessions)
        queues = Queues.of_broker(broker, client=client)
        database_url = store.engine.url.render_as_string(hide_password=False)
        return cls(
            settings=settings, context=context, broker=broker, redis_client=client,
            pools=pools or PoolManager(settings),
            discovery=discovery or DiscoveryProcess(settings, env={"DATABASE_URL": database_url}),
            jobs=jobs, deliveries=Deliveries(sessions), queues=queues,
            dead_letters=DeadLetters(broker, context, jobs, queues=queues.names),
        )
