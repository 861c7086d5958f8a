"""Where batch-1 latency goes: ``predict_examples`` one example at a time (what benchmarks/compress.py
times at batch 1), split into the pipeline around the model, the model's Linear layers and the rest
of its forward, for a teacher and a student side by side.

For each model, one recorded run gives every forward's inputs and outputs; then, best of ``--rounds``
(alternating the models, so load from other processes falls on both alike):

* *whole*: ``predict_examples`` at batch 1, as compress.py times it;
* *around the model*: the same call with a model that replays the recorded outputs at no cost:
  tokenisation, feature building, collation, decoding (softmax, tags, entities, answers) and the
  per-batch Python of the pipeline;
* *forward*: the model on the recorded inputs, under inference mode and ``unpadded()`` as the
  pipeline runs it;
* *Linear layers*: each of the model's Linear layers (its own weights, so cache behaviour is the
  real one) on one input of the example's length, in model order; *forward* minus this is the rest of
  the forward (embeddings, LayerNorm, GELU, attention, residual adds, reshapes, and the per-op and
  per-module-call cost of PyTorch).

The Linear layers scale with the matmul FLOPs; the rest of the forward mostly with the number of
layers; the pipeline around the model not at all.

    python benchmarks/latency_split.py --teacher runs/conll --student runs/conll-mini/seed-0 \\
        --dev eng.testa --examples 128 --rounds 7 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bertforge.auto import forward_kwargs  # noqa: E402
from bertforge.ops import unpadded  # noqa: E402
from bertforge.pipelines.common import InferenceSettings, detect_task, load_task_model, load_tokenizer  # noqa: E402
from bertforge.pipelines.evaluation import predict_examples, read_examples  # noqa: E402


class Recording(torch.nn.Module):
    """The model, recording every forward's inputs and outputs (``replay`` serves them back)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model, self.config = model, model.config
        self.calls: list[tuple[dict[str, torch.Tensor], Any]] = []
        self.replay = False
        self.position = 0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> Any:
        if self.replay:  # no model: the recorded output of this call
            self.position += 1
            return self.calls[(self.position - 1) % len(self.calls)][1]
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = forward_kwargs(self.model, {k: v for k, v in inputs.items() if v is not None})
        out = self.model(**inputs)
        self.calls.append((inputs, out))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, type=Path)
    parser.add_argument("--student", required=True, type=Path)
    parser.add_argument("--dev", required=True, help="a file of the task's examples")
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = detect_task(args.teacher)
    examples = read_examples(task, args.dev)[0][: args.examples]

    parts: dict[str, dict[str, Callable[[], None]]] = {}
    for name, path in (("teacher", args.teacher), ("student", args.student)):
        model, _ = load_task_model(path, task)
        model.eval()
        tokenizer = load_tokenizer(path)
        settings = InferenceSettings.for_checkpoint(path, task, batch_size=1)
        recording = Recording(model).eval()  # the pipeline restores this mode on the model afterwards
        predict_examples(task, recording, tokenizer, examples, settings)
        recording.replay = True
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        rows = [int(inputs["attention_mask"].sum()) for inputs, _ in recording.calls]
        widths = {layer.in_features for layer in linears}
        inputs_of = {
            (n, w): torch.randn(1, n, w) for n in set(rows) for w in widths
        }  # contiguous, as in the model

        def whole(model: Any = model, tokenizer: Any = tokenizer, settings: Any = settings) -> None:
            predict_examples(task, model, tokenizer, examples, settings)

        def around(
            recording: Recording = recording, tokenizer: Any = tokenizer, settings: Any = settings
        ) -> None:
            predict_examples(task, recording, tokenizer, examples, settings)

        def forward(model: Any = model, recording: Recording = recording) -> None:
            with torch.inference_mode(), unpadded():
                for inputs, _ in recording.calls:
                    model(**inputs)

        def linear(linears: list[Any] = linears, rows: list[int] = rows, inputs_of: Any = inputs_of) -> None:
            with torch.inference_mode():
                for n in rows:
                    for layer in linears:
                        layer(inputs_of[n, layer.in_features])

        parts[name] = {"whole": whole, "around": around, "forward": forward, "linear": linear}

    best = {(name, part): float("inf") for name in parts for part in parts[name]}
    for _ in range(args.rounds):
        for part in ("whole", "around", "forward", "linear"):
            for name in parts:
                start = time.perf_counter()
                parts[name][part]()
                best[name, part] = min(best[name, part], time.perf_counter() - start)
    ms = {key: 1000 * seconds / len(examples) for key, seconds in best.items()}
    print(
        f"task {task}, {len(examples)} examples at batch 1, {args.threads} thread(s), best of {args.rounds}"
    )
    print("| model | whole, ms/example | around the model | forward | Linear layers | rest of the forward |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in parts:
        w, a, f, li = (ms[name, p] for p in ("whole", "around", "forward", "linear"))
        print(f"| {name} | {w:.2f} | {a:.2f} | {f:.2f} | {li:.2f} | {f - li:.2f} |")
    ratios = {p: ms["teacher", p] / ms["student", p] for p in ("whole", "around", "forward", "linear")}
    rest = (ms["teacher", "forward"] - ms["teacher", "linear"]) / (
        ms["student", "forward"] - ms["student", "linear"]
    )
    print(
        f"| teacher / student | {ratios['whole']:.2f}x | {ratios['around']:.2f}x | {ratios['forward']:.2f}x | "
        f"{ratios['linear']:.2f}x | {rest:.2f}x |"
    )


if __name__ == "__main__":
    main()
