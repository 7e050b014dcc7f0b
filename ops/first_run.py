"""First run: an API key made for an operator who configured none."""

from __future__ import annotations

import os
import secrets

from autolog.settings import Settings


def ensure_api_key(settings: Settings) -> str | None:
    """Make and keep an API key when none is configured; return it the one time it is made.

    The key is written to ``settings.api_key_file`` (under the var folder) with owner-only
    permissions (0600), created exclusively so two first runs never overwrite each other;
    ``Settings.from_env`` reads it whenever ``AUTOLOG_API_KEYS`` is unset. Returns None when
    a key is configured or was made before.
    """
    if settings.api_keys:
        return None
    path = settings.api_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key
