"""autolog's HTTP API: a Falcon app served by gunicorn, with dramatiq-dashboard at /dashboard/.

The entry point is ``web.app:create_app``. This package re-exports nothing: importing
``web.app`` imports ``actors``, which builds the broker from the environment.
"""

from __future__ import annotations
