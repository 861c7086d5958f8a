"""Writing a resolved pretraining config back as TOML, itself a valid recipe: unset optional keys
become comments (TOML has no null).
"""

from __future__ import annotations

import json
from typing import Any

from .pretrain_config import PretrainConfig


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def _toml_table(values: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in values.items():
        if value is None:
            lines.append(f"# {key} is unset")
        elif not (isinstance(value, list) and value and isinstance(value[0], dict)):
            lines.append(f"{key} = {_toml_value(value)}")
    return lines


def dump_toml(config: PretrainConfig) -> str:
    """The config as a TOML recipe (unset optional keys become comments, TOML has no null)."""
    data = config.to_dict()
    lines = [
        "# Resolved bertforge pretraining config; reusable as a recipe.",
        *_toml_table({k: v for k, v in data.items() if not isinstance(v, dict)}),
    ]
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines += ["", f"[{section}]", *_toml_table(values)]
        for key, value in values.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                for table in value:
                    lines += ["", f"[[{section}.{key}]]", *_toml_table(table)]
    return "\n".join(lines) + "\n"
