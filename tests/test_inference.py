"""bf16 inference (bertforge.inference): the converted copy of every family and head stays within
tolerance of float32 with autocast's numbers but no autocast; it is made once, remade when the
weights change (fused AdamW included) and leaves the caller's model alone; the pipelines, predict /
evaluate and the server run it without autocast and without a second copy where they own the model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import Any

import pytest
import torch
from torch import nn

from _helpers import inputs_for, minilm_path, output_tensors, padded_batch
from _task_data import single_thread, trained  # noqa: F401  (autouse: one thread)
from bertforge import BertModel, auto, inference
from bertforge.inference import convert_for_inference, inference_dtype, inference_model
from bertforge.pipelines import InferenceSettings, answer_questions, classify, load_task_model, ner
from bertforge.pipelines.evaluation import run_on_file
from bertforge.tokenizer import BertTokenizer

BF16 = torch.bfloat16
SIZES: dict[str, dict[str, int]] = {
    "bert": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37},
    "roberta": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "max_position_embeddings": 66,
    },
    "albert": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "embedding_size": 16,
    },
    "distilbert": {"n_layers": 2, "n_heads": 4, "dim": 32, "hidden_dim": 37},
}
KINDS = (
    "base",
    "masked-lm",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "multiple-choice",
)


def family_model(model_type: str, kind: str, seed: int = 0) -> Any:
    config = auto.AutoConfig.for_model(model_type, vocab_size=99, **SIZES[model_type])
    torch.manual_seed(seed)
    return auto.model_class_for(model_type, kind)(config).eval()


def family_inputs(model: Any, model_type: str, kind: str) -> dict[str, torch.Tensor]:
    batch = padded_batch()
    if model_type == "roberta":
        batch.pop("token_type_ids")  # one token type
    name = "BertForMultipleChoice" if kind == "multiple-choice" else "BertModel"
    return auto.forward_kwargs(model, inputs_for(name, batch))


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected).norm() / expected.norm()).item()


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[nn.Module]:
    """Every converted copy made while the test runs."""
    made: list[nn.Module] = []
    original = inference._converted_copy

    def counting(*args: Any) -> nn.Module:
        made.append(original(*args))
        return made[-1]

    monkeypatch.setattr(inference, "_converted_copy", counting)
    return made


# ------------------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model_type", list(SIZES))
def test_bf16_copy_of_every_family_and_head_is_within_tolerance_of_float32(
    model_type: str, kind: str
) -> None:
    model = family_model(model_type, kind)
    inputs = family_inputs(model, model_type, kind)
    converted = inference_model(model, BF16)
    with torch.inference_mode():
        expected = output_tensors(model(**inputs))
        actual = output_tensors(converted(**inputs))
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        # Measured at most 2.0e-2 (multiple choice: a few logits near zero); 1e-3 to 1e-2 elsewhere.
        assert relative_error(actual[name], tensor) < 3e-2, name
        assert not torch.equal(actual[name].float(), tensor), f"{name} did not run in bf16"
    assert inference_dtype(converted) == BF16


@pytest.mark.parametrize("model_type", list(SIZES))
def test_bf16_copy_gives_autocasts_numbers_without_autocast(model_type: str) -> None:
    """Linear layers in bf16, LayerNorm and the residual stream in float32: what autocast computes,
    with the weights converted once instead of on every call."""
    model = family_model(model_type, "sequence-classification")
    inputs = family_inputs(model, model_type, "sequence-classification")
    converted = inference_model(model, BF16)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=BF16):
            expected = model(**inputs).logits
        assert torch.equal(converted(**inputs).logits, expected)


def test_linear_weights_are_bf16_while_layer_norm_and_embeddings_stay_float32() -> None:
    model = family_model("bert", "sequence-classification")
    converted = inference_model(model, BF16)
    for module in converted.modules():
        if isinstance(module, nn.Linear):
            assert module.weight.dtype == BF16
        elif isinstance(module, (nn.LayerNorm, nn.Embedding)):
            assert module.weight.dtype == torch.float32


def test_minilm_bf16_last_hidden_state_is_within_1e_2_of_float32() -> None:
    model = BertModel.from_pretrained(minilm_path())
    tokenizer = BertTokenizer.from_pretrained(minilm_path())
    texts = ["A man is eating food.", "The quick brown fox jumps over the lazy dog near the bank."]
    encoding = tokenizer(texts, padding=True, return_tensors="pt")
    real = encoding["attention_mask"].bool()
    with torch.inference_mode():
        expected = model(**encoding).last_hidden_state[real]
        actual = inference_model(model, BF16)(**encoding).last_hidden_state[real]
    assert relative_error(actual, expected) < 1e-2  # measured 6.6e-3 on real paragraphs


# ------------------------------------------------------------------------- made once, kept fresh
def test_the_copy_is_made_once_and_reused_while_the_weights_are_unchanged(conversions) -> None:
    model = family_model("bert", "base")
    first = inference_model(model, BF16)
    assert inference_model(model, BF16) is first
    assert conversions == [first]


def test_float32_none_or_the_models_own_dtype_return_the_model_itself(conversions) -> None:
    model = family_model("bert", "base")
    assert inference_model(model, None) is model
    assert inference_model(model, torch.float32) is model
    converted = inference_model(model, BF16)
    assert inference_model(converted, BF16) is converted
    assert len(conversions) == 1


def _fused_adamw_step(model: nn.Module) -> None:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    model(**family_inputs(model, "bert", "base")).last_hidden_state.sum().backward()
    optimizer.step()
    model.eval()


def _load_other_weights(model: nn.Module) -> None:
    model.load_state_dict(family_model("bert", "base", seed=1).state_dict())


def _scale_through_data(model: nn.Module) -> None:
    for linear in model.modules():
        if isinstance(linear, nn.Linear):
            linear.weight.data.mul_(-2.0)


@pytest.mark.parametrize("change", [_fused_adamw_step, _load_other_weights, _scale_through_data])
def test_the_copy_is_remade_when_the_weights_change(conversions, change) -> None:
    """Fine-tuning evaluates its dev set in bf16 every epoch: each evaluation must see the weights
    of that moment. Fused AdamW and ``.data`` leave the version counters alone."""
    model = family_model("bert", "base")
    inputs = family_inputs(model, "bert", "base")
    stale = inference_model(model, BF16)
    change(model)
    fresh = inference_model(model, BF16)
    assert fresh is not stale and len(conversions) == 2
    query = model.encoder.layer[0].attention.self.query.weight.detach().to(BF16)
    assert torch.equal(fresh.encoder.layer[0].attention.self.query.weight, query)
    assert not torch.equal(stale.encoder.layer[0].attention.self.query.weight, query)
    with torch.inference_mode():
        expected = model(**inputs).last_hidden_state
        assert relative_error(fresh(**inputs).last_hidden_state, expected) < 2e-2


def test_the_callers_model_keeps_its_dtype_mode_and_gradients() -> None:
    model = family_model("bert", "masked-lm").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted = inference_model(model, BF16)
    assert model.training and not converted.training
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in converted.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_tied_decoder_stays_tied_to_the_word_embeddings_in_the_copy() -> None:
    converted = inference_model(family_model("bert", "masked-lm"), BF16)
    decoder = converted.cls.predictions.decoder.weight
    assert decoder is converted.bert.embeddings.word_embeddings.weight
    assert decoder.dtype == BF16


def test_convert_for_inference_converts_the_model_itself(conversions) -> None:
    model = family_model("bert", "sequence-classification").train()
    assert convert_for_inference(model, BF16) is model
    assert inference_dtype(model) == BF16 and not model.training
    assert inference_model(model, BF16) is model  # already there: no copy
    assert conversions == []


def test_a_bad_dtype_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="torch.bfloat16"):
        inference_model(family_model("bert", "base"), torch.int8)


# ---------------------------------------------------------------------- pipelines, CLI, server
def _record_runs(model: nn.Module) -> list[tuple[bool, torch.dtype]]:
    """(autocast on?, the dtype the model multiplies in) at each forward of ``model`` or of a copy
    made of it afterwards (deepcopy keeps the hook)."""
    runs: list[tuple[bool, torch.dtype]] = []
    model.register_forward_pre_hook(
        lambda module, args: runs.append((torch.is_autocast_enabled("cpu"), inference_dtype(module)))
    )
    return runs


def test_task_pipelines_in_bf16_run_one_converted_copy_without_autocast(conversions) -> None:
    bf16 = InferenceSettings(dtype=BF16)
    pipelines = {
        "classification": lambda m, t, s: classify(m, t, ["a good film", "a bad film"], settings=s),
        "ner": lambda m, t, s: ner(m, t, ["Alice met Bob in Paris"], settings=s),
        "qa": lambda m, t, s: answer_questions(m, t, ["What colour?"], ["The sky is blue."], s),
    }
    for task, run in pipelines.items():
        out = trained(task)[1]
        model, _ = load_task_model(out)
        tokenizer = BertTokenizer.from_pretrained(out)
        runs = _record_runs(model)
        answers = []
        for settings, dtype in ((bf16, BF16), (bf16, BF16), (None, torch.float32)):
            runs.clear()
            answers.append(run(model, tokenizer, settings))
            assert runs and all(run == (False, dtype) for run in runs), (task, runs)
        assert answers[0] == answers[1]
        assert inference_dtype(model) == torch.float32  # the caller's model is untouched
    assert len(conversions) == len(pipelines)  # one per model, not one per call


def test_predict_in_bf16_converts_the_loaded_model_without_a_copy(conversions) -> None:
    out = trained("classification")[1]
    dev = out.parent / "classification-dev.tsv"
    fp32, predictions, _ = run_on_file(out, dev)
    bf16, bf16_predictions, _ = run_on_file(out, dev, dtype=BF16)
    assert conversions == []  # converted in place: no copy beside the float32 weights
    assert fp32 is not None and bf16 is not None
    assert bf16["accuracy"] == pytest.approx(fp32["accuracy"], abs=0.03)
    agree = sum(a["label"] == b["label"] for a, b in zip(predictions, bf16_predictions, strict=True))
    assert agree >= 0.95 * len(predictions)


def test_the_server_in_bf16_shares_one_converted_model_between_its_routes(conversions) -> None:
    from bertforge.serve import ServeSettings
    from bertforge.serve.runners import load_service

    service = load_service(trained("classification")[1], ServeSettings(bf16=True))
    assert inference_dtype(service.model) == BF16
    assert service.embedder.encoder is service.model.base_model
    assert conversions == []
    assert len(service.run_embed(["a good film"])[0]) == service.model.config.hidden_size
    assert service.run_classify([("a good film", None)])[0][0]["label"] in ("0", "1")
