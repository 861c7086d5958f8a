"""A pretraining run as one typed config tree, read from a TOML recipe and ``--section.key value`` flags.

The groups follow Cramming: *what model* (``[model]``), *what data* (``[data]``), *how to optimise*
(``[optim]``, ``[schedule]``) and *how to run* (``[train]``), plus the output directory. The
defaults are a small sanity run. Every key is checked against the dataclass fields, so a typo is
an error that lists the valid keys instead of a silently ignored setting, and every value is
coerced to the field's declared type (CLI values arrive as strings).

The resolved config is written back as TOML (:func:`dump_toml`), which is itself a valid recipe:
``bertforge pretrain --config OUT/resolved_config.toml`` reruns the same thing.

The parts live in their own modules, and this one re-exports their public names: the config
tree in :mod:`.pretrain_config`, building it from untyped values in :mod:`.recipe_coercion`,
writing it back in :mod:`.recipe_dump`, and :func:`parse_duration` in :mod:`.durations`. Here:
reading the TOML file and applying the overrides.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published before it joined the standard library
    import tomli as tomllib

from ..errors import BertForgeError
from ..fileio import read_text_file
from .durations import parse_duration
from .pretrain_config import (
    DEVICES,
    DTYPES,
    OBJECTIVES,
    PARALLEL,
    DataSection,
    DistillSection,
    ModelSection,
    Phase,
    PretrainConfig,
    TrainSection,
)
from .recipe_coercion import build_dataclass, field_types, unknown_key_error
from .recipe_dump import dump_toml

# Re-exported: callers imported these from here before the parts had modules of their own.
__all__ = [
    "DEVICES",
    "DTYPES",
    "OBJECTIVES",
    "PARALLEL",
    "DataSection",
    "DistillSection",
    "ModelSection",
    "Phase",
    "PretrainConfig",
    "TrainSection",
    "config_from_dict",
    "dump_toml",
    "load_recipe",
    "parse_duration",
    "parse_overrides",
]


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """``["--optim.lr", "1e-4", "--train.max_steps=3"]`` -> ``{"optim.lr": "1e-4", "train.max_steps": "3"}``."""
    overrides: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise BertForgeError(
                f"unexpected argument {arg!r}; recipe overrides look like --section.key VALUE"
            )
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(argv):
            i += 1
            value = argv[i]
        else:
            raise BertForgeError(f"--{key} needs a value, e.g. --{key} VALUE")
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def _apply_override(raw: dict[str, Any], key: str, value: str) -> None:
    parts = key.split(".")
    sections = field_types(PretrainConfig)
    if parts[0] not in sections:
        raise unknown_key_error(
            key, [f"{s}.KEY" if dataclasses.is_dataclass(t) else s for s, t in sections.items()], "the recipe"
        )
    if dataclasses.is_dataclass(sections[parts[0]]):
        if len(parts) != 2:
            raise BertForgeError(
                f"override {key!r} must name one key of a section, e.g. --{parts[0]}.KEY VALUE"
            )
        section = raw.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise BertForgeError(f"recipe key {parts[0]!r} must be a table")
        section[parts[1]] = value
    elif len(parts) == 1:
        raw[key] = value
    else:
        raise unknown_key_error(key, sections, "the recipe")


def config_from_dict(raw: dict[str, Any]) -> PretrainConfig:
    return build_dataclass(PretrainConfig, raw, "")  # type: ignore[no-any-return]


def load_recipe(path: str | Path | None = None, overrides: dict[str, str] | None = None) -> PretrainConfig:
    """Read a TOML recipe (or start from the defaults) and apply ``section.key -> value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        text = read_text_file(path, "recipe", "pass a TOML file (see the recipes/ directory)")
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise BertForgeError(f"recipe {path} is not valid TOML: {err}") from None
    for key, value in (overrides or {}).items():
        _apply_override(raw, key, value)
    return config_from_dict(raw)
