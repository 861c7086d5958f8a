"""``bertforge demo``: pretrain a small BERT from raw text on the bundled corpus, with no download.

1. learn a WordPiece vocabulary from the bundled English and Chinese books;
2. build the pretraining dataset (sentence splitting, parallel tokenisation, whole-word flags);
3. pretrain a bert-tiny (2 layers, hidden 128) with masked LM + next-sentence prediction for
   1,200 steps (or a wall-clock budget), with a live progress bar;
4. evaluate held-out masked-LM accuracy against the unigram baseline (always guess the most
   frequent training token) on exactly the same masked positions;
5. fill in masked words in a few English and Chinese sentences;
6. show whether the pretraining pays off downstream: fine-tune it and its random-init twin (same
   architecture and tokenizer, fresh weights) on a small labelled task cut from the same books
   (which book is a sentence from), over 3 seeds, and print both arms' test accuracy;
7. print where the model (Hugging Face layout), metrics, curve plot and config went.

The last tenth of every book is kept out of steps 1-4: the labelled task's sentences, for training
and for testing, come from there, so the model is tested on text it never saw.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .payoff import Payoff

HELD_OUT_FRACTION = 0.1  # of each book's lines, kept out of pretraining for the downstream task
# Steps, not minutes, so that every machine gets the same model. Measured 2026-11-29 on the 2-core
# AVX2 machine (step 6, 3 seeds): after 500 steps the model (6.5-7.2% held-out MLM accuracy, just
# off the plateau) fine-tunes 7-10 points *below* its random-init twin; after 1,200 steps (13.7%)
# 9.5 points above it, on every seed.
DEMO_STEPS = 1200

DEMO_SENTENCES = (
    "Alice was beginning to get very [MASK] of sitting by her sister on the bank.",
    "Sherlock Holmes took his [MASK] from the pocket of his coat.",
    '"I am not going to [MASK] up," said Peter.',
    "悟空道：我有七十二般[MASK]化。",
    "玄奘法师骑着白[MASK]往西天取经。",
)


def bundled_corpus() -> list[Path]:
    """The public-domain text files shipped in the package (see resources/corpus/README.md)."""
    folder = importlib.resources.files("bertforge.resources") / "corpus"
    return sorted(
        Path(str(folder / name)) for name in (p.name for p in folder.iterdir()) if name.endswith(".txt")
    )


def split_books(
    files: list[Path], out: Path, held_out: float = HELD_OUT_FRACTION
) -> tuple[list[Path], list[Path]]:
    """Each book cut at the paragraph break nearest the last ``held_out`` of its lines: the first
    part to ``out/pretrain/``, the rest to ``out/held-out/``, bytes unchanged. Returns both lists."""
    parts: tuple[list[Path], list[Path]] = ([], [])
    for file in files:
        lines = file.read_bytes().splitlines(keepends=True)
        target = int(len(lines) * (1.0 - held_out))
        breaks = [i for i, line in enumerate(lines) if not line.strip()] or [target]
        cut = min(breaks, key=lambda i: abs(i - target))
        for folder, chunk, kept in zip(
            ("pretrain", "held-out"), (lines[:cut], lines[cut:]), parts, strict=True
        ):
            path = out / folder / file.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(chunk))
            kept.append(path)
    return parts


def _sentences(path: Path) -> Iterator[str]:
    """The sentences of a corpus file, whitespace runs made single spaces."""
    from .data.corpus import Corpus

    return (" ".join(sentence.split()) for document in Corpus([path]) for sentence in document)


def book_task(
    held_out: list[Path],
    tokenizer: Any,
    out: Path,
    train_per_book: int,
    test_per_book: int,
    seed: int = 0,
    pretrained_on: Sequence[Path] = (),
) -> tuple[Path, Path]:
    """``out/train.tsv`` and ``out/test.tsv`` (label, text): distinct sentences of 8 to 64 tokens from
    each held-out part, labelled with the book's file name, none in both files and none that also
    occurs in the ``pretrained_on`` files (books repeat some sentences)."""
    seen = {sentence for path in pretrained_on for sentence in _sentences(path)}
    rng = random.Random(seed)
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for path in held_out:
        # Once each: a sentence a book repeats must not land in both splits.
        sentences = [
            sentence
            for sentence in dict.fromkeys(_sentences(path))
            if sentence not in seen and 8 <= len(tokenizer.tokenize(sentence)) <= 64
        ]
        drawn = rng.sample(sentences, min(len(sentences), train_per_book + test_per_book))
        rows["train"] += [(path.stem, text) for text in drawn[:train_per_book]]
        rows["test"] += [(path.stem, text) for text in drawn[train_per_book:]]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, examples in rows.items():
        rng.shuffle(examples)
        path = out / f"{split}.tsv"
        path.write_text(
            "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in examples), encoding="utf-8"
        )
        paths.append(path)
    return paths[0], paths[1]


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def unigram_baseline(
    dataset_dir: Path, batches: list[dict[str, Any]], special_ids: list[int]
) -> tuple[int, float]:
    """The most frequent token of the training split, and how often it is the right answer at the
    masked positions of ``batches`` (the accuracy of always predicting it)."""
    from .data.dataset import TokenDataset

    train = TokenDataset.open(dataset_dir, split="train")
    counts = np.zeros(train.vocab_size, dtype=np.int64)
    for ids in train.shard_arrays("ids"):
        counts += np.bincount(ids, minlength=train.vocab_size)
    counts[list(special_ids)] = 0  # never a masking target, so never a fair guess
    top = int(counts.argmax())
    hits = total = 0
    for batch in batches:
        labels = batch["labels"]
        masked = labels != -100
        hits += int((labels[masked] == top).sum())
        total += int(masked.sum())
    return top, hits / max(total, 1)


def _show_payoff(
    out: Path,
    books: list[Path],
    held_out: list[Path],
    pretrained_on: list[Path],
    tokenizer: Any,
    model_dir: Path,
    seeds: tuple[int, ...],
    train_per_book: int,
    test_per_book: int,
    epochs: float,
) -> Payoff:
    """Step 6: the pretrained model against its random-init twin on the held-out books' task."""
    start = _step("6. does the pretraining pay off? A labelled task from the held-out text")
    from .payoff import compare_with_random_init
    from .train.finetune_config import FinetuneConfig

    train, test = book_task(
        held_out, tokenizer, out / "task", train_per_book, test_per_book, pretrained_on=pretrained_on
    )
    print(
        f"  which of the {len(books)} books is a sentence from: {train_per_book} labelled sentences per "
        f"book to learn from, {test_per_book} others to test on -> {train.parent}/"
    )
    print(
        f"  fine-tuning the model and its random-init twin (same architecture and tokenizer, fresh weights) "
        f"with one recipe, seeds {', '.join(map(str, seeds))} ..."
    )
    finetune_config = FinetuneConfig(
        task="classification",
        model=str(model_dir),
        train=str(train),
        dev=str(test),
        out=str(out / "payoff"),
        max_seq_length=64,
        epochs=epochs,
        batch_size=16,
        lr=5e-4,
        dropout=0.1,
    )
    # Every fine-tune starts a new classifier (and the twin a new pooler) on purpose: not worth the
    # warning the checkpoint loader gives once per run.
    loader_log = logging.getLogger("bertforge.checkpoint")
    level = loader_log.level
    loader_log.setLevel(logging.ERROR)
    try:
        payoff = compare_with_random_init(finetune_config, list(seeds))
    finally:
        loader_log.setLevel(level)
    for line in payoff.lines():
        print(f"  {line}")
    print(f"  ({time.perf_counter() - start:.0f}s; the fine-tuned models are under {out / 'payoff'}/)")
    return payoff


