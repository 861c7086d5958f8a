"""Synthetic fine-tuning tasks that a tiny BERT can learn in seconds, written in the real file formats.

* sentiment (SST-2 style TSV ``sentence<TAB>label``): positive iff the sentence holds "good", negative
  iff it holds "bad"; the rest is filler.
* names (CoNLL-2003 columns ``word POS chunk tag``, IOB1 tags, ``-DOCSTART-``): a fixed set of person
  and place words in filler, "smith" continuing a person.
* colours (SQuAD v1.1 JSON): "what is the colour ?" -- the answer is the word after "is".

A hand-made vocabulary (every word one token, plus a few sub-words) and a randomly initialised tiny
BERT saved as a checkpoint directory, so that tests fine-tune from a real checkpoint on disk.
"""

from __future__ import annotations

import atexit
import functools
import json
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from bertforge import BertConfig, BertForMaskedLM
from bertforge.tokenizer import BertTokenizer

FILLER = [
    "the",
    "a",
    "movie",
    "was",
    "film",
    "and",
    "it",
    "very",
    "plot",
    "actor",
    "scene",
    "story",
    "we",
    "saw",
    "this",
    "today",
    "really",
    "quite",
    "so",
    "but",
    "then",
    "there",
    "here",
    "with",
    "of",
    "on",
    "at",
    "to",
]
PERSONS = ["john", "mary", "alice", "bob"]
PLACES = ["paris", "london", "berlin"]
COLOURS = ["red", "blue", "green", "black", "white", "yellow"]
EXTRA = ["good", "bad", "smith", "is", "what", "colour", "?", ".", "##s", "##ing", "北", "京", "是"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *FILLER, *PERSONS, *PLACES, *COLOURS, *EXTRA]


def filler(rng: random.Random, low: int = 3, high: int = 8) -> list[str]:
    return [rng.choice(FILLER) for _ in range(rng.randint(low, high))]


def write_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A tiny random BERT (hidden 32, 2 layers, 4 heads, intermediate 37, 64 positions) + tokenizer."""
    torch.manual_seed(seed)
    tokenizer = BertTokenizer({token: i for i, token in enumerate(VOCAB)}, model_max_length=64)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def write_sentiment(path: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["sentence\tlabel"]
    for _ in range(count):
        words = filler(rng)
        label = rng.randint(0, 1)
        words.insert(rng.randint(0, len(words)), "good" if label else "bad")
        lines.append(" ".join(words) + f"\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def names_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    words = filler(rng, 2, 6)
    tags = ["O"] * len(words)
    for _ in range(rng.randint(1, 2)):
        at = rng.randint(0, len(words))
        if rng.random() < 0.5:
            entity, kind = [rng.choice(PERSONS)] + (["smith"] if rng.random() < 0.4 else []), "PER"
        else:
            entity, kind = [rng.choice(PLACES)], "LOC"
        # IOB1 as in CoNLL-2003: I- everywhere; B- only between two adjacent entities of one type
        words[at:at] = entity
        tags[at:at] = [f"I-{kind}"] * len(entity)
    return words, tags


def write_names(path: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(count):
        words, tags = names_sentence(rng)
        fixed = list(tags)
        for k in range(1, len(tags)):  # adjacent same-type entities: IOB1 marks the second with B-
            if tags[k] == tags[k - 1] != "O" and words[k] != "smith":
                fixed[k] = "B-" + tags[k][2:]
        lines += [f"{w} NN O {t}" for w, t in zip(words, fixed, strict=True)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def colour_example(rng: random.Random, index: int) -> dict:
    # Up to ~60 tokens: with 64 positions every position is trained, and some contexts need two windows.
    before, after = " ".join(filler(rng, 1, 30)), " ".join(filler(rng, 1, 25))
    colour = rng.choice(COLOURS)
    context = f"{before} the colour is {colour} {after} ."
    return {
        "id": f"q{index}",
        "question": "what is the colour ?",
        "answers": [{"text": colour, "answer_start": context.index(f" is {colour}") + 4}],
        "context": context,
    }


def write_colours(path: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    paragraphs = []
    for index in range(count):
        qa = colour_example(rng, index)
        context = qa.pop("context")
        paragraphs.append({"context": context, "qas": [qa]})
    data = {"version": "1.1", "data": [{"title": "colours", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_choices(path: Path, count: int, seed: int) -> Path:
    """SWAG CSV: which of four colours did the context name?"""
    rng = random.Random(seed)
    lines = ["sent1,sent2,ending0,ending1,ending2,ending3,label"]
    for _ in range(count):
        colours = rng.sample(COLOURS, 4)
        label = rng.randint(0, 3)
        context = " ".join([*filler(rng, 1, 4), "the colour is", colours[label], "."])
        lines.append(f"{context},so it is,{','.join(colours)},{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    """Tiny models on one thread: with the cores shared, OpenMP threads wait on each other and a
    tiny model trains tens of times slower on two threads than on one. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ fine-tuned models, shared
# Fine-tuning the three tiny models takes a few seconds each; test modules share them through this
# process-wide cache instead of training them again (pytest runs all modules in one process).
FAST = {"lr": 2e-3, "batch_size": 16, "max_seq_length": 64, "warmup": 0.1, "plot": False}
_RECIPES = {
    "classification": (write_sentiment, "tsv", 320, 80, {"epochs": 4}),
    "ner": (write_names, "conll", 240, 80, {"epochs": 5}),
    "qa": (write_colours, "json", 320, 60, {"epochs": 2, "doc_stride": 16}),
}


@functools.cache
def workspace() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bertforge-finetune-"))
    atexit.register(shutil.rmtree, root, True)
    write_checkpoint(root / "tiny")
    return root


@functools.cache
def trained(task: str) -> tuple[Any, Path]:
    """(FinetuneResult, output directory) of the tiny model fine-tuned on the task's synthetic data."""
    from bertforge.train.finetune import finetune
    from bertforge.train.finetune_config import FinetuneConfig

    root = workspace()
    write, suffix, train_count, dev_count, options = _RECIPES[task]
    train = write(root / f"{task}-train.{suffix}", train_count, 1)
    dev = write(root / f"{task}-dev.{suffix}", dev_count, 2)
    config = FinetuneConfig(
        task=task, model=str(root / "tiny"), train=str(train), dev=str(dev), out=str(root / task),
        **{**FAST, **options},
    )  # fmt: skip
    return finetune(config, progress=False), root / task
