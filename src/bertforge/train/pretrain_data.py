"""The pretraining loop's view of the data: the tokenizer, per-phase batches, a resumable cursor
and the fixed evaluation batches.

The data pipeline itself (instances, masking, collation) lives in :mod:`bertforge.data`; this module
only wires a :class:`~.recipe.PretrainConfig` to it and keeps the exact position in the stream
(epoch, global batch) that a checkpoint records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..data.dataset import read_manifest
from ..errors import BertForgeError
from .pretrain_config import Phase, PretrainConfig

log = logging.getLogger(__name__)

EVAL_SEED = 12345  # every evaluation sees the same masked eval batches


def tokenizer_path(config: PretrainConfig) -> Path:
    """``data.tokenizer``, else a tokenizer stored in the dataset directory (``DATASET/tokenizer``)."""
    if config.data.tokenizer is not None:
        return Path(config.data.tokenizer)
    dataset = Path(config.data.dataset or ".")
    read_manifest(dataset)  # not a dataset at all is the error to show, not its missing tokenizer
    for candidate in (dataset / "tokenizer", dataset):
        if (candidate / "vocab.txt").is_file() or (candidate / "tokenizer.json").is_file():
            return candidate
    raise BertForgeError(
        f"no tokenizer found for dataset {dataset}; pass --data.tokenizer DIR (the tokenizer the "
        "dataset was built with)"
    )


def build_pretraining_data(
    dataset: Any, config: PretrainConfig, phase: Phase, tokenizer: Any, seed: int
) -> Any:
    """Instances and masks for one phase (its sequence length, masking strategy and budget)."""
    from ..data.pretraining import PretrainingData

    strategy = config.phase_masking(phase)
    return PretrainingData(
        dataset,
        config.data.instance_config(phase.max_seq_length),
        config.data.masking_config(phase.max_predictions_per_seq, strategy),
        mask_token_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        special_ids=tokenizer.all_special_ids,
        seed=seed,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        tables=config.data.masking_tables(tokenizer, [strategy]),
    )


class DataCursor:
    """Hands out this rank's micro-batches in order, across epochs, and knows its exact position.

    ``position`` counts the global batches consumed in ``epoch``; with the same batch size and
    world size, ``PretrainingData.batches(epoch, start=position)`` continues exactly there.
    """

    def __init__(
        self, data: Any, batch_size: int, rank: int, world_size: int, epoch: int = 0, position: int = 0
    ):
        self.data, self.batch_size, self.rank, self.world_size = data, batch_size, rank, world_size
        self.epoch, self.position = epoch, position
        self._it: Iterator[dict[str, torch.Tensor]] | None = None

    def next(self) -> dict[str, torch.Tensor]:
        while True:
            if self._it is None:
                self._it = iter(
                    self.data.batches(
                        self.epoch,
                        self.batch_size,
                        start=self.position,
                        rank=self.rank,
                        world_size=self.world_size,
                    )
                )
            try:
                batch = next(self._it)
            except StopIteration:
                if self.position == 0:
                    raise BertForgeError(
                        f"the dataset has fewer than {self.batch_size * self.world_size} instances per "
                        "epoch, not one full batch; lower train.batch_size or use more text"
                    ) from None
                self.epoch, self.position, self._it = self.epoch + 1, 0, None
                continue
            self.position += 1
            return batch


def eval_batches(
    eval_set: Any, config: PretrainConfig, phase: Phase, tokenizer: Any, batch_size: int, max_batches: int
) -> list[dict[str, torch.Tensor]]:
    """Up to ``max_batches`` masked batches of the held-out split, the same every time (fixed seed)."""
    batches: list[dict[str, torch.Tensor]] = []
    if len(eval_set) > 0:
        data = build_pretraining_data(eval_set, config, phase, tokenizer, seed=EVAL_SEED)
        size = min(batch_size, data.epoch_size(0))
        if size > 0:
            for batch in data.batches(0, size, prefetch=0):
                batches.append(batch)
                if len(batches) == max_batches:
                    break
    if not batches:
        log.warning("the eval split has no instances; evaluation is skipped")
    return batches
