"""Falcon resources: one class per route shape; each validates, calls one function, shapes the answer."""

from __future__ import annotations
