"""Every family pretrains, and its saved model is what transformers computes: evidence on the bundled corpus.

For each family (BERT, RoBERTa, ALBERT, DistilBERT) and each extra objective (SpanBERT's span
boundary objective, MacBERT's correction masking, ERNIE's phrase masking), in one process:

1. learn the family's vocabulary from the bundled books (WordPiece, byte-level BPE or Unigram) and
   build the pretraining dataset once per vocabulary type;
2. pretrain the family's tiny preset for a wall-clock budget (``--budget``, 2 minutes by default);
3. report held-out masked-LM accuracy next to the unigram baseline (always guess the most frequent
   training token) on exactly the same masked positions;
4. load the saved model in transformers' matching Auto class and in bertforge, and print the
   largest difference between their logits on held-out batches.

Then distillation: a bert-small teacher is pretrained for ``--teacher-budget``, and a bert-mini
student is trained for ``--budget`` twice, once distilled from the teacher (DistilBERT's losses,
student initialised from teacher layers is not possible across widths, so from scratch) and once
alone; both held-out MLM accuracies are printed. A teacher pretrained for minutes teaches little:
``benchmarks/distill_pretrain.py`` distils from a real pretrained BERT (all-MiniLM-L6-v2) instead.

    python benchmarks/families.py [--budget 2m | --steps 600] [--teacher-budget 4m] [--only bert,roberta] [--out DIR]

Needs the dev extra (transformers). Takes about (7 + 3) x budget + teacher budget.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

FAMILY_RUNS: dict[str, dict[str, Any]] = {
    # name: tokenizer type, preset, objective, extra recipe overrides, transformers Auto class
    "bert": {
        "vocab": "wordpiece",
        "preset": "bert-tiny",
        "objective": "mlm+nsp",
        "auto": "AutoModelForPreTraining",
    },
    "roberta": {"vocab": "bpe", "preset": "roberta-tiny", "objective": "mlm", "auto": "AutoModelForMaskedLM"},
    "albert": {
        "vocab": "unigram",
        "preset": "albert-tiny",
        "objective": "mlm+sop",
        "auto": "AutoModelForPreTraining",
    },
    "distilbert": {
        "vocab": "wordpiece",
        "preset": "distilbert-tiny",
        "objective": "mlm",
        "auto": "AutoModelForMaskedLM",
        # At 2e-3 distilbert-tiny stayed on the unigram plateau for 1,500 steps (loss 6.95); at 1e-3
        # it leaves it by step 450, as bert-tiny does at 2e-3 (2026-11-29).
        "overrides": {"optim.lr": "1e-3"},
    },
    "spanbert": {
        "vocab": "wordpiece",
        "preset": "bert-tiny",
        "objective": "mlm",
        "auto": "AutoModelForMaskedLM",
        "recipe": "recipes/spanbert.toml",
        "overrides": {"data.max_predictions_per_seq": "20"},
    },
    # MacBERT's similar words: nearest neighbours in the BERT run's embeddings (same vocabulary).
    "macbert": {
        "vocab": "wordpiece",
        "preset": "bert-tiny",
        "objective": "mlm+sop",
        "auto": "AutoModelForPreTraining",
        "recipe": "recipes/macbert-chinese.toml",
        "overrides": {
            "train.phases": '[{"fraction": 1.0, "max_seq_length": 128, "max_predictions_per_seq": 20}]'
        },
        "similar_from": "bert",
    },
    "ernie": {
        "vocab": "wordpiece",
        "preset": "bert-tiny",
        "objective": "mlm+nsp",
        "auto": "AutoModelForPreTraining",
        "recipe": "recipes/ernie-chinese.toml",
        "entities": [
            *"孙悟空 猪八戒 沙僧 唐僧 观音菩萨 玉帝 刘备 关羽 张飞 曹操 吕布 董卓 孙坚 袁绍".split(),  # noqa: SIM905
            "Sherlock Holmes",
            "Peter Pan",
            "Dorian Gray",
        ],
    },
}


def train_vocabulary(kind: str, files: list[Path], out: Path) -> Any:
    from bertforge.tokenization import AlbertTokenizer, BertTokenizer, RobertaTokenizer

    if kind == "wordpiece":
        return BertTokenizer.train(files, vocab_size=12000, min_frequency=2, limit_alphabet=4000, save_to=out)
    if kind == "bpe":
        return RobertaTokenizer.train(files, vocab_size=12000, min_frequency=2, save_to=out)
    return AlbertTokenizer.train(files, vocab_size=12000, save_to=out)


def pretrain_family(
    name: str,
    run: dict[str, Any],
    dataset: Path,
    tokenizer: Any,
    out: Path,
    budget: str,
    steps: int | None = None,
) -> dict[str, Any]:
    from bertforge.data.dataset import TokenDataset
    from bertforge.demo import unigram_baseline
    from bertforge.train.pretrain import pretrain
    from bertforge.train.pretrain_data import eval_batches
    from bertforge.train.recipe import load_recipe

    overrides = {
        "output_dir": str(out),
        "model.preset": run["preset"],
        "model.max_position_embeddings": "130" if run["preset"].startswith("roberta") else "128",
        "data.dataset": str(dataset),
        "data.objective": run["objective"],
        "data.max_seq_length": "128",
        "optim.lr": "2e-3",
        "schedule.warmup": "0.06",
        "train.batch_size": "32",
        **({"train.max_steps": str(steps)} if steps else {"train.budget": budget}),
        "train.log_every": "50",
        "train.eval_every": "100000",
        "train.eval_batches": "16",
        "train.keep_last": "1",
        "train.grad_accum": "1",
        **run.get("overrides", {}),
    }
    config = load_recipe(run.get("recipe"), overrides)
    started = time.perf_counter()
    result = pretrain(config, progress=False)
    phase = config.phases()[-1]
    batches = eval_batches(
        TokenDataset.open(dataset, split="eval"),
        config,
        phase,
        tokenizer,
        config.train.batch_size,
        config.train.eval_batches,
    )
    _, baseline = unigram_baseline(dataset, batches, tokenizer.all_special_ids)
    return {
        "steps": result.steps,
        "seconds": time.perf_counter() - started,
        "mlm_accuracy": result.eval.get("eval_mlm_accuracy", float("nan")),
        "baseline": baseline,
        "model_dir": str(result.model_dir),
        "batches": batches,
    }


@torch.no_grad()
def transformers_difference(model_dir: str, auto_name: str, batches: list[dict[str, torch.Tensor]]) -> float:
    """Largest |logit difference| between transformers' Auto class and bertforge's on held-out batches."""
    import transformers

    from bertforge import auto

    theirs = getattr(transformers, auto_name).from_pretrained(model_dir).eval()
    ours = getattr(auto, auto_name).from_pretrained(model_dir).eval()
    worst = 0.0
    for batch in batches[:4]:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        a = theirs(**auto.forward_kwargs(theirs, inputs))
        b = ours(**auto.forward_kwargs(ours, inputs))
        a_logits = a.logits if hasattr(a, "logits") else a.prediction_logits
        b_logits = b.logits if hasattr(b, "logits") else b.prediction_logits
        mask = batch["attention_mask"].bool()
        worst = max(worst, float((a_logits[mask] - b_logits[mask]).abs().max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", default="2m", help="pretraining budget per run (default 2m)")
    parser.add_argument(
        "--teacher-budget", default="4m", help="the distillation teacher's budget (default 4m)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="train the family runs for this many steps instead of --budget (same work under any load)",
    )
    parser.add_argument(
        "--teacher", type=Path, help="reuse this teacher (a bert-small model dir) instead of training one"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--only", help="comma-separated runs (families, objectives, 'distill')")
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from bertforge.data.build import build_dataset
    from bertforge.demo import bundled_corpus

    wanted = set(args.only.split(",")) if args.only else {*FAMILY_RUNS, "distill"}
    root = args.out or Path(tempfile.mkdtemp(prefix="bertforge-families-"))
    files = bundled_corpus()
    vocabularies: dict[str, tuple[Any, Path]] = {}

    def dataset_for(kind: str) -> tuple[Any, Path]:
        if kind not in vocabularies:
            data = root / f"data-{kind}"
            if (data / "manifest.json").is_file():  # kept from an earlier run with the same --out
                from bertforge.tokenization import load_tokenizer

                tokenizer = load_tokenizer(root / f"tok-{kind}")
            else:
                tokenizer = train_vocabulary(kind, files, root / f"tok-{kind}")
                build_dataset(
                    files, tokenizer, data, workers=2, eval_fraction=0.03, overwrite=True, progress=False
                )
            vocabularies[kind] = (tokenizer, data)
        return vocabularies[kind]

    rows = []
    for name, run in FAMILY_RUNS.items():
        if name not in wanted:
            continue
        tokenizer, data = dataset_for(run["vocab"])
        run = {**run, "overrides": dict(run.get("overrides", {}))}
        if "similar_from" in run:
            source = root / f"run-{run['similar_from']}" / "model"
            if not source.is_dir():  # the neighbours' checkpoint was not trained in this run
                print(f"{name}: skipped (needs the {run['similar_from']} run first)")
                continue
            run["overrides"]["data.similar_from"] = str(source)
        if "entities" in run:
            lexicon = root / "entities.txt"
            lexicon.write_text("\n".join(run["entities"]) + "\n", encoding="utf-8")
            run["overrides"]["data.entity_lexicon"] = str(lexicon)
        figures = pretrain_family(name, run, data, tokenizer, root / f"run-{name}", args.budget, args.steps)
        diff = transformers_difference(figures["model_dir"], run["auto"], figures["batches"])
        rows.append((name, run["preset"], run["objective"], figures, diff))
        print(
            f"{name:<10} {run['preset']:<16} {figures['steps']:>5} steps {figures['seconds']:>5.0f}s  MLM acc {figures['mlm_accuracy']:.1%} "
            f"vs unigram {figures['baseline']:.1%}  transformers {run['auto']} max |diff| {diff:.2e}",
            flush=True,
        )

    distill = None
    if "distill" in wanted:
        tokenizer, data = dataset_for("wordpiece")
        teacher = (
            {"model_dir": str(args.teacher), "mlm_accuracy": float("nan")}
            if args.teacher
            else pretrain_family(
                "teacher",
                {"preset": "bert-small", "objective": "mlm", "overrides": {"optim.lr": "1e-3"}},
                data,
                tokenizer,
                root / "teacher",
                args.teacher_budget,
            )
        )
        student_run = {"preset": "bert-mini", "objective": "mlm", "overrides": {"optim.lr": "1e-3"}}
        alone = pretrain_family("alone", student_run, data, tokenizer, root / "student-alone", args.budget)
        distilled_run = {
            **student_run,
            # bert-mini is narrower than bert-small: no layers to copy, so the student starts from scratch
            # like the one trained alone, and only the losses differ.
            "overrides": {
                **student_run["overrides"],
                "distill.teacher": teacher["model_dir"],
                "distill.init_from_teacher": "false",
            },
        }
        distilled = pretrain_family(
            "distilled", distilled_run, data, tokenizer, root / "student-distilled", args.budget
        )
        distill = (teacher, alone, distilled)
        print(
            f"distillation: teacher bert-small {teacher['mlm_accuracy']:.1%} ({args.teacher_budget}); "
            f"bert-mini student for {args.budget}: distilled {distilled['mlm_accuracy']:.1%} ({distilled['steps']} steps) "
            f"vs alone {alone['mlm_accuracy']:.1%} ({alone['steps']} steps)",
            flush=True,
        )

    print(
        "\n| run | preset | objective | steps | seconds | held-out MLM acc | unigram baseline | transformers max abs logit diff |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, preset, objective, figures, diff in rows:
        print(
            f"| {name} | {preset} | {objective} | {figures['steps']} | {figures['seconds']:.0f} | {figures['mlm_accuracy']:.1%} | "
            f"{figures['baseline']:.1%} | {diff:.1e} |"
        )
    if distill is not None:
        teacher, alone, distilled = distill
        print(
            f"\nteacher {teacher['mlm_accuracy']:.1%}; student distilled {distilled['mlm_accuracy']:.1%}; alone {alone['mlm_accuracy']:.1%}"
        )
    summary = {
        name: {k: v for k, v in f.items() if k != "batches"} | {"max_diff": d} for name, _, _, f, d in rows
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
