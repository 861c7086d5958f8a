"""A tiny random masked LM of every family with a vocabulary of the family's own kind, and a small
file of every fine-tuning task: what the family fine-tuning tests and the distillation tests share."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from _task_data import VOCAB, filler, write_choices, write_colours, write_names, write_sentiment
from bertforge import auto
from bertforge.tokenization import AlbertTokenizer, BertTokenizer, DistilBertTokenizer, RobertaTokenizer

FAMILIES = ("roberta", "albert", "distilbert")
TINY = {"num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 66}


def _texts() -> list[str]:
    rng = random.Random(0)
    words = [w for w in VOCAB if not w.startswith(("[", "##"))]
    return [" ".join(filler(rng, 3, 12) + rng.sample(words, 4)) for _ in range(400)]


def family_checkpoint(model_type: str, directory: Path) -> Path:
    """A tiny random masked LM of the family and a vocabulary of the family's kind."""
    texts = _texts()
    if model_type == "roberta":
        tokenizer = RobertaTokenizer.train_from_iterator(texts, vocab_size=400, add_prefix_space=True)
    elif model_type == "albert":
        tokenizer = AlbertTokenizer.train_from_iterator(texts, vocab_size=300)
    else:
        wordpiece = BertTokenizer if model_type == "bert" else DistilBertTokenizer
        tokenizer = wordpiece({token: i for i, token in enumerate(VOCAB)}, model_max_length=64)
    sizes = dict(TINY)
    if model_type == "distilbert":
        sizes = {"n_layers": 2, "n_heads": 4, "dim": 32, "hidden_dim": 37, "max_position_embeddings": 64}
    elif model_type == "albert":
        sizes.update(hidden_size=32, intermediate_size=37, embedding_size=16)
    else:
        sizes.update(hidden_size=32, intermediate_size=37)
    config = auto.AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **sizes
    )
    torch.manual_seed(0)
    auto.AutoModelForMaskedLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def task_files(root: Path) -> dict[str, tuple[Path, dict]]:
    """task -> (a small labelled file in the task's format, the FinetuneConfig options it needs)."""
    scores = ["sentence\tscore"] + [f"{'good ' * k}movie\t{k}.0" for k in range(1, 5)] * 6
    (root / "sts.tsv").write_text("\n".join(scores) + "\n", encoding="utf-8")
    return {
        "classification": (write_sentiment(root / "sentiment.tsv", 48, 1), {}),
        "regression": (root / "sts.tsv", {"label_column": "score"}),
        "ner": (write_names(root / "names.conll", 40, 1), {}),
        "qa": (write_colours(root / "colours.json", 32, 1), {"doc_stride": 16}),
        "multiple-choice": (write_choices(root / "swag.csv", 24, 1), {}),
    }
