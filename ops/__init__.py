"""Operations: the ``autolog`` CLI and the worker-pool manager."""

from __future__ import annotations

from ops.pools import PoolManager, PoolSpec, PoolStatus, pool_specs
from ops.stack import Stack

__all__ = [
    # Worker pools
    "PoolManager",
    "PoolSpec",
    "PoolStatus",
    "pool_specs",
    # The whole stack
    "Stack",
]
