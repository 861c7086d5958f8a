"""ALBERT: parity with transformers' Albert* classes in both directions for every class (outputs,
losses, hidden states, attentions, padded batches), checkpoint moves between base and heads, the
auto classes of both libraries, cross-layer parameter sharing (one set of parameters per group),
the masked-position pretraining loss, bf16, and the config (presets, validation, JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open

import bertforge.auto as bf_auto
from _helpers import BATCH, LENGTHS, SEQ, assert_close, assert_mlm_checkpoint_moves_both_ways, padded_batch
from bertforge.errors import BertForgeError
from bertforge.models import albert as bf_albert
from bertforge.models.albert import AlbertForMaskedLM, AlbertForPreTraining, AlbertModel
from bertforge.models.albert_config import AlbertConfig
from bertforge.ops import key_padding_mask

TINY: dict[str, Any] = {
    "vocab_size": 99,
    "embedding_size": 16,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "num_hidden_layers": 4,
    "num_hidden_groups": 2,
    "max_position_embeddings": 64,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
}
# Two sharing layouts: 4 layers over 2 groups of 1 layer, and of 2 layers (8 layer calls).
SHARING = {"groups2-inner1": {"inner_group_num": 1}, "groups2-inner2": {"inner_group_num": 2}}
VOCAB, HIDDEN, HEADS = TINY["vocab_size"], TINY["hidden_size"], TINY["num_attention_heads"]

NAMES = (
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
)
AUTO_CLASS = {
    "AlbertModel": "AutoModel",
    "AlbertForPreTraining": "AutoModelForPreTraining",
    "AlbertForMaskedLM": "AutoModelForMaskedLM",
    "AlbertForSequenceClassification": "AutoModelForSequenceClassification",
    "AlbertForTokenClassification": "AutoModelForTokenClassification",
    "AlbertForQuestionAnswering": "AutoModelForQuestionAnswering",
    "AlbertForMultipleChoice": "AutoModelForMultipleChoice",
}
NUM_LABELS = {"AlbertForSequenceClassification": 3, "AlbertForTokenClassification": 5}
NUM_CHOICES = 2
OUTPUT_FIELDS = (
    "loss",
    "logits",
    "prediction_logits",
    "sop_logits",
    "start_logits",
    "end_logits",
    "last_hidden_state",
    "pooler_output",
)


# ------------------------------------------------------------------------------------------ helpers
def bf_config(**overrides: Any) -> AlbertConfig:
    return AlbertConfig(**{**TINY, **overrides})


def hf_config(**overrides: Any) -> transformers.AlbertConfig:
    # Eager attention: transformers' SDPA path returns no attention probabilities.
    return transformers.AlbertConfig(**{**TINY, **overrides}, attn_implementation="eager")


def _with_labels(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if name in NUM_LABELS:
        overrides = {"num_labels": NUM_LABELS[name], **overrides}
    return overrides


def bf_model(name: str, seed: int = 0, **overrides: Any) -> Any:
    torch.manual_seed(seed)
    return getattr(bf_albert, name)(bf_config(**_with_labels(name, overrides))).eval()


def hf_model(name: str, seed: int = 0, **overrides: Any) -> Any:
    torch.manual_seed(seed)
    return getattr(transformers, name)(hf_config(**_with_labels(name, overrides))).eval()


def perturb(model: torch.nn.Module) -> None:
    """Random biases and LayerNorms: the 0/1 initialisation would hide a bias loaded into the wrong place."""
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                param.add_(0.1 * torch.randn(param.shape, generator=gen))


def inputs_for(name: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if name != "AlbertForMultipleChoice":
        return dict(batch)
    rows = torch.tensor([[(b + c) % BATCH for c in range(NUM_CHOICES)] for b in range(BATCH)])
    return {k: v[rows].contiguous() for k, v in batch.items()}


def labels_for(name: str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    if name in ("AlbertForMaskedLM", "AlbertForPreTraining"):
        labels = torch.full((BATCH, SEQ), -100)
        labels[0, [1, 4, 9]] = torch.tensor([5, 17, 98])
        labels[1, [0, 6]] = torch.tensor([3, 64])
        labels[2, 2] = 42
        if name == "AlbertForPreTraining":
            return {"labels": labels, "sentence_order_label": torch.tensor([0, 1, 1])}
        return {"labels": labels}
    if name == "AlbertForSequenceClassification":
        return {"labels": torch.tensor([2, 0, 1])}
    if name == "AlbertForTokenClassification":
        labels = torch.randint(0, NUM_LABELS[name], (BATCH, SEQ), generator=gen)
        for row, length in enumerate(LENGTHS):
            labels[row, length:] = -100
        return {"labels": labels}
    if name == "AlbertForQuestionAnswering":
        return {"start_positions": torch.tensor([2, 40, 1]), "end_positions": torch.tensor([5, 60, SEQ + 3])}
    if name == "AlbertForMultipleChoice":
        return {"labels": torch.tensor([1, 0, 1])}
    return {}


def run(model: Any, name: str, batch: dict[str, torch.Tensor], labels: dict | None = None, **kw: Any) -> Any:
    with torch.no_grad():
        return model(**inputs_for(name, batch), **(labels or {}), **kw)


def assert_same_outputs(ours: Any, theirs: Any, expect_loss: bool, states: bool = False) -> None:
    mine = {n: getattr(ours, n) for n in OUTPUT_FIELDS if getattr(ours, n, None) is not None}
    reference = {n: getattr(theirs, n) for n in OUTPUT_FIELDS if getattr(theirs, n, None) is not None}
    assert set(mine) == set(reference)
    assert ("loss" in mine) == expect_loss
    for key in mine:
        assert_close(mine[key], reference[key])
    if states:
        assert len(ours.hidden_states) == len(theirs.hidden_states)
        assert len(ours.attentions) == len(theirs.attentions)
        for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
            assert_close(a, b)
        for a, b in zip(ours.attentions, theirs.attentions, strict=True):
            assert_close(a, b)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a shared, loaded CPU two threads waiting on each
    other made every forward ~20x slower (measured 2026-11-29)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return padded_batch()


# ----------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_shapes_and_parameter_count_equal_transformers(name, sharing):
    ours, theirs = bf_model(name, **SHARING[sharing]), hf_model(name, **SHARING[sharing])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    assert ours.num_parameters() == theirs.num_parameters()


# ------------------------------------------------------------------------------ transformers -> ours
@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("name", NAMES)
def test_transformers_checkpoint_loads_with_identical_outputs_states_and_losses(
    tmp_path, batch, name, sharing
):
    theirs = hf_model(name, **SHARING[sharing])
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    loader = getattr(bf_albert, name) if sharing == "groups2-inner1" else getattr(bf_auto, AUTO_CLASS[name])
    ours = loader.from_pretrained(tmp_path)
    assert type(ours) is getattr(bf_albert, name)
    assert not ours.training
    kw = {"output_hidden_states": True, "output_attentions": True}
    assert_same_outputs(run(ours, name, batch, **kw), run(theirs, name, batch, **kw), False, states=True)
    labels = labels_for(name)
    if labels:
        assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), True)


# ------------------------------------------------------------------------------ ours -> transformers
@pytest.mark.parametrize("loader", ["specific", "auto"])
@pytest.mark.parametrize("name", NAMES)
def test_our_checkpoint_loads_in_transformers_with_identical_outputs(tmp_path, batch, name, loader):
    sharing = SHARING["groups2-inner2" if loader == "auto" else "groups2-inner1"]
    ours = bf_model(name, seed=1, **sharing)
    perturb(ours)
    ours.save_pretrained(tmp_path)
    cls = getattr(transformers, name if loader == "specific" else AUTO_CLASS[name])
    theirs, info = cls.from_pretrained(tmp_path, output_loading_info=True, attn_implementation="eager")
    assert type(theirs) is getattr(transformers, name)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    theirs.eval()
    kw = {"output_hidden_states": True, "output_attentions": True}
    assert_same_outputs(run(ours, name, batch, **kw), run(theirs, name, batch, **kw), False, states=True)
    labels = labels_for(name)
    if labels:
        assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), True)


def test_non_divisible_layer_groups_map_layers_as_transformers_does(tmp_path, batch):
    # 5 layers over 2 groups: int(i / 2.5) -> groups 0, 0, 0, 1, 1.
    theirs = hf_model("AlbertModel", num_hidden_layers=5, num_hidden_groups=2, inner_group_num=2)
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    ours = AlbertModel.from_pretrained(tmp_path)
    assert ours.encoder.layer_to_group == (0, 0, 0, 1, 1)
    kw = {"output_hidden_states": True, "output_attentions": True}
    out = run(ours, "AlbertModel", batch, **kw)
    assert len(out.hidden_states) == 1 + 5 * 2 and len(out.attentions) == 5 * 2
    assert_same_outputs(out, run(theirs, "AlbertModel", batch, **kw), False, states=True)


# ---------------------------------------------------------------------------- base <-> head moves
@pytest.mark.parametrize("name", NAMES[1:])
def test_base_checkpoint_loads_into_every_head_and_back(tmp_path, batch, name):
    base = bf_model("AlbertModel", seed=2)
    perturb(base)
    base.save_pretrained(tmp_path / "base")
    head = getattr(bf_albert, name).from_pretrained(tmp_path / "base")
    encoder_keys = [
        k for k in base.state_dict() if not k.startswith("pooler") or head.albert.pooler is not None
    ]
    for key in encoder_keys:
        assert torch.equal(head.albert.state_dict()[key], base.state_dict()[key]), key
    # The head is a transformers-loadable checkpoint too, and the base model loads from it.
    head.save_pretrained(tmp_path / "head")
    back = AlbertModel.from_pretrained(tmp_path / "head")
    for key in encoder_keys:
        assert torch.equal(back.state_dict()[key], base.state_dict()[key]), key
    theirs = transformers.AlbertModel.from_pretrained(tmp_path / "head").eval()
    expected = run(base, "AlbertModel", batch).last_hidden_state
    assert_close(run(theirs, "AlbertModel", batch).last_hidden_state, expected)


def test_transformers_base_checkpoint_loads_into_our_head(tmp_path, batch):
    theirs = hf_model("AlbertModel", inner_group_num=2)
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    ours = AlbertForPreTraining.from_pretrained(tmp_path)
    with torch.no_grad():
        assert_close(ours.albert(**batch).pooler_output, theirs(**batch).pooler_output)


# ------------------------------------------------------------------------------ parameter sharing
def test_layers_of_one_group_run_the_same_module_objects():
    model = bf_model("AlbertModel", inner_group_num=2)
    encoder = model.encoder
    assert encoder.layer_to_group == (0, 0, 1, 1)
    assert encoder.group_for_layer(0) is encoder.group_for_layer(1) is encoder.albert_layer_groups[0]
    assert encoder.group_for_layer(2) is encoder.group_for_layer(3) is encoder.albert_layer_groups[1]
    assert encoder.group_for_layer(1) is not encoder.group_for_layer(2)
    # One set per group: 2 groups x 2 inner layers x 16 tensors, plus the E -> H projection.
    assert len(list(encoder.parameters())) == 2 * 2 * 16 + 2


def test_changing_a_group_weight_changes_every_layer_that_uses_it(batch):
    model = bf_model("AlbertModel", num_hidden_groups=1, num_hidden_layers=3)
    calls: list[int] = []
    layer = model.encoder.albert_layer_groups[0].albert_layers[0]
    layer.register_forward_hook(lambda *_: calls.append(1))
    before = run(model, "AlbertModel", batch, output_hidden_states=True).hidden_states
    assert len(calls) == 3  # one module, run for all three layers
    change = 0.5 * torch.randn(layer.ffn.weight.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        layer.ffn.weight.add_(change)
    after = run(model, "AlbertModel", batch, output_hidden_states=True).hidden_states
    mask = key_padding_mask(batch["attention_mask"])
    for index in range(3):
        # Each layer's output is the (changed) shared module applied to that layer's input ...
        with torch.no_grad():
            recomputed = layer(after[index], mask)[0]
        assert_close(after[index + 1], recomputed)
        # ... and differs from what the same input gave before the change, for every layer.
        with torch.no_grad():
            layer.ffn.weight.sub_(change)
            old = layer(after[index], mask)[0]
            layer.ffn.weight.add_(change)
        assert (old - recomputed).abs().max() > 1e-3
    assert_close(after[0], before[0])


def test_shared_parameters_get_the_gradient_of_every_layer_that_uses_them(batch):
    model = bf_model("AlbertModel", num_hidden_groups=1, num_hidden_layers=2)
    model(**batch).last_hidden_state.sum().backward()
    shared = model.encoder.albert_layer_groups[0].albert_layers[0].ffn.weight
    # The same computation as two layers with separate (identical) copies: the gradients add up.
    torch.manual_seed(0)
    unshared = AlbertModel(bf_config(num_hidden_groups=2, num_hidden_layers=2))
    state = model.state_dict()
    for key in list(state):
        if ".albert_layer_groups.0." in key:
            state[key.replace(".albert_layer_groups.0.", ".albert_layer_groups.1.")] = state[key]
    unshared.load_state_dict(state)
    unshared.eval()(**batch).last_hidden_state.sum().backward()
    groups = unshared.encoder.albert_layer_groups
    expected = groups[0].albert_layers[0].ffn.weight.grad + groups[1].albert_layers[0].ffn.weight.grad
    assert_close(shared.grad, expected, atol=1e-5)


def test_checkpoint_stores_one_set_of_weights_per_group(tmp_path):
    bf_model("AlbertModel", num_hidden_layers=12, num_hidden_groups=1).save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
    layer_keys = [k for k in keys if ".albert_layer_groups." in k]
    assert len(layer_keys) == 16
    assert all(".albert_layer_groups.0.albert_layers.0." in k for k in layer_keys)


# -------------------------------------------------------------------- hidden states and attentions
def test_hidden_states_and_attentions_count_layer_calls_and_respect_padding(batch):
    model = bf_model("AlbertModel", inner_group_num=2)
    out = run(model, "AlbertModel", batch, output_hidden_states=True, output_attentions=True)
    calls = TINY["num_hidden_layers"] * 2
    assert len(out.hidden_states) == calls + 1 and len(out.attentions) == calls
    with torch.no_grad():
        projected = model.encoder.embedding_hidden_mapping_in(
            model.embeddings(batch["input_ids"], batch["token_type_ids"])
        )
    assert_close(out.hidden_states[0], projected)
    assert_close(out.hidden_states[-1], out.last_hidden_state)
    for probs in out.attentions:
        assert probs.shape == (BATCH, HEADS, SEQ, SEQ)
        assert_close(probs.sum(-1), torch.ones(BATCH, HEADS, SEQ))
        for row, length in enumerate(LENGTHS[1:], start=1):
            assert probs[row, :, :, length:].abs().max() == 0


@pytest.mark.parametrize("name", [n for n in NAMES if n != "AlbertForMultipleChoice"])
def test_outputs_do_not_depend_on_padding(batch, name):
    model = bf_model(name, inner_group_num=2)
    padded = run(model, name, batch)
    for row, length in enumerate(LENGTHS[1:], start=1):
        single = {k: v[row : row + 1, :length] for k, v in batch.items() if k != "attention_mask"}
        alone = run(model, name, single)
        for field in OUTPUT_FIELDS:
            value = getattr(alone, field, None)
            if value is None:
                continue
            reference = getattr(padded, field)[row : row + 1]
            if value.dim() >= 2 and value.shape[1] == length:
                reference = reference[:, :length]
            assert_close(value, reference)


# ------------------------------------------------------------------------------------------- losses
def test_pretraining_forward_loss_is_mlm_plus_sop_and_accepts_next_sentence_label(batch):
    name = "AlbertForPreTraining"
    model = bf_model(name)
    both = labels_for(name)
    out = run(model, name, batch, both)
    mlm = run(model, name, batch, {"labels": both["labels"]}).loss
    sop = run(model, name, batch, {"sentence_order_label": both["sentence_order_label"]}).loss
    alias = run(
        model, name, batch, {"labels": both["labels"], "next_sentence_label": both["sentence_order_label"]}
    )
    assert out.prediction_logits.shape == (BATCH, SEQ, VOCAB) and out.sop_logits.shape == (BATCH, 2)
    assert_close(sop, F.cross_entropy(out.sop_logits, both["sentence_order_label"]))
    picked = both["labels"] != -100
    expected_mlm = F.cross_entropy(out.prediction_logits[picked], both["labels"][picked])
    assert_close(mlm, expected_mlm)
    assert_close(out.loss, mlm + sop)
    assert_close(alias.loss, out.loss)
    assert run(model, name, batch).loss is None


@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("name", ["AlbertForPreTraining", "AlbertForMaskedLM"])
def test_pretraining_loss_equals_transformers_loss_and_gradients(batch, name, sharing):
    labels = labels_for(name)
    ours = bf_model(name, **SHARING[sharing])
    theirs = hf_model(name, **SHARING[sharing])
    theirs.load_state_dict(ours.state_dict())
    ours_labels = {"labels": labels["labels"]}
    if "sentence_order_label" in labels:
        ours_labels["next_sentence_label"] = labels["sentence_order_label"]
    result = ours.pretraining_loss(**batch, **ours_labels)
    result.loss.backward()
    expected = theirs(**batch, **labels).loss
    expected.backward()
    assert_close(result.loss.detach(), expected.detach())
    assert result.mlm_count.item() == 6
    if name == "AlbertForPreTraining":
        assert result.nsp_count.item() == BATCH
        assert_close(result.loss, result.mlm_loss + result.nsp_loss)
    their_grads = {n: p.grad for n, p in theirs.named_parameters() if p.grad is not None}
    ours_grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    assert len(ours_grads) > 20 and ours_grads.keys() <= their_grads.keys()
    for key, grad in ours_grads.items():
        assert_close(grad, their_grads[key], atol=1e-5)


def test_forward_rows_equals_forward_at_those_positions(batch):
    model = bf_model("AlbertModel", inner_group_num=2)
    rows = torch.tensor([[0, 3, 9], [0, 6, 0], [0, 2, 2]])
    with torch.no_grad():
        full = model(**batch)
        subset = model.forward_rows(
            batch["input_ids"], rows, batch["attention_mask"], batch["token_type_ids"]
        )
    expected = full.last_hidden_state.gather(1, rows[..., None].expand(-1, -1, HIDDEN))
    assert subset.last_hidden_state.shape == (BATCH, 3, HIDDEN)
    assert_close(subset.last_hidden_state, expected)
    assert_close(subset.pooler_output, full.pooler_output)
    assert_close(model.sequence_output(**batch), full.last_hidden_state)


def test_pretraining_loss_without_labels_says_what_it_needs(batch):
    with pytest.raises(ValueError, match="needs labels"):
        bf_model("AlbertForMaskedLM").pretraining_loss(**batch)


def test_sequence_classification_losses_follow_berts_rules(batch):
    name = "AlbertForSequenceClassification"
    regression = run(bf_model(name, num_labels=1), name, batch, {"labels": torch.tensor([0.5, -1.0, 2.0])})
    assert_close(regression.loss, ((regression.logits[:, 0] - torch.tensor([0.5, -1.0, 2.0])) ** 2).mean())
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    out = run(bf_model(name), name, batch, {"labels": multi})
    assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, multi))


def test_classifier_dropout_prob_drives_head_dropout_and_falls_back_to_hidden_dropout():
    assert bf_model("AlbertForSequenceClassification", classifier_dropout_prob=0.3).dropout.p == 0.3
    assert bf_model("AlbertForPreTraining").sop_classifier.dropout.p == 0.1
    assert bf_model("AlbertForTokenClassification", classifier_dropout_prob=None).dropout.p == 0.1


# -------------------------------------------------------------------------------------- tied decoder
@pytest.mark.parametrize("cls", [AlbertForMaskedLM, AlbertForPreTraining])
def test_mlm_decoder_is_the_word_embedding_matrix(cls):
    model = cls(bf_config())
    decoder = model.predictions.decoder
    assert decoder.weight is model.albert.embeddings.word_embeddings.weight
    assert decoder.weight.shape == (VOCAB, TINY["embedding_size"])
    assert decoder.bias is model.predictions.bias
    assert model.get_output_embeddings() is decoder


def test_untied_config_gives_a_separate_decoder_matrix_and_bias():
    tied = AlbertForMaskedLM(bf_config())
    untied = AlbertForMaskedLM(bf_config(tie_word_embeddings=False))
    assert untied.predictions.decoder.weight is not untied.albert.embeddings.word_embeddings.weight
    assert untied.predictions.decoder.bias is not untied.predictions.bias
    # The decoder's own (V, E) matrix and (V,) bias, as in transformers 5.
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * TINY["embedding_size"] + VOCAB


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("name", ["AlbertForMaskedLM", "AlbertForPreTraining"])
def test_mlm_decoder_ties_and_biases_move_both_ways_as_transformers(tmp_path, batch, name, tie):
    # Untied, transformers 5 gives the decoder its own matrix and bias (the one in the logits) and
    # saves predictions.bias too, unused.
    theirs = hf_model(name, tie_word_embeddings=tie)
    perturb(theirs)
    assert_mlm_checkpoint_moves_both_ways(theirs, getattr(bf_albert, name), tmp_path, batch)
    ours = getattr(bf_albert, name).from_pretrained(tmp_path / "hf")
    assert (ours.predictions.decoder.bias is ours.predictions.bias) is tie
    assert ours.predictions.bias.requires_grad is tie  # untied, nothing reads it: frozen for DDP


# -------------------------------------------------------------------------------------------- bf16
def test_bf16_autocast_and_bf16_weights_run_close_to_float32(batch):
    model = bf_model("AlbertForPreTraining", inner_group_num=2)
    labels = labels_for("AlbertForPreTraining")
    reference = run(model, "AlbertForPreTraining", batch).prediction_logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = run(model, "AlbertForPreTraining", batch, output_attentions=True).prediction_logits
        loss = (
            model.train()
            .pretraining_loss(
                **batch, labels=labels["labels"], next_sentence_label=labels["sentence_order_label"]
            )
            .loss
        )
    loss.backward()
    assert torch.isfinite(loss) and model.albert.encoder.embedding_hidden_mapping_in.weight.grad is not None
    assert (logits.float() - reference).abs().max() < 0.1
    low = model.eval().to(torch.bfloat16)
    assert (run(low, "AlbertForPreTraining", batch).prediction_logits.float() - reference).abs().max() < 0.1


# ------------------------------------------------------------------------------------------- config
def test_presets_have_the_published_sizes():
    base = AlbertConfig.from_preset("albert-base")
    assert (base.embedding_size, base.hidden_size, base.num_hidden_layers) == (128, 768, 12)
    assert (base.num_attention_heads, base.intermediate_size, base.vocab_size) == (12, 3072, 30000)
    assert (base.num_hidden_groups, base.inner_group_num, base.hidden_act) == (1, 1, "gelu_new")
    assert AlbertConfig.from_preset("albert-base-v2") == base
    xxlarge = AlbertConfig.from_preset("albert-xxlarge")
    assert (xxlarge.hidden_size, xxlarge.num_attention_heads, xxlarge.intermediate_size) == (4096, 64, 16384)
    assert AlbertConfig.from_preset("albert-large").num_hidden_layers == 24
    assert AlbertConfig.from_preset("albert-tiny", vocab_size=500).vocab_size == 500
    # transformers' defaults are ALBERT-xxlarge's, and ours are the same.
    theirs = transformers.AlbertConfig().to_dict()
    ours = AlbertConfig().to_dict()
    for key in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_act",
                "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                "type_vocab_size", "layer_norm_eps", "classifier_dropout_prob", "pad_token_id",
                "bos_token_id", "eos_token_id", "tie_word_embeddings"):  # fmt: skip
        assert ours[key] == theirs[key], key


def test_albert_base_has_albert_base_v2s_parameter_count():
    assert AlbertModel(AlbertConfig.from_preset("albert-base")).num_parameters() == 11_683_584


def test_recipe_family_comes_from_the_preset_name():
    from bertforge.train.recipe import ModelSection

    section = ModelSection(preset="albert-tiny")
    assert section.family() == "albert"
    config = section.model_config(vocab_size=200, pad_token_id=0)
    assert isinstance(config, AlbertConfig) and config.vocab_size == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_attention_heads": 5}, "divisible by num_attention_heads"),
        ({"num_hidden_groups": 5}, "must not exceed num_hidden_layers"),
        ({"inner_group_num": 0}, "inner_group_num"),
        ({"hidden_act": "tanh"}, "hidden_act"),
        ({"classifier_dropout_prob": 1.5}, "classifier_dropout_prob"),
        ({"pad_token_id": 99}, "pad_token_id"),
    ],
)
def test_invalid_config_is_refused_with_a_clear_message(overrides, message):
    with pytest.raises(BertForgeError, match=message):
        bf_config(**overrides)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(BertForgeError, match="albert-base"):
        AlbertConfig.from_preset("albert-huge")


def test_config_json_round_trips_through_transformers(tmp_path):
    ours = bf_config(inner_group_num=2, id2label={0: "no", 1: "yes"})
    ours.save_pretrained(tmp_path)
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(theirs) is transformers.AlbertConfig
    assert (theirs.inner_group_num, theirs.embedding_size, theirs.id2label) == (2, 16, {0: "no", 1: "yes"})
    theirs.save_pretrained(tmp_path)
    back = bf_auto.AutoConfig.from_pretrained(tmp_path)
    assert isinstance(back, AlbertConfig)
    assert back.replace(extra={}) == ours.replace(extra={})
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "albert"
