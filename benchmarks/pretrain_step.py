"""Pretraining-step throughput: bertforge against transformers' BertForPreTraining, same process.

Times full training steps — forward, backward, gradient clipping and an optimizer step — of the
MLM + NSP objective on bert-small (L4-H512, vocabulary 30,522), sequence length 128, batch 32, for
float32 and bfloat16 autocast. Both models start from the same weights, see the same batches
(``[CLS] A [SEP] B [SEP]`` packed to 128 tokens, 15% of positions masked, capped at 20 per
sequence as in BERT's recipe, random NSP labels) and use the same optimizer: fused AdamW with BERT's
weight-decay exclusions (transformers' Trainer default for torch >= 2.8 is the fused AdamW too).
Rounds alternate between the two libraries so machine noise hits both alike; the figure per library
is its best round.

    python benchmarks/pretrain_step.py [--steps 6] [--rounds 3] [--dtypes fp32,bf16] [--preset bert-small] [--threads N]

What differs is only the model code: bertforge's step calls ``pretraining_loss``, which gathers
the masked positions before the 30,522-wide vocabulary projection; transformers projects and
soft-maxes every position, as its ``BertForPreTraining.forward`` does.
"""

from __future__ import annotations

import argparse
import time

import torch

import bertforge
from bertforge.train.optim import OptimConfig, build_optimizer

VOCAB = 30522


def make_batches(n: int, batch: int, seq: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        ids = torch.randint(5, VOCAB, (batch, seq), generator=gen)
        split = torch.randint(seq // 4, 3 * seq // 4, (batch,), generator=gen)
        positions = torch.arange(seq).expand(batch, seq)
        token_type_ids = (positions > split[:, None]).long()
        ids[:, 0] = 2  # [CLS]
        ids[torch.arange(batch), split] = 3  # [SEP] after segment A
        ids[:, -1] = 3
        special = (positions == 0) | (positions == split[:, None]) | (positions == seq - 1)
        scores = torch.rand(batch, seq, generator=gen).masked_fill(special, 2.0)
        masked = torch.zeros(batch, seq, dtype=torch.bool)
        masked.scatter_(1, scores.argsort(1)[:, : min(20, round(seq * 0.15))], True)
        labels = torch.where(masked, ids, -100)
        inputs = torch.where(masked, 4, ids)  # [MASK]
        batches.append(
            {
                "input_ids": inputs,
                "attention_mask": torch.ones(batch, seq, dtype=torch.long),
                "token_type_ids": token_type_ids,
                "labels": labels,
                "next_sentence_label": torch.randint(0, 2, (batch,), generator=gen),
            }
        )
    return batches


def trainer_step(model: torch.nn.Module, loss_fn, dtype: torch.dtype | None):  # type: ignore[no-untyped-def]
    optimizer = build_optimizer(model, OptimConfig(lr=1e-4))

    def step(batch: dict[str, torch.Tensor]) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            loss = loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="bert-small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers

    transformers.logging.set_verbosity_error()
    config = bertforge.BertConfig.from_preset(args.preset, vocab_size=VOCAB)
    hf_config = transformers.BertConfig(**config.to_dict())
    batches = make_batches(4, args.batch_size, args.seq_len)
    tokens = args.batch_size * args.seq_len
    print(
        f"{args.preset}: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"vocab {VOCAB}; batch {args.batch_size} x {args.seq_len} = {tokens} tokens/step; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, transformers {transformers.__version__}"
    )
    print(f"{'dtype':<6} {'runner':<13} {'tokens/s':>9} {'step ms':>8} {'ratio':>6}")
    for dtype_name in args.dtypes.split(","):
        dtype = {"fp32": None, "bf16": torch.bfloat16}[dtype_name]
        torch.manual_seed(0)
        ours = bertforge.BertForPreTraining(config).train()
        theirs = transformers.BertForPreTraining(hf_config).train()
        theirs.load_state_dict(ours.state_dict(), strict=False)
        theirs.tie_weights()
        runners = {
            "transformers": trainer_step(theirs, lambda m, b: m(**b).loss, dtype),
            "bertforge": trainer_step(ours, lambda m, b: m.pretraining_loss(**b, accuracy=False).loss, dtype),
        }
        first_losses = {name: step(batches[0]) for name, step in runners.items()}
        best = {name: float("inf") for name in runners}
        for _ in range(args.rounds):
            for name, step in runners.items():
                step(batches[1])  # warm the allocator after the other runner
                start = time.perf_counter()
                for i in range(args.steps):
                    step(batches[i % len(batches)])
                best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
        for name in runners:
            ratio = best["transformers"] / best[name]
            print(
                f"{dtype_name:<6} {name:<13} {tokens / best[name]:>9.0f} {best[name] * 1e3:>8.0f} {ratio:>5.2f}x"
            )
        drift = abs(first_losses["bertforge"] - first_losses["transformers"])
        print(
            f"{dtype_name:<6} first-step loss: bertforge {first_losses['bertforge']:.4f}, "
            f"transformers {first_losses['transformers']:.4f} (|diff| {drift:.1e}; dropout masks differ)"
        )


if __name__ == "__main__":
    main()
