"""autolog's HTTP API: a Falcon app served by gunicorn, with dramatiq-dashboard at /dashboard/.

The entry point is ``web.app:create_app``. This package re-exports nothing on purpose:
importing ``web.app`` imports ``actors``, which builds the broker from the environment,
and ``autolog up``/``down`` import ``web.server`` before (or without) a Redis being known.
"""

from __future__ import annotations
