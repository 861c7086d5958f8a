"""Every fine-tuning task on every family: a tiny RoBERTa (byte-level BPE), ALBERT (Unigram) and
DistilBERT (WordPiece, no segment ids) checkpoint, each with its own kind of tokenizer trained on
the synthetic task text, fine-tunes for classification, regression, NER, QA and multiple choice;
the result is the family's task head (config.json says so), transformers' Auto class loads it with
equal outputs, and ``bertforge predict`` runs on it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from _task_data import (
    FAST,
    VOCAB,
    filler,
    single_thread,  # noqa: F401  (autouse fixture: one thread for tiny models)
    write_choices,
    write_colours,
    write_names,
    write_sentiment,
)
from bertforge import auto
from bertforge.cli import main as cli_main
from bertforge.tokenization import AlbertTokenizer, DistilBertTokenizer, RobertaTokenizer, load_tokenizer
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig

FAMILIES = ("roberta", "albert", "distilbert")
TINY = {"num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 66}


def _texts() -> list[str]:
    rng = random.Random(0)
    words = [w for w in VOCAB if not w.startswith(("[", "##"))]
    return [" ".join(filler(rng, 3, 12) + rng.sample(words, 4)) for _ in range(400)]


def _family_checkpoint(model_type: str, directory: Path) -> Path:
    """A tiny random masked LM of the family and a vocabulary of the family's kind."""
    texts = _texts()
    if model_type == "roberta":
        tokenizer = RobertaTokenizer.train_from_iterator(texts, vocab_size=400, add_prefix_space=True)
    elif model_type == "albert":
        tokenizer = AlbertTokenizer.train_from_iterator(texts, vocab_size=300)
    else:
        tokenizer = DistilBertTokenizer({token: i for i, token in enumerate(VOCAB)}, model_max_length=64)
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


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {family: _family_checkpoint(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("task-data")
    scores = ["sentence\tscore"] + [f"{'good ' * k}movie\t{k}.0" for k in range(1, 5)] * 6
    (root / "sts.tsv").write_text("\n".join(scores) + "\n", encoding="utf-8")
    return {
        "classification": (write_sentiment(root / "sentiment.tsv", 48, 1), {}),
        "regression": (root / "sts.tsv", {"label_column": "score"}),
        "ner": (write_names(root / "names.conll", 40, 1), {}),
        "qa": (write_colours(root / "colours.json", 32, 1), {"doc_stride": 16}),
        "multiple-choice": (write_choices(root / "swag.csv", 24, 1), {}),
    }


TRANSFORMERS_AUTO = {
    "classification": "AutoModelForSequenceClassification",
    "regression": "AutoModelForSequenceClassification",
    "ner": "AutoModelForTokenClassification",
    "qa": "AutoModelForQuestionAnswering",
    "multiple-choice": "AutoModelForMultipleChoice",
}


@pytest.mark.parametrize("task", list(TRANSFORMERS_AUTO))
@pytest.mark.parametrize("model_type", FAMILIES)
def test_every_task_fine_tunes_on_every_family(
    model_type: str, task: str, checkpoints: dict[str, Path], data: dict, tmp_path: Path
) -> None:
    import transformers

    path, options = data[task]
    out = tmp_path / "out"
    config = FinetuneConfig(
        task=task, model=str(checkpoints[model_type]), train=str(path), dev=str(path), out=str(out),
        epochs=1, **{**FAST, **options},
    )  # fmt: skip
    result = finetune(config, progress=False)
    assert result.steps > 0 and result.best_value is not None
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["model_type"] == model_type
    head = auto.model_class_for(model_type, task)
    assert saved["architectures"] == [head.__name__]

    # transformers reads the fine-tuned checkpoint with the same outputs
    ours = auto.model_class_for(model_type, task).from_pretrained(out).eval()
    theirs = getattr(transformers, TRANSFORMERS_AUTO[task]).from_pretrained(out).eval()
    tokenizer = load_tokenizer(out)
    batch = tokenizer(["john is in paris", "the colour is red ."], padding=True, return_tensors="pt")
    if task == "multiple-choice":
        batch = {k: v[None] for k, v in batch.items()}  # (1, 2 choices, T)
    batch = auto.forward_kwargs(ours, batch)
    with torch.inference_mode():
        a, b = ours(**batch), theirs(**batch)
    for name in ("logits", "start_logits", "end_logits"):
        if getattr(a, name, None) is not None:
            torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_predict_and_evaluate_run_on_a_fine_tuned_family_ner_model(
    model_type: str, checkpoints: dict[str, Path], data: dict, tmp_path: Path, capsys
) -> None:
    path, _ = data["ner"]
    out = tmp_path / "ner"
    code = cli_main([
        "finetune", "--task", "ner", "--model", str(checkpoints[model_type]), "--train", str(path),
        "--dev", str(path), "--out", str(out), "--epochs", "1", "--batch-size", "16", "--max-seq-length", "64",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli_main(["evaluate", str(out), str(path)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "f1"} <= set(metrics)
    assert cli_main(["predict", str(out), str(path), "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
