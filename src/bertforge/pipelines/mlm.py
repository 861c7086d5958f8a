"""Fill-mask: the most likely tokens behind every mask token of a text, from a masked-LM checkpoint
of any family (the tokenizer's own mask token: ``[MASK]`` for BERT, ``<mask>`` for RoBERTa)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..auto import AutoModelForMaskedLM, checkpoint_head_kind, checkpoint_model_type, forward_kwargs
from ..checkpoint import checkpoint_keys
from ..errors import BertForgeError

# Mask tokens of the families; a text may use either, it is rewritten to the tokenizer's own.
MASK_SPELLINGS = ("[MASK]", "<mask>")


@dataclass
class MaskPrediction:
    """One candidate for one [MASK]: the token, its id, its probability and the filled-in text."""

    token: str
    token_id: int
    score: float
    sequence: str


def _head_keys(model: Any) -> list[str]:
    """Tensor names of a masked-LM model outside its encoder, less the tied ones (saved under their owner's)."""
    prefix = f"{model.base_model_prefix}."
    tied = set(model.weight_ties(model.config))
    return [k for k in model.state_dict() if not k.startswith(prefix) and k not in tied]


def load_masked_lm(path: str | os.PathLike[str]) -> Any:
    """The masked-LM model of a checkpoint of any family (saved as its MaskedLM or PreTraining
    class, or with those head weights); refuse a checkpoint without a masked-LM head."""
    path = Path(path)
    model_type = checkpoint_model_type(path)  # an unsupported family: the error naming the supported
    keys = set(checkpoint_keys(path))
    model = AutoModelForMaskedLM.from_pretrained(path)
    if checkpoint_head_kind(path) not in ("masked-lm", "pretraining"):
        head = _head_keys(model)
        if not head or not any(k in keys for k in head):
            name = type(model).__name__
            raise BertForgeError(
                f"checkpoint {path} has no masked-LM head (none of {', '.join(head[:3])}, ...); fill-mask "
                f"needs a {model_type} masked-LM or pretraining checkpoint ({name})"
            )
    return model


@torch.inference_mode()
def fill_mask(
    model: Any,
    tokenizer: Any,
    text: str,
    top_k: int = 5,
) -> list[list[MaskPrediction]]:
    """The ``top_k`` most likely tokens for every mask token in ``text``, one list per mask, in order.

    The mask is the tokenizer's own token; ``[MASK]`` and ``<mask>`` are both accepted and rewritten
    to it, so the same text works with BERT and RoBERTa checkpoints."""
    mask_token = tokenizer.mask_token
    for spelling in MASK_SPELLINGS:
        if spelling != mask_token:
            text = text.replace(spelling, mask_token)
    if mask_token not in text:
        raise BertForgeError(
            f"text has no {mask_token} token; write e.g. 'Paris is the {mask_token} of France.'"
        )
    if top_k < 1:
        raise BertForgeError(f"top_k ({top_k}) must be at least 1")
    # Truncate to what the model can take: the tokenizer's model_max_length may exceed its positions.
    max_length = min(tokenizer.model_max_length, model.config.max_sequence_length)
    encoding = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids = encoding["input_ids"].to(model.device)
    positions = (input_ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        raise BertForgeError(f"every {mask_token} in the text was truncated away; shorten the text")
    inputs = {k: v.to(model.device) for k, v in encoding.items() if k in ("attention_mask", "token_type_ids")}
    logits = model(**forward_kwargs(model, {"input_ids": input_ids, **inputs})).logits
    results = []
    for position in positions:
        probs = logits[0, position].float().softmax(-1)
        scores, ids = probs.topk(min(top_k, probs.numel()))
        candidates = []
        for score, token_id in zip(scores.tolist(), ids.tolist(), strict=True):
            filled = input_ids[0].clone()
            filled[position] = token_id
            candidates.append(
                MaskPrediction(
                    token=tokenizer.convert_ids_to_tokens(token_id),
                    token_id=token_id,
                    score=score,
                    sequence=tokenizer.decode(filled.tolist(), skip_special_tokens=True),
                )
            )
        results.append(candidates)
    return results
