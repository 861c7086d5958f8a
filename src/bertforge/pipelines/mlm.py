"""Fill-mask: the most likely tokens behind every [MASK] of a text, from a masked-LM checkpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import checkpoint_keys
from ..errors import BertForgeError
from ..heads import BertForMaskedLM
from ..tokenizer import BertTokenizer

_MLM_HEAD_KEY = "cls.predictions.transform.dense.weight"


@dataclass
class MaskPrediction:
    """One candidate for one [MASK]: the token, its id, its probability and the filled-in text."""

    token: str
    token_id: int
    score: float
    sequence: str


def load_masked_lm(path: str | os.PathLike[str]) -> BertForMaskedLM:
    """Load the MLM head of a checkpoint (BertForMaskedLM or BertForPreTraining); refuse one without it."""
    path = Path(path)
    keys = checkpoint_keys(path)
    if not any(key.endswith(_MLM_HEAD_KEY) for key in keys):
        raise BertForgeError(
            f"checkpoint {path} has no masked-LM head (no {_MLM_HEAD_KEY}); fill-mask needs a "
            "BertForMaskedLM or BertForPreTraining checkpoint"
        )
    return BertForMaskedLM.from_pretrained(path)


@torch.inference_mode()
def fill_mask(
    model: BertForMaskedLM,
    tokenizer: BertTokenizer,
    text: str,
    top_k: int = 5,
) -> list[list[MaskPrediction]]:
    """The ``top_k`` most likely tokens for every [MASK] in ``text``, one list per mask, in order."""
    mask_token = tokenizer.mask_token
    if mask_token not in text:
        raise BertForgeError(
            f"text has no {mask_token} token; write e.g. 'Paris is the {mask_token} of France.'"
        )
    if top_k < 1:
        raise BertForgeError(f"top_k ({top_k}) must be at least 1")
    # Truncate to what the model can take: the tokenizer's model_max_length may exceed its positions.
    max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    encoding = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids = encoding["input_ids"].to(model.device)
    positions = (input_ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        raise BertForgeError(f"every {mask_token} in the text was truncated away; shorten the text")
    logits = model(
        input_ids, encoding["attention_mask"].to(model.device), encoding["token_type_ids"].to(model.device)
    ).logits
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
