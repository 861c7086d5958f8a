"""Head pruning: the pruned model is the gated model, checkpoints keep transformers 4.x's
``pruned_heads`` contract, importance finds the useless head, and ``bertforge prune`` from the CLI."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _task_data import single_thread, trained, workspace  # noqa: E402, F401
from bertforge import BertConfig  # noqa: E402
from bertforge.auto import model_class_for  # noqa: E402
from bertforge.cli import main  # noqa: E402
from bertforge.errors import BertForgeError  # noqa: E402
from bertforge.models.albert import AlbertForSequenceClassification  # noqa: E402
from bertforge.models.albert_config import AlbertConfig  # noqa: E402
from bertforge.models.distilbert_config import DistilBertConfig  # noqa: E402
from bertforge.models.roberta_config import RobertaConfig  # noqa: E402
from bertforge.pruning import head_gates, heads_per_layer, prune_heads  # noqa: E402
from bertforge.train import prune as prune_module  # noqa: E402
from bertforge.train.prune import PruneConfig, head_importance, prune_checkpoint  # noqa: E402

TINY = {"vocab_size": 99, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}
CONFIGS = {
    "bert": lambda **kw: BertConfig(hidden_size=32, **TINY, **kw),
    "roberta": lambda **kw: RobertaConfig(hidden_size=32, max_position_embeddings=40, **TINY, **kw),
    "distilbert": lambda **kw: DistilBertConfig(
        vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, **kw
    ),
}
FAMILIES = tuple(CONFIGS)
HEADS = {0: [1, 3], 1: [2]}


def build(
    family: str, kind: str = "sequence-classification", seed: int = 0, **config: object
) -> torch.nn.Module:
    torch.manual_seed(seed)
    # Wide initial weights: each head moves the outputs well above the 1e-5 the tests resolve.
    config = {"initializer_range": 0.3, **config}
    return model_class_for(family, kind)(CONFIGS[family](num_labels=3, **config)).eval()


def batch(seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (3, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0  # one padded row: the mask path too
    return {"input_ids": ids, "attention_mask": mask}


def gates_off(model: torch.nn.Module, heads: dict[int, list[int]]) -> list[torch.Tensor]:
    gates = [torch.ones(n) for n in heads_per_layer(model)]
    for layer, chosen in heads.items():
        gates[layer][chosen] = 0.0
    return gates


# ------------------------------------------------------------------------------ pruned == gated
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["base", "sequence-classification"])
def test_pruned_model_equals_unpruned_model_with_those_heads_gated_to_zero(family, kind):
    model = build(family, kind)
    field = "last_hidden_state" if kind == "base" else "logits"
    with torch.no_grad():
        with head_gates(model, gates_off(model, HEADS)):
            gated = getattr(model(**batch()), field)
        ungated = getattr(model(**batch()), field)
        pruned = prune_heads(copy.deepcopy(model), HEADS)
        got = getattr(pruned(**batch()), field)
    torch.testing.assert_close(got, gated, atol=1e-5, rtol=0)
    assert not torch.allclose(gated, ungated, atol=1e-3)  # the heads did contribute: the test can fail
    assert heads_per_layer(pruned) == [2, 3]
    assert pruned.config.pruned_heads == HEADS


def test_pruning_in_two_steps_keeps_the_original_head_numbers():
    model = build("bert")
    with torch.no_grad(), head_gates(model, gates_off(model, {0: [1, 2]})):
        gated = model(**batch()).logits
    twice = prune_heads(prune_heads(copy.deepcopy(model), {0: [1]}), {0: [2]})  # 2 = the original head 2
    torch.testing.assert_close(twice(**batch()).logits.detach(), gated, atol=1e-5, rtol=0)
    assert twice.config.pruned_heads == {0: [1, 2]}


def test_gates_leave_no_hook_behind():
    model = build("bert")
    with head_gates(model):
        pass
    assert not any(module._forward_pre_hooks for module in model.modules())


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({5: [0]}, "layer 5"),
        ({0: [4]}, "head(s) [4]"),
        ({0: [0, 1, 2, 3]}, "all 4 heads of layer 0"),
    ],
)
def test_prune_heads_rejects_heads_that_do_not_exist_or_would_empty_a_layer(heads, message):
    model = build("bert")
    with pytest.raises(BertForgeError, match=re.escape(message)):
        prune_heads(model, heads)
    assert heads_per_layer(model) == [4, 4]  # nothing changed


def test_prune_heads_rejects_a_head_already_pruned():
    model = prune_heads(build("bert"), {0: [1]})
    with pytest.raises(BertForgeError, match="already pruned"):
        prune_heads(model, {0: [1]})


def test_albert_cannot_be_pruned_and_refuses_pruned_heads_in_its_config():
    config = AlbertConfig.from_preset("albert-tiny", vocab_size=99)
    with pytest.raises(BertForgeError, match="not supported for albert: its layers share"):
        prune_heads(AlbertForSequenceClassification(config), {0: [0]})
    with pytest.raises(BertForgeError, match="pruning ALBERT's attention heads is not supported"):
        AlbertConfig.from_dict({**config.to_dict(), "pruned_heads": {"0": [1]}})


# ------------------------------------------------------------------------- checkpoints, contract
@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_checkpoint_records_pruned_heads_with_string_keys_and_reloads_its_shapes(family, tmp_path):
    model = prune_heads(build(family), HEADS)
    model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["pruned_heads"] == {"0": [1, 3], "1": [2]}
    shapes = {k: tuple(v.shape) for k, v in load_file(tmp_path / "model.safetensors").items()}
    query = next(k for k in shapes if ".layer.0." in k and k.endswith(("query.weight", "q_lin.weight")))
    output = next(
        k for k in shapes if ".layer.0." in k and k.endswith(("output.dense.weight", "out_lin.weight"))
    )
    assert shapes[query] == (16, 32) and shapes[output] == (32, 16)  # 2 heads of 8 kept in layer 0
    reloaded = type(model).from_pretrained(tmp_path)
    assert reloaded.config.pruned_heads == HEADS
    torch.testing.assert_close(reloaded(**batch()).logits, model(**batch()).logits, atol=1e-6, rtol=0)


def test_unpruned_config_json_has_no_pruned_heads_key(tmp_path):
    build("bert").save_pretrained(tmp_path)
    assert "pruned_heads" not in json.loads((tmp_path / "config.json").read_text())


def _shrink_as_transformers_4_did(
    hf_model: torch.nn.Module, family: str, pruned: dict[str, list[int]]
) -> None:
    """transformers 4.x's prune_heads on load, written out: each layer in pruned_heads gets query,
    key and value with (heads kept x D) rows and an output projection with as many columns.
    transformers 5 removed prune_heads but its attention reshapes by head size, so it runs them."""
    base = hf_model.base_model
    layers = base.transformer.layer if family == "distilbert" else base.encoder.layer
    rows, column = (
        (("attention.q_lin", "attention.k_lin", "attention.v_lin"), "attention.out_lin")
        if family == "distilbert"
        else (
            ("attention.self.query", "attention.self.key", "attention.self.value"),
            "attention.output.dense",
        )
    )
    for layer, heads in pruned.items():
        block = layers[int(layer)]
        width = (4 - len(heads)) * 8
        for name in rows:
            parent, _, attribute = name.rpartition(".")
            setattr(block.get_submodule(parent), attribute, torch.nn.Linear(32, width))
        parent, _, attribute = column.rpartition(".")
        setattr(block.get_submodule(parent), attribute, torch.nn.Linear(width, 32))


@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_checkpoint_runs_in_transformers_attention_shrunk_as_4x_did(family, tmp_path):
    ours = prune_heads(build(family), HEADS)
    ours.save_pretrained(tmp_path)
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    theirs = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    _shrink_as_transformers_4_did(
        theirs, family, json.loads((tmp_path / "config.json").read_text())["pruned_heads"]
    )
    missing, unexpected = theirs.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    inputs = batch()
    if family == "distilbert":
        expected = theirs(**inputs).logits
    else:
        expected = theirs(**inputs, token_type_ids=torch.zeros_like(inputs["input_ids"])).logits
    torch.testing.assert_close(ours(**inputs).logits, expected, atol=1e-5, rtol=0)


@pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) >= 5,
    reason="transformers 5 removed prune_heads and ignores pruned_heads in config.json",
)
def test_transformers_4_prunes_on_load_and_agrees(tmp_path):
    ours = prune_heads(build("bert"), HEADS)
    ours.save_pretrained(tmp_path)
    theirs = transformers.BertForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(ours(**batch()).logits, theirs(**batch()).logits, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------ importance
def test_importance_is_lowest_for_a_head_whose_output_is_zero():
    model = build("bert")
    with torch.no_grad():  # head 2 of layer 0 outputs nothing: its value rows are zero
        value = model.bert.encoder.layer[0].attention.self.value
        value.weight[16:24] = 0.0
        value.bias[16:24] = 0.0
    inputs = batch()
    batches = [{**inputs, "labels": torch.tensor([0, 1, 2])}]
    scores = head_importance(model, batches)
    assert int(scores[0].argmin()) == 2 and float(scores[0][2]) == 0.0
    for layer_scores in scores:  # each layer divided by its L2 norm
        assert float(layer_scores.norm()) == pytest.approx(1.0, abs=1e-5)
    assert prune_module._least_important(model, scores, 1) == {0: [2]}


def test_least_important_never_takes_a_layers_last_head():
    model = prune_heads(build("bert"), {0: [0, 1, 2]})
    scores = [torch.tensor([0.0]), torch.tensor([0.5, 0.6, 0.7, 0.8])]
    assert prune_module._least_important(model, scores, 2) == {1: [0, 1]}


# ------------------------------------------------------------------------------ prune_checkpoint
def _dev() -> str:
    return str(workspace() / "classification-dev.tsv")


def test_prune_keeps_the_last_state_above_the_metric_floor(monkeypatch, tmp_path):
    _, checkpoint = trained("classification")
    values = iter([1.0, 0.95, 0.5])  # unpruned, round 1 (kept), round 2 (below 0.9: undone)

    def fake_evaluate(task, model, tokenizer, examples, settings):
        return {"accuracy": next(values)}, []

    monkeypatch.setattr(prune_module, "evaluate_examples", fake_evaluate)
    result = prune_checkpoint(
        PruneConfig(str(checkpoint), _dev(), str(tmp_path / "out"), target=0.5), log=None
    )
    assert [r.kept for r in result.rounds] == [True, False]
    assert result.heads_pruned == 1 and "fell below 0.9" in result.stopped
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["pruned_heads"] == {str(k): v for k, v in result.rounds[0].removed.items()}


# ------------------------------------------------------------------------------------------- CLI
def test_cli_prune_writes_a_checkpoint_that_evaluate_loads(tmp_path, capsys):
    _, checkpoint = trained("classification")
    out = tmp_path / "pruned"
    assert main(["prune", str(checkpoint), "--dev", _dev(), "--out", str(out), "--target", "0.5"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["heads_pruned"] == 4 and summary["heads_total"] == 8
    assert summary["parameters"][1] < summary["parameters"][0]
    config = json.loads((out / "config.json").read_text())
    assert sum(len(h) for h in config["pruned_heads"].values()) == 4
    report = json.loads((out / "prune_report.json").read_text())
    assert report["unpruned_metric"] == summary["unpruned"] and len(report["rounds"]) >= 1
    assert main(["evaluate", str(out), _dev()]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] == pytest.approx(summary["pruned"])


def test_cli_prune_then_finetune(tmp_path, capsys):
    _, checkpoint = trained("classification")
    out = tmp_path / "pruned"
    train = str(workspace() / "classification-train.tsv")
    args = ["prune", str(checkpoint), "--dev", _dev(), "--out", str(out), "--target", "0.25"]
    assert main([*args, "--finetune-epochs", "1", "--train", train, "--lr", "1e-3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["finetuned"] is not None
    assert json.loads((out / "config.json").read_text())["pruned_heads"]
    assert (out / "model.safetensors").is_file() and (out / "prune_report.json").is_file()


def test_cli_prune_ner_checkpoint(tmp_path, capsys):
    _, checkpoint = trained("ner")
    out = tmp_path / "pruned"
    dev = str(workspace() / "ner-dev.conll")
    assert main(["prune", str(checkpoint), "--dev", dev, "--out", str(out), "--target", "0.25"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["main_metric"] == "f1" and summary["heads_pruned"] >= 1


def _fails_with(capsys, args: list[str], message: str, out: Path) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() and not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "1"], "--target 1.0 must be above 0 and below 1"),
        (["--target", "0.9"], "would remove 7 of the 8 heads"),
        (["--min-metric-ratio", "1.5"], "--min-metric-ratio 1.5 must be in [0, 1]"),
        (["--finetune-epochs", "1"], "needs a training file; pass --train"),
    ],
)
def test_cli_prune_bad_values_are_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    _, checkpoint = trained("classification")
    out = tmp_path / "pruned"
    _fails_with(capsys, ["prune", str(checkpoint), "--dev", _dev(), "--out", str(out), *extra], message, out)


def test_cli_prune_refuses_a_checkpoint_without_a_task_head(tmp_path, capsys):
    out = tmp_path / "pruned"
    pretrained = str(workspace() / "tiny")  # a BertForMaskedLM
    _fails_with(capsys, ["prune", pretrained, "--dev", _dev(), "--out", str(out)], "has no task head", out)


def test_cli_prune_refuses_albert(tmp_path, capsys):
    checkpoint = tmp_path / "albert"
    AlbertForSequenceClassification(AlbertConfig.from_preset("albert-tiny", vocab_size=99)).save_pretrained(
        checkpoint
    )
    out = tmp_path / "pruned"
    _fails_with(
        capsys,
        ["prune", str(checkpoint), "--dev", _dev(), "--out", str(out)],
        "not supported for albert",
        out,
    )


def test_attention_viewer_shows_pruned_heads_as_empty_in_their_places():
    from bertforge.pipelines.common import load_task_model, load_tokenizer
    from bertforge.viz.attention import attention_data

    _, checkpoint = trained("classification")
    model = prune_heads(load_task_model(checkpoint)[0], {0: [1], 1: [0, 3]})
    data = attention_data(model, load_tokenizer(checkpoint), "the movie was good")
    weights = torch.tensor(data["attention"])  # (layers, heads, T, T)
    assert weights.shape[:2] == (2, 4)
    assert weights[0, 1].abs().sum() == 0 and weights[1, [0, 3]].abs().sum() == 0
    torch.testing.assert_close(
        weights[0, [0, 2, 3]].sum(-1), torch.ones(3, weights.shape[-1]), atol=1e-3, rtol=0
    )


def test_cli_prune_refuses_a_target_the_checkpoint_already_meets(tmp_path, capsys):
    _, checkpoint = trained("classification")
    pruned = tmp_path / "pruned"
    assert main(["prune", str(checkpoint), "--dev", _dev(), "--out", str(pruned), "--target", "0.25"]) == 0
    out = tmp_path / "again"
    args = ["prune", str(pruned), "--dev", _dev(), "--out", str(out), "--target", "0.25"]
    _fails_with(capsys, args, "already has 2 of its 8 heads pruned, as many as --target 0.25 asks for", out)
