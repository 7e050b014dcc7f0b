"""Typed reads from JSON-decoded mappings, for the ``from_dict`` constructors.

Each reader raises ``ValueError`` naming the key, so a bad stored record fails
loudly instead of producing a half-typed dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping


def _require(data: Mapping[str, object], key: str) -> object:
    try:
        return data[key]
    except KeyError as ex:
        raise ValueError(f"missing field {key!r}") from ex


def read_str(data: Mapping[str, object], key: str) -> str:
    """Return ``data[key]`` as a string."""
    value = _require(data, key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, not {type(value).__name__}")
    return value


def read_optional_str(data: Mapping[str, object], key: str) -> str | None:
    """Return ``data[key]`` as a string, or None when it is null or absent."""
    if data.get(key) is None:
        return None
    return read_str(data, key)


def read_int(data: Mapping[str, object], key: str) -> int:
    """Return ``data[key]`` as an integer (booleans are refused)."""
    value = _require(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"field {key!r} must be an integer, not {type(value).__name__}")
    return value


def read_float(data: Mapping[str, object], key: str) -> float:
    """Return ``data[key]`` as a float; integers are accepted (JSON drops ``.0``)."""
    value = _require(data, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"field {key!r} must be a number, not {type(value).__name__}")
    return float(value)


def read_bool(data: Mapping[str, object], key: str) -> bool:
    """Return ``data[key]`` as a boolean."""
    value = _require(data, key)
    if not isinstance(value, bool):
        raise ValueError(f"field {key!r} must be a boolean, not {type(value).__name__}")
    return value


def read_str_tuple(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    """Return ``data[key]`` (a list of strings) as a tuple; absent means empty."""
    value = data.get(key, ())
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"field {key!r} must be a list of strings")
    return tuple(str(item) for item in value)


def read_mapping(data: Mapping[str, object], key: str) -> dict[str, object]:
    """Return ``data[key]`` (an object with string keys) as a dict; absent means empty."""
    value = data.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(name, str) for name in value):
        raise ValueError(f"field {key!r} must be an object with string keys")
    return {str(name): item for name, item in value.items()}
