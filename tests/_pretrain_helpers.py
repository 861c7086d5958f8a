"""A tiny pretraining setup for the trainer tests: a WordPiece vocabulary and a dataset built
in-process from the bundled Alice text, and overrides for a hidden-32 BERT."""

from __future__ import annotations

from pathlib import Path

import bertforge.resources
from bertforge.data.build import build_dataset
from bertforge.tokenizer import BertTokenizer
from bertforge.train.recipe import PretrainConfig, load_recipe

ALICE = Path(bertforge.resources.__file__).parent / "corpus" / "en_alice.txt"

TINY_MODEL = {
    "model.hidden_size": "32",
    "model.num_hidden_layers": "2",
    "model.num_attention_heads": "4",
    "model.intermediate_size": "37",
    "model.max_position_embeddings": "64",
}


def make_dataset(root: Path, *, vocab_size: int = 300, lines: int = 1200) -> tuple[Path, Path]:
    """(dataset dir, tokenizer dir) built from the first ``lines`` lines of Alice."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text(
        "\n".join(ALICE.read_text(encoding="utf-8").splitlines()[:lines]) + "\n", encoding="utf-8"
    )
    tokenizer = BertTokenizer.train([corpus], vocab_size=vocab_size, save_to=root / "tokenizer")
    build_dataset([corpus], tokenizer, root / "data", eval_fraction=0.1)
    return root / "data", root / "tokenizer"


def tiny_overrides(dataset: Path, tokenizer: Path, out: Path, **extra: object) -> dict[str, str]:
    overrides = {
        "data.dataset": str(dataset),
        "data.tokenizer": str(tokenizer),
        "data.max_seq_length": "32",
        "model.preset": "bert-tiny",
        **TINY_MODEL,
        "train.batch_size": "4",
        "train.max_steps": "3",
        "train.log_every": "1",
        "train.dtype": "fp32",
        "train.device": "cpu",
        "output_dir": str(out),
    }
    overrides.update({k.replace("__", "."): str(v) for k, v in extra.items()})
    return overrides


def tiny_recipe(dataset: Path, tokenizer: Path, out: Path, **extra: object) -> PretrainConfig:
    """Keyword names use ``__`` for the dot: ``train__max_steps=6``."""
    return load_recipe(None, tiny_overrides(dataset, tokenizer, out, **extra))
