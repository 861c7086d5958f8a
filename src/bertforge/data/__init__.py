"""Pretraining data: raw text -> sentences -> token shards on disk -> instances -> masked batches.

:mod:`~bertforge.data.corpus` streams documents out of text files (with
:mod:`~bertforge.data.sentences` for splitting), :mod:`~bertforge.data.build` tokenises them in
parallel into a sharded dataset directory, :mod:`~bertforge.data.dataset` reads one back
memory-mapped; :mod:`~bertforge.data.instances`, :mod:`~bertforge.data.masking` and
:mod:`~bertforge.data.pretraining` turn it into NSP/SOP instances and masked batches (the masking
strategies' parts live in the ``masking_*`` modules beside :mod:`~bertforge.data.masking`).

Names are imported on first use, so ``import bertforge.data`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Corpus": "corpus",
    "read_corpus": "corpus",
    "split_sentences": "sentences",
    "build_dataset": "build",
    "BuildSummary": "build",
    "TokenDataset": "dataset",
    "InstanceConfig": "instances",
    "build_instances": "instances",
    "MaskingConfig": "masking_config",
    "mask_instance": "masking",
    "PretrainingData": "pretraining",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
