"""Fast sentence embeddings: tokenise once, sort by length, run the encoder, pool.

Where the time goes (2026-11, 2-core AVX-512/AMX CPU, all-MiniLM-L6-v2): the encoder's matmuls.
So the helper (1) tokenises every text in one parallel ``encode_batch`` call, (2) sorts by token
count so each batch pads to a near-equal length (padding is wasted matmul work), (3) runs under
``torch.inference_mode`` with no pooler and no attention mask for unpadded batches, and
(4) optionally runs a copy of the encoder with bfloat16 matmul weights, converted once
(:mod:`bertforge.inference`), which AMX and GPUs multiply several times faster.

Mean pooling averages the last hidden state over real tokens exactly as sentence-transformers
does, so embeddings match its ``encode`` for the same checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import BertForgeError
from .inference import INFERENCE_DTYPES, inference_model
from .ops import unpadded
from .pretrained import PreTrainedModel
from .tokenizer import BertTokenizer

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls", "max")


def _encoder_of(model: PreTrainedModel) -> Any:
    encoder = getattr(model, "base_model", None)
    if not callable(getattr(encoder, "sequence_output", None)):
        raise BertForgeError(
            f"cannot embed with a {type(model).__name__}; pass a bertforge base model or head model"
        )
    return encoder


class Embedder:
    """Reusable embedding runner; keeps a converted copy of the encoder when ``dtype`` is given.

    >>> embedder = Embedder(model, tokenizer, pooling="mean", normalize=True, dtype=torch.bfloat16)
    >>> vectors = embedder(["first text", "second text"])   # (2, hidden) float32, input order
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: BertTokenizer,
        *,
        pooling: str = "mean",
        normalize: bool = False,
        batch_size: int = 32,
        max_length: int | None = None,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if pooling not in POOLINGS:
            raise BertForgeError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        if batch_size < 1:
            raise BertForgeError(f"batch_size ({batch_size}) must be at least 1")
        encoder = _encoder_of(model)
        limit = encoder.config.max_sequence_length
        if max_length is None:
            max_length = min(tokenizer.model_max_length, limit)
        if not 2 <= max_length <= limit:
            raise BertForgeError(
                f"max_length ({max_length}) must be between 2 and the model's {limit} positions"
            )
        if dtype is not None and dtype not in INFERENCE_DTYPES:
            raise BertForgeError(
                f"dtype {dtype} is not supported; use torch.float32, torch.bfloat16 or torch.float16"
            )
        # A converted copy (made once per model, see bertforge.inference) when the dtype or device
        # differs: the caller's model keeps its dtype and device.
        encoder = inference_model(encoder, dtype, device)
        self.encoder = encoder  # put in eval mode per call only: the caller's model keeps its mode
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], **overrides: object) -> Embedder:
        """Load model and tokenizer from one directory, honouring sentence-transformers' settings
        (``sentence_bert_config.json`` max_seq_length, ``1_Pooling`` mode, a ``Normalize`` module)
        when present, so the result equals ``SentenceTransformer(path).encode``."""
        path = Path(path)
        settings: dict[str, object] = {}
        st_config = path / "sentence_bert_config.json"
        if st_config.is_file():
            settings["max_length"] = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        pooling_config = path / "1_Pooling" / "config.json"
        if pooling_config.is_file():
            modes = json.loads(pooling_config.read_text(encoding="utf-8"))
            for mode in POOLINGS:
                if modes.get(f"pooling_mode_{mode}_tokens") or modes.get(f"pooling_mode_{mode}_token"):
                    settings["pooling"] = mode
                    break
        modules = path / "modules.json"
        if modules.is_file():
            kinds = [m.get("type", "") for m in json.loads(modules.read_text(encoding="utf-8"))]
            settings["normalize"] = any(k.endswith("Normalize") for k in kinds)
        settings.update(overrides)
        from .auto import AutoConfig, AutoModel
        from .export.runtime import OnnxModel, is_onnx_export
        from .pipelines.common import check_vocabulary, load_tokenizer

        tokenizer = load_tokenizer(path)
        check_vocabulary(tokenizer, AutoConfig.from_pretrained(path), path)  # before loading warns
        model = OnnxModel.from_pretrained(path) if is_onnx_export(path) else AutoModel.from_pretrained(path)
        return cls(model, tokenizer, **settings)  # type: ignore[arg-type]

    @torch.inference_mode()
    def __call__(self, texts: str | Sequence[str], show_progress: bool = False) -> torch.Tensor:
        """Embed ``texts``; returns float32 (N, hidden) in input order, or (hidden,) for one str."""
        single = isinstance(texts, str)
        batch: list[str] = [texts] if isinstance(texts, str) else list(texts)
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                raise BertForgeError(f"texts[{i}] is a {type(text).__name__}; every text must be a str")
        hidden = self.encoder.config.hidden_size
        if not batch:
            return torch.empty(0, hidden)
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            out = self._embed(batch, hidden, show_progress)
        finally:
            self.encoder.train(was_training)
        return out[0] if single else out

    def _embed(self, batch: list[str], hidden: int, show_progress: bool) -> torch.Tensor:
        ids = self.tokenizer(batch, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")  # longest first: a memory error shows up at once
        out = torch.empty(len(batch), hidden)
        pad_id = self.tokenizer.pad_token_id
        device = self.encoder.device
        starts = range(0, len(batch), self.batch_size)
        if show_progress:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]

            starts = tqdm(starts, desc="embed", unit="batch")
        for start in starts:
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, row in enumerate(rows):
                input_ids[r, : lengths[row]] = ids[row]
                mask[r, : lengths[row]] = 1
            input_tensor = torch.from_numpy(input_ids).to(device)
            mask_tensor = torch.from_numpy(mask).to(device)
            states = self._encode(input_tensor, mask_tensor)
            out[torch.from_numpy(rows)] = self._pool(states, mask_tensor).float().cpu()
        if self.normalize:
            out = F.normalize(out, p=2, dim=-1)
        return out

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # The pooler is not needed for mean/cls/max pooling, so run embeddings + encoder only, on the
        # real tokens only (pooling never reads the padding).
        with unpadded():
            return self.encoder.sequence_output(input_ids, attention_mask)  # type: ignore[no-any-return]

    def _pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return states[:, 0]
        states = states.float()
        mask = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
        if self.pooling == "max":
            return states.masked_fill(mask == 0, torch.finfo(states.dtype).min).amax(dim=1)
        # Same arithmetic as sentence-transformers: sum over real tokens / max(count, 1e-9).
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def embed(
    model: PreTrainedModel,
    tokenizer: BertTokenizer,
    texts: str | Sequence[str],
    pooling: str = "mean",
    normalize: bool = False,
    batch_size: int = 32,
    dtype: torch.dtype | None = None,
    max_length: int | None = None,
    device: str | torch.device | None = None,
    show_progress: bool = False,
) -> torch.Tensor:
    """Embed ``texts`` with ``model``: float32 (N, hidden) in input order.

    ``pooling``: "mean" (average of real tokens, sentence-transformers' default), "cls" (the [CLS]
    hidden state) or "max". ``dtype=torch.bfloat16`` runs a copy of the encoder with bf16 matmul
    weights, made on the first call and reused by later ones while the model's weights are unchanged
    (:func:`bertforge.inference.inference_model`)."""
    embedder = Embedder(
        model,
        tokenizer,
        pooling=pooling,
        normalize=normalize,
        batch_size=batch_size,
        max_length=max_length,
        dtype=dtype,
        device=device,
    )
    return embedder(texts, show_progress=show_progress)
