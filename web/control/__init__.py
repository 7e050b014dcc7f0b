"""What the API does, behind the responders: each function is one use case."""

from __future__ import annotations