def run_demo(
    out: Path,
    *,
    budget: str | None = None,
    vocab_size: int = 12000,
    preset: str = "bert-tiny",
    workers: int | None = None,
    batch_size: int = 32,
    max_steps: int | None = None,
    progress: bool = True,
    payoff_seeds: tuple[int, ...] = (0, 1, 2),
    payoff_train_per_book: int = 32,
    payoff_test_per_book: int = 64,
    payoff_epochs: float = 10.0,
) -> dict[str, Any]:
    """Run the whole pipeline into ``out``; returns the figures it printed (for tests).

    Pretraining runs ``max_steps`` steps (default :data:`DEMO_STEPS`), or for the wall-clock ``budget``
    when one is given instead (a slower machine then gets a less trained model).The
    ``payoff_*`` settings size step 6's labelled task and its fine-tuning."""
    from .data.build import build_dataset
    from .errors import BertForgeError
    from .pipelines import fill_mask, load_masked_lm
    from .tokenizer import BertTokenizer
    from .train.durations import parse_duration
    from .train.pretrain import pretrain
    from .train.pretrain_data import eval_batches
    from .train.recipe import load_recipe

    if budget is not None and max_steps is not None:
        raise BertForgeError(f"give a step count ({max_steps}) or a budget ({budget}), not both")
    if budget is not None:
        parse_duration(budget)  # a typo in --budget fails now, not after the vocabulary and dataset
    elif max_steps is None:
        max_steps = DEMO_STEPS
    out.mkdir(parents=True, exist_ok=True)
    books = bundled_corpus()
    size_mb = sum(f.stat().st_size for f in books) / 2**20
    print(
        f"bertforge demo: pretrain a BERT from {len(books)} public-domain books ({size_mb:.1f} MB), into {out}/"
    )
    files, held_out = split_books(books, out / "corpus")
    print(
        f"the last {HELD_OUT_FRACTION:.0%} of every book is kept out of pretraining, for step 6 -> {out / 'corpus'}/"
    )

    start = _step("1. learn a WordPiece vocabulary (English + Chinese)")
    tokenizer_dir = out / "tokenizer"
    # Chinese needs a wide alphabet: every character is a token, and the 1,000-character default
    # would send the rarer half of 西游记's characters to [UNK].
    tokenizer = BertTokenizer.train(
        files, vocab_size=vocab_size, min_frequency=2, limit_alphabet=4000, save_to=tokenizer_dir
    )
    print(f"{tokenizer.vocab_size} tokens in {time.perf_counter() - start:.1f}s -> {tokenizer_dir}/")
    for text in ("The unbelievably mischievous boy never grew up.", "悟空道：我有七十二般变化。"):
        print(f"  {text}\n    -> {' '.join(tokenizer.tokenize(text))}")

    start = _step("2. build the pretraining dataset")
    dataset_dir = out / "dataset"
    workers = workers or min(4, os.cpu_count() or 1)
    summary = build_dataset(
        files, tokenizer, dataset_dir, workers=workers, eval_fraction=0.03, overwrite=True, progress=progress
    )
    for line in summary.lines():
        print(f"  {line}")

    length = f"{max_steps} steps" if max_steps is not None else budget
    _step(f"3. pretrain {preset} with masked LM + next-sentence prediction for {length}")
    run_dir = out / "pretrain"
    overrides = {
        "output_dir": str(run_dir),
        "model.preset": preset,
        "model.max_position_embeddings": "128",
        "data.dataset": str(dataset_dir),
        "data.objective": "mlm+nsp",
        "data.max_seq_length": "128",
        # Measured 2026-11-23 on the bundled corpus, 600 steps of 32 x 128: bert-tiny at lr 2e-3 reached
        # 11.5% held-out MLM accuracy, bert-mini at 1e-3 5.3% at step 400 (and half the steps per minute).
        "optim.lr": "2e-3",
        # As recipes/cpu-hour.toml (Cramming): no dropout in a run this short, warm-up for half of it.
        "model.hidden_dropout_prob": "0.0",
        "model.attention_probs_dropout_prob": "0.0",
        "schedule.warmup": "0.5",
        "train.batch_size": str(batch_size),
        **({"train.max_steps": str(max_steps)} if max_steps is not None else {"train.budget": str(budget)}),
        "train.log_every": "10",
        "train.eval_every": "100",
        "train.eval_batches": "8",
        "train.keep_last": "1",
    }
    config = load_recipe(None, overrides)
    result = pretrain(config, progress=progress)
    print(
        f"{result.steps} steps in {length} ({result.tokens_per_second:,.0f} tokens/s, stopped: {result.stopped}); "
        f"final training loss {result.train_loss:.3f}"
        if result.train_loss is not None
        else f"{result.steps} steps ({result.stopped})"
    )

    _step("4. held-out masked-LM accuracy against the unigram baseline")
    from .data.dataset import TokenDataset

    phase = config.phases()[0]
    batches = eval_batches(
        TokenDataset.open(dataset_dir, split="eval"),
        config,
        phase,
        tokenizer,
        config.train.batch_size,
        config.train.eval_batches,
    )
    top, baseline = unigram_baseline(dataset_dir, batches, tokenizer.all_special_ids)
    accuracy = result.eval.get("eval_mlm_accuracy", float("nan"))
    print(
        f"  model:    MLM accuracy {accuracy:.1%}, perplexity {result.eval.get('eval_perplexity', float('nan')):.1f}, "
        f"NSP accuracy {result.eval.get('eval_nsp_accuracy', float('nan')):.1%}"
    )
    print(f"  baseline: always '{tokenizer.convert_ids_to_tokens(top)}' -> {baseline:.1%}")
    print(
        f"  the model is {accuracy / max(baseline, 1e-9):.1f}x the baseline on the same held-out masked positions"
    )

    _step("5. fill-mask with the pretrained model")
    model = load_masked_lm(result.model_dir)
    for text in DEMO_SENTENCES:
        guesses = fill_mask(model, tokenizer, text, top_k=3)[0]
        shown = ", ".join(f"{g.token} ({g.score:.0%})" for g in guesses)
        print(f"  {text}\n    -> {shown}")

    payoff = None
    if payoff_seeds:
        payoff = _show_payoff(
            out, books, held_out, files, tokenizer, result.model_dir,
            payoff_seeds, payoff_train_per_book, payoff_test_per_book, payoff_epochs,
        )  # fmt: skip

    print("\nDone. Everything is under", out)
    print(f"  model + tokenizer (Hugging Face layout): {result.model_dir}/")
    print(f"  metrics: {result.metrics_path}")
    if result.plot_path is not None:
        print(f"  curves:  {result.plot_path}")
    print(f"  config:  {run_dir / 'resolved_config.toml'}  (rerun: bertforge pretrain --config it)")
    print(f"  dataset: {dataset_dir}/   tokenizer: {tokenizer_dir}/")
    print(f'Try:  bertforge fill-mask {result.model_dir} "The Queen of [MASK] made some tarts." ')
    return {"accuracy": accuracy, "baseline": baseline, "result": result, "payoff": payoff}
