"""Building a dataclass tree from untyped values (TOML, or strings from the command line): every
key is checked against the fields, so a typo is an error listing the valid keys, and every value
is coerced to its field's declared type.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any

from ..errors import BertForgeError


def field_types(cls: type) -> dict[str, Any]:
    """Each field of the dataclass ``cls`` and its declared type (string annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def unknown_key_error(key: str, valid: typing.Iterable[str], where: str) -> BertForgeError:
    """The error for a key that ``where`` lacks: its valid keys, and the closest one if any."""
    valid = list(valid)
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return BertForgeError(f"unknown recipe key {key!r}{hint}; valid keys in {where}: {', '.join(valid)}")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` (from TOML, or a string from the command line) as type ``tp``, or a clear error."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)

    def bad(expected: str) -> BertForgeError:
        return BertForgeError(f"recipe key {key!r} must be {expected}, got {value!r}")

    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise bad("true or false")
    if tp is int:
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise bad("an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad("an integer")
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. budget = 3600
        raise bad("a string")
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text if text.startswith(("[", "{")) else f"[{text}]")
            except json.JSONDecodeError:
                raise bad("a list (e.g. 0.9,0.98 or JSON)") from None
        if not isinstance(value, list | tuple):
            raise bad("a list")
        if origin is tuple:
            if len(value) != len(args):
                raise bad(f"a list of {len(args)} values")
            return tuple(_coerce(a, v, key) for a, v in zip(args, value, strict=True))
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad("a table")
        return build_dataclass(tp, value, key)  # type: ignore[arg-type]
    raise AssertionError(f"recipe field {key} has unsupported type {tp}")


def build_dataclass(cls: type, data: dict[str, Any], where: str) -> Any:
    """``cls`` from ``data`` (a TOML table or override strings), each value coerced to its field's
    type; ``where`` names the table in errors ("" for the top level)."""
    fields = field_types(cls)
    for key in data:
        if key not in fields:
            raise unknown_key_error(
                f"{where}.{key}" if where else key, fields, f"[{where}]" if where else "the recipe"
            )
    kwargs = {}
    for name, tp in fields.items():
        if name in data:
            kwargs[name] = _coerce(tp, data[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except BertForgeError as err:
        if where and where not in str(err):
            raise BertForgeError(f"[{where}] {err}") from None
        raise
    except TypeError as err:  # a required field (Phase.fraction) is missing
        raise BertForgeError(f"[{where}] is incomplete: {err}; valid keys: {', '.join(fields)}") from None
