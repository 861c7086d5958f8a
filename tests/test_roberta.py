"""RoBERTa: parity with transformers' Roberta* classes in both directions for every class (padded
batches, whose pad id 1 changes the position ids), attentions and hidden states, losses, base <-> head
checkpoint moves, the Auto classes of both libraries, bf16, the config and its presets."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import transformers

from _helpers import TINY, assert_close, assert_mlm_checkpoint_moves_both_ways, output_tensors
from bertforge import auto
from bertforge.errors import BertForgeError
from bertforge.models.roberta import (
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
    create_position_ids_from_input_ids,
)
from bertforge.models.roberta_config import RobertaConfig, roberta_preset_names

# CONTRACT's tiny sizes; RoBERTa's pad id 1 and 64 tokens + the 2 rows before the first position.
ROBERTA_TINY: dict[str, Any] = {
    **TINY,
    "max_position_embeddings": 66,
    "pad_token_id": 1,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
}
PAD, BOS, EOS = 1, 0, 2
VOCAB, HIDDEN, LAYERS, HEADS = (
    TINY[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
)
BATCH, SEQ = 3, 11
LENGTHS = (11, 7, 4)
NUM_CHOICES = 2

NAMES = (
    "RobertaModel",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "RobertaForQuestionAnswering",
    "RobertaForMultipleChoice",
)
HEADS_ONLY = NAMES[1:]
AUTO_CLASS = {
    "RobertaModel": "AutoModel",
    "RobertaForMaskedLM": "AutoModelForMaskedLM",
    "RobertaForSequenceClassification": "AutoModelForSequenceClassification",
    "RobertaForTokenClassification": "AutoModelForTokenClassification",
    "RobertaForQuestionAnswering": "AutoModelForQuestionAnswering",
    "RobertaForMultipleChoice": "AutoModelForMultipleChoice",
}
NUM_LABELS = {"RobertaForSequenceClassification": 3, "RobertaForTokenClassification": 5}


def bf_class(name: str) -> type:
    from bertforge.models import roberta

    return getattr(roberta, name)


def hf_class(name: str) -> type:
    return getattr(transformers, name)


def bf_config(**overrides: Any) -> RobertaConfig:
    return RobertaConfig(**{**ROBERTA_TINY, **overrides})


def hf_config(**overrides: Any) -> transformers.RobertaConfig:
    return transformers.RobertaConfig(**{**ROBERTA_TINY, **overrides})


def _labels_kw(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if name in NUM_LABELS:
        overrides.setdefault("num_labels", NUM_LABELS[name])
    return overrides


def bf_model(name: str, seed: int = 0, **overrides: Any) -> Any:
    torch.manual_seed(seed)
    return bf_class(name)(bf_config(**_labels_kw(name, overrides))).eval()


def hf_model(name: str, seed: int = 0, **overrides: Any) -> Any:
    torch.manual_seed(seed)
    return hf_class(name)(hf_config(**_labels_kw(name, overrides))).eval()


def roberta_batch(seed: int = 0, left_padding: bool = False) -> dict[str, torch.Tensor]:
    """(3, 11) ``<s> ... </s>`` rows of lengths 11, 7, 4 padded with id 1, and the 1/0 mask."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.full((BATCH, SEQ), PAD)
    attention_mask = torch.zeros(BATCH, SEQ, dtype=torch.long)
    for row, length in enumerate(LENGTHS):
        tokens = torch.randint(3, VOCAB, (length,), generator=gen)
        tokens[0], tokens[-1] = BOS, EOS
        span = slice(SEQ - length, SEQ) if left_padding else slice(0, length)
        input_ids[row, span] = tokens
        attention_mask[row, span] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return roberta_batch()


def inputs_for(name: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if name != "RobertaForMultipleChoice":
        return dict(batch)
    rows = torch.tensor([[(b + c) % BATCH for c in range(NUM_CHOICES)] for b in range(BATCH)])
    return {k: v[rows].contiguous() for k, v in batch.items()}


def labels_for(name: str) -> dict[str, torch.Tensor]:
    if name == "RobertaForMaskedLM":
        labels = torch.full((BATCH, SEQ), -100)
        labels[0, [1, 4, 9]] = torch.tensor([5, 17, 98])
        labels[1, [3, 5]] = torch.tensor([3, 64])
        labels[2, 2] = 42
        return {"labels": labels}
    if name == "RobertaForSequenceClassification":
        return {"labels": torch.tensor([2, 0, 1])}
    if name == "RobertaForTokenClassification":
        labels = torch.randint(0, 5, (BATCH, SEQ), generator=torch.Generator().manual_seed(11))
        for row, length in enumerate(LENGTHS):
            labels[row, length:] = -100
        labels[0, 0] = -100
        return {"labels": labels}
    if name == "RobertaForQuestionAnswering":
        return {"start_positions": torch.tensor([2, 40, 1]), "end_positions": torch.tensor([5, 60, SEQ + 3])}
    if name == "RobertaForMultipleChoice":
        return {"labels": torch.tensor([1, 0, 1])}
    return {}


def perturb(model: torch.nn.Module) -> None:
    """Random biases, LayerNorms and padding rows: initialised as 0/1 they would hide a tensor loaded
    into the wrong place (the position table's padding row is read at every padded position)."""
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                param.add_(0.1 * torch.randn(param.shape, generator=gen))
            elif name.endswith("position_embeddings.weight"):
                param[PAD].add_(torch.randn(param.shape[1], generator=gen))


def run(model: Any, name: str, batch: dict[str, torch.Tensor], labels: dict | None = None, **kw: Any) -> Any:
    with torch.no_grad():
        return model(**inputs_for(name, batch), **(labels or {}), **kw)


def assert_same_outputs(ours: Any, theirs: Any, expect_loss: bool) -> None:
    mine, reference = output_tensors(ours), output_tensors(theirs)
    assert set(mine) == set(reference)
    assert ("loss" in mine) == expect_loss
    for key in mine:
        assert_close(mine[key], reference[key])


# ------------------------------------------------------------------------------------------- config
def test_config_defaults_are_roberta_base():
    config = RobertaConfig()
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (50265, 768, 12)
    assert (config.max_position_embeddings, config.type_vocab_size, config.layer_norm_eps) == (514, 1, 1e-5)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2)
    assert config.max_sequence_length == 512
    assert config.model_type == "roberta"


@pytest.mark.parametrize(
    ("name", "layers", "hidden", "heads"),
    [
        ("roberta-tiny", 2, 128, 2),
        ("roberta-mini", 4, 256, 4),
        ("roberta-small", 4, 512, 8),
        ("roberta-medium", 8, 512, 8),
        ("roberta-base", 12, 768, 12),
        ("roberta-large", 24, 1024, 16),
        ("roberta-L6-H256", 6, 256, 4),
    ],
)
def test_presets(name, layers, hidden, heads):
    config = RobertaConfig.from_preset(name, vocab_size=500)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        layers,
        hidden,
        heads,
    )
    assert config.intermediate_size == 4 * hidden
    assert (config.max_position_embeddings, config.type_vocab_size, config.vocab_size) == (514, 1, 500)
    assert name in roberta_preset_names()


def test_preset_names_without_the_family_prefix():
    assert RobertaConfig.from_preset("tiny") == RobertaConfig.from_preset("roberta-tiny")
    assert RobertaConfig.from_preset("L4-H256") == RobertaConfig.from_preset("roberta-mini")


def test_unknown_preset_lists_the_names():
    with pytest.raises(BertForgeError, match="roberta-tiny"):
        RobertaConfig.from_preset("roberta-huge")


def test_transformers_config_json_loads_with_every_field(tmp_path):
    hf_config(num_labels=3, classifier_dropout=0.2, bos_token_id=5).save_pretrained(tmp_path)
    config = auto.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is RobertaConfig
    for key, value in {**ROBERTA_TINY, "num_labels": 3, "classifier_dropout": 0.2, "bos_token_id": 5}.items():
        assert getattr(config, key) == value, key
    assert config.extra["is_decoder"] is False  # decoder keys kept for the round trip
    config.save_pretrained(tmp_path / "again")
    assert RobertaConfig.from_pretrained(tmp_path / "again") == config


def test_our_config_json_loads_in_transformers(tmp_path):
    bf_config(eos_token_id=7).save_pretrained(tmp_path)
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(theirs) is transformers.RobertaConfig
    for key, value in {**ROBERTA_TINY, "eos_token_id": 7, "bos_token_id": 0}.items():
        assert getattr(theirs, key) == value, key


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_position_embeddings": 2}, "pad_token_id \\+ 1"),
        ({"pad_token_id": 99}, "pad_token_id"),
        ({"num_attention_heads": 5}, "divisible"),
        ({"extra": {"is_decoder": True}}, "decoder"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(BertForgeError, match=message):
        bf_config(**overrides)


# ------------------------------------------------------------------------------------- position ids
def test_position_ids_number_real_tokens_from_padding_idx_plus_one():
    ids = torch.tensor([[0, 5, 6, 2, 1, 1], [1, 1, 0, 7, 2, 1]])
    expected = torch.tensor([[2, 3, 4, 5, 1, 1], [1, 1, 2, 3, 4, 1]])
    assert torch.equal(create_position_ids_from_input_ids(ids, PAD), expected)
    reference = (
        transformers.models.roberta.modeling_roberta.RobertaEmbeddings.create_position_ids_from_input_ids
    )
    assert torch.equal(create_position_ids_from_input_ids(ids, PAD), reference(ids, PAD))


def test_sixty_four_tokens_fit_sixty_six_positions_and_sixty_five_do_not():
    model = bf_model("RobertaModel")
    with torch.no_grad():
        assert model(torch.full((1, 64), 5)).last_hidden_state.shape == (1, 64, HIDDEN)
    with pytest.raises(
        ValueError, match=r"sequence length 65 exceeds max_position_embeddings \(66\) less the 2"
    ):
        model(torch.full((1, 65), 5))


def test_omitted_token_type_ids_equal_explicit_zeros(batch):
    model = bf_model("RobertaModel")
    with torch.no_grad():
        implicit = model(**batch).last_hidden_state
        explicit = model(**batch, token_type_ids=torch.zeros_like(batch["input_ids"])).last_hidden_state
    assert_close(implicit, explicit, atol=1e-6)


# --------------------------------------------------------------------------------- state dict keys
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_and_shapes_equal_transformers_in_order(name):
    ours, theirs = bf_model(name).state_dict(), hf_model(name).state_dict()
    assert list(ours) == list(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


# ------------------------------------------------------------------------------ transformers -> ours
# Without labels through bertforge.auto (the class picked from config.json), with labels by class.
@pytest.mark.parametrize(
    ("name", "with_labels"), [(n, False) for n in NAMES] + [(n, True) for n in HEADS_ONLY]
)
def test_transformers_checkpoint_loads_with_identical_outputs(tmp_path, batch, name, with_labels):
    theirs = hf_model(name)
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    loader = bf_class(name) if with_labels else getattr(auto, AUTO_CLASS[name])
    ours = loader.from_pretrained(tmp_path)
    assert type(ours) is bf_class(name) and not ours.training
    if not with_labels:
        assert auto.model_class_for("roberta", auto.checkpoint_head_kind(tmp_path)) is bf_class(name)
    labels = labels_for(name) if with_labels else None
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), with_labels)


def test_left_padded_batch_equals_transformers(tmp_path):
    batch = roberta_batch(seed=3, left_padding=True)
    theirs = hf_model("RobertaForMaskedLM")
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    ours = RobertaForMaskedLM.from_pretrained(tmp_path)
    assert_close(run(ours, "x", batch).logits, run(theirs, "x", batch).logits)


def test_two_token_types_with_segment_ids_equal_transformers(tmp_path, batch):
    theirs = hf_model("RobertaModel", type_vocab_size=2)
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    ours = RobertaModel.from_pretrained(tmp_path)
    segments = {**batch, "token_type_ids": (torch.arange(SEQ) >= 3).long().expand(BATCH, -1)}
    assert_same_outputs(run(ours, "x", segments), run(theirs, "x", segments), False)


@pytest.mark.parametrize("problem", ["regression", "multi_label"])
def test_transformers_sequence_classification_losses(tmp_path, batch, problem):
    name = "RobertaForSequenceClassification"
    if problem == "regression":
        theirs, labels = hf_model(name, num_labels=1), torch.tensor([0.5, -1.25, 2.0])
    else:
        theirs, labels = hf_model(name), torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    ours = RobertaForSequenceClassification.from_pretrained(tmp_path)
    assert_same_outputs(
        run(ours, name, batch, {"labels": labels}), run(theirs, name, batch, {"labels": labels}), True
    )


@pytest.mark.parametrize("name", ["RobertaModel", "RobertaForTokenClassification"])
def test_attentions_and_hidden_states_equal_transformers(tmp_path, batch, name):
    theirs = hf_model(name)
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    theirs = hf_class(name).from_pretrained(tmp_path, attn_implementation="eager").eval()
    ours = bf_class(name).from_pretrained(tmp_path)
    flags = {"output_attentions": True, "output_hidden_states": True}
    a, b = run(ours, name, batch, **flags), run(theirs, name, batch, **flags)
    assert len(a.hidden_states) == len(b.hidden_states) == LAYERS + 1
    assert len(a.attentions) == len(b.attentions) == LAYERS
    for mine, reference in zip(a.hidden_states, b.hidden_states, strict=True):
        assert_close(mine, reference)
    for mine, reference in zip(a.attentions, b.attentions, strict=True):
        assert mine.shape == (BATCH, HEADS, SEQ, SEQ)
        assert_close(mine, reference)
    # no weight on padding keys
    assert a.attentions[0][2, :, :, LENGTHS[2] :].abs().max() == 0


# ------------------------------------------------------------------------------ ours -> transformers
# transformers' Auto class must resolve to the Roberta* class itself (checked below).
@pytest.mark.parametrize("name", NAMES)
def test_our_checkpoint_loads_in_transformers_with_identical_outputs(tmp_path, batch, name):
    ours = bf_model(name, seed=1)
    perturb(ours)
    ours.save_pretrained(tmp_path)
    theirs, info = getattr(transformers, AUTO_CLASS[name]).from_pretrained(tmp_path, output_loading_info=True)
    assert type(theirs) is hf_class(name)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    theirs.eval()
    labels = labels_for(name) or None
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), labels is not None)


# ----------------------------------------------------------------------------- auto classes (ours)
def test_pretraining_kind_is_the_masked_lm(tmp_path):
    hf_model("RobertaForMaskedLM").save_pretrained(tmp_path)
    assert type(auto.AutoModelForPreTraining.from_pretrained(tmp_path)) is RobertaForMaskedLM
    assert type(auto.AutoModelForMaskedLM.from_pretrained(tmp_path)) is RobertaForMaskedLM
    assert auto.model_class_for("roberta", auto.checkpoint_head_kind(tmp_path)) is RobertaForMaskedLM
    assert (
        type(auto.AutoModelForSequenceClassification.from_config(bf_config()))
        is RobertaForSequenceClassification
    )


def test_forward_kwargs_keep_token_type_ids():
    batch = {"input_ids": 1, "attention_mask": 2, "token_type_ids": 3, "special_tokens_mask": 4}
    assert set(auto.forward_kwargs(bf_model("RobertaModel"), batch)) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
    }


# ---------------------------------------------------------------------------- base <-> head moves
def test_base_checkpoint_loads_into_every_head_and_back(tmp_path, batch):
    base = bf_model("RobertaModel", seed=2)
    perturb(base)
    base.save_pretrained(tmp_path / "base")
    reference = run(base, "x", batch).last_hidden_state
    for name in HEADS_ONLY:
        head = bf_class(name).from_pretrained(tmp_path / "base", num_labels=NUM_LABELS.get(name, 2))
        assert_close(head.roberta(**batch).last_hidden_state.detach(), reference)
        if head.roberta.pooler is not None:
            assert_close(head.roberta.pooler.dense.weight, base.pooler.dense.weight)
        head.save_pretrained(tmp_path / name)
        again = RobertaModel.from_pretrained(tmp_path / name)
        assert_close(run(again, "x", batch).last_hidden_state, reference)


def test_transformers_base_checkpoint_into_our_head_and_our_head_into_transformers_base(tmp_path, batch):
    theirs = hf_model("RobertaModel")
    perturb(theirs)
    theirs.save_pretrained(tmp_path / "hf-base")
    ours = RobertaForSequenceClassification.from_pretrained(tmp_path / "hf-base", num_labels=3)
    expected = run(theirs, "x", batch).last_hidden_state
    assert_close(ours.roberta(**batch).last_hidden_state.detach(), expected)
    ours.save_pretrained(tmp_path / "ours-head")
    back = transformers.RobertaModel.from_pretrained(tmp_path / "ours-head", add_pooling_layer=False).eval()
    assert_close(run(back, "x", batch).last_hidden_state, expected)


# ------------------------------------------------------------------------------------------ losses
def test_mlm_loss_is_cross_entropy_over_labelled_positions(batch):
    model = bf_model("RobertaForMaskedLM")
    labels = labels_for("RobertaForMaskedLM")["labels"]
    out = run(model, "x", batch, {"labels": labels})
    assert out.logits.shape == (BATCH, SEQ, VOCAB)
    picked = labels != -100
    expected = -out.logits[picked].log_softmax(-1).gather(1, labels[picked][:, None]).mean()
    assert_close(out.loss, expected)


def test_sequence_classification_reads_the_first_token_through_dense_tanh_out_proj(batch):
    model = bf_model("RobertaForSequenceClassification")
    with torch.no_grad():
        hidden = model.roberta(**batch).last_hidden_state[:, 0]
        expected = model.classifier.out_proj(torch.tanh(model.classifier.dense(hidden)))
        assert_close(model(**batch).logits, expected)
    assert model.roberta.pooler is None


def test_dropouts_follow_transformers():
    config = bf_config(classifier_dropout=0.3)
    assert RobertaForSequenceClassification(config).classifier.dropout.p == 0.3
    assert RobertaForTokenClassification(config).dropout.p == 0.3
    assert RobertaForMultipleChoice(config).dropout.p == 0.1  # hidden_dropout_prob, as transformers


def test_losses_backpropagate_to_the_encoder(batch):
    for name in HEADS_ONLY:
        model = bf_model(name).train()
        model(**inputs_for(name, batch), **labels_for(name)).loss.backward()
        grad = model.roberta.encoder.layer[0].attention.self.query.weight.grad
        assert grad is not None and grad.abs().max() > 0, name


# Multiple choice is left out: its choices are rows of one padded (B, C, T) block by construction.
@pytest.mark.parametrize("name", HEADS_ONLY[:-1])
def test_head_outputs_do_not_depend_on_padding(batch, name):
    model = bf_model(name)
    padded = output_tensors(run(model, name, batch))
    for row, length in enumerate(LENGTHS[1:], start=1):
        alone = output_tensors(run(model, name, {"input_ids": batch["input_ids"][row : row + 1, :length]}))
        for key, value in alone.items():
            reference = padded[key][row : row + 1]
            if value.dim() >= 2 and value.shape[1] == length:
                reference = reference[:, :length]
            assert_close(value, reference)


# --------------------------------------------------------------------- pretraining at masked rows
def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_pretraining_loss_equals_transformers_loss_and_gradients(batch):
    labels = labels_for("RobertaForMaskedLM")
    ours = bf_model("RobertaForMaskedLM")
    perturb(ours)
    theirs = hf_model("RobertaForMaskedLM")
    theirs.load_state_dict(ours.state_dict())
    out = ours.pretraining_loss(**batch, **labels)
    out.loss.backward()
    expected = theirs(**batch, **labels).loss
    expected.backward()
    assert_close(out.loss.detach(), expected.detach())
    assert out.mlm_count.item() == 6
    ours_grads, their_grads = _grads(ours), _grads(theirs)
    assert ours_grads.keys() <= their_grads.keys() and len(ours_grads) > 10
    for key, grad in ours_grads.items():
        assert_close(grad, their_grads[key])


@pytest.mark.parametrize("masked_per_row", [1, 8])  # 8 of 11: too many, the full-sequence path runs
def test_pretraining_loss_is_the_same_whichever_path_computes_it(batch, masked_per_row):
    from bertforge.masked_lm import masked_rows

    model = bf_model("RobertaForMaskedLM")
    labels = torch.full((BATCH, SEQ), -100)
    gen = torch.Generator().manual_seed(5)
    for row in range(BATCH):
        picked = torch.randperm(SEQ - 1, generator=gen)[:masked_per_row] + 1
        labels[row, picked] = torch.randint(5, VOCAB, (masked_per_row,), generator=gen)
    assert (masked_rows(labels, with_cls=False) is None) == (masked_per_row == 8)
    with torch.no_grad():
        ours = model.pretraining_loss(**batch, labels=labels)
        full = model(**batch, labels=labels)
    assert_close(ours.loss, full.loss)
    picked = labels != -100
    assert ours.mlm_correct.item() == (full.logits[picked].argmax(-1) == labels[picked]).sum().item()


def test_pretraining_loss_is_zero_when_nothing_is_masked_and_needs_labels(batch):
    model = bf_model("RobertaForMaskedLM")
    out = model.pretraining_loss(**batch, labels=torch.full((BATCH, SEQ), -100))
    assert out.loss.item() == 0.0 and out.mlm_count.item() == 0
    with pytest.raises(ValueError, match="needs labels"):
        model.pretraining_loss(**batch)


def test_forward_rows_equals_forward_at_those_positions(batch):
    model = bf_model("RobertaModel")
    rows = torch.tensor([[0, 3, 9], [0, 6, 0], [0, 2, 2]])
    with torch.no_grad():
        full = model(**batch)
        subset = model.forward_rows(batch["input_ids"], rows, batch["attention_mask"])
    assert_close(
        subset.last_hidden_state, full.last_hidden_state.gather(1, rows[..., None].expand(-1, -1, HIDDEN))
    )
    assert_close(subset.pooler_output, full.pooler_output)


def test_sequence_output_is_the_last_hidden_state(batch):
    model = bf_model("RobertaModel")
    with torch.no_grad():
        assert_close(model.sequence_output(**batch), model(**batch).last_hidden_state)


# ------------------------------------------------------------------------------------ tied decoder
def test_tied_mlm_decoder_is_the_word_embedding_matrix_and_bias_has_two_names():
    model = RobertaForMaskedLM(bf_config())
    assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
    assert model.lm_head.decoder.bias is model.lm_head.bias
    assert model.get_output_embeddings() is model.lm_head.decoder
    untied = RobertaForMaskedLM(bf_config(tie_word_embeddings=False))
    assert untied.lm_head.decoder.weight is not untied.roberta.embeddings.word_embeddings.weight
    assert untied.lm_head.decoder.bias is not untied.lm_head.bias
    # The decoder's own (V, H) matrix and (V,) bias, as in transformers 5.
    assert untied.num_parameters() - model.num_parameters() == VOCAB * HIDDEN + VOCAB


@pytest.mark.parametrize("kept", ["lm_head.bias", "lm_head.decoder.bias"])
def test_checkpoint_with_the_decoder_bias_under_either_name_loads(tmp_path, batch, kept):
    from safetensors.torch import load_file, save_file

    theirs = hf_model("RobertaForMaskedLM")
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    for name in ("lm_head.bias", "lm_head.decoder.bias"):
        state.pop(name, None)
    state[kept] = theirs.lm_head.bias.detach().clone()
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    ours = RobertaForMaskedLM.from_pretrained(tmp_path)
    assert_close(ours.lm_head.bias, theirs.lm_head.bias)
    assert_close(run(ours, "x", batch).logits, run(theirs, "x", batch).logits)


# ---------------------------------------------------------------------------------------- bfloat16
@pytest.mark.parametrize("name", ["RobertaModel", "RobertaForMaskedLM", "RobertaForMultipleChoice"])
def test_bf16_autocast_and_bf16_weights_run_close_to_float32(batch, name):
    model = bf_model(name)
    key = "last_hidden_state" if name == "RobertaModel" else None
    reference = output_tensors(run(model, name, batch))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = output_tensors(run(model, name, batch))
    low = output_tensors(run(model.to(torch.bfloat16), name, batch))
    assert low[next(iter(low))].dtype == torch.bfloat16
    for out in (autocast, low):
        for field, value in out.items():
            if key is not None and field != key:
                continue
            assert torch.isfinite(value.float()).all()
            assert_close(value.float(), reference[field], atol=0.1)


def test_bf16_autocast_pretraining_step_backpropagates(batch):
    model = bf_model("RobertaForMaskedLM").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.pretraining_loss(**batch, **labels_for("RobertaForMaskedLM"), accuracy=False)
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.lm_head.dense.weight.grad is not None


def test_saved_config_json_names_the_architecture(tmp_path):
    RobertaForMaskedLM(bf_config()).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "roberta" and data["architectures"] == ["RobertaForMaskedLM"]
    assert (data["pad_token_id"], data["bos_token_id"], data["eos_token_id"]) == (1, 0, 2)


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_decoder_ties_and_biases_move_both_ways_as_transformers(tmp_path, batch, tie):
    # Untied, transformers 5 gives the decoder its own matrix and bias (the one in the logits) and
    # saves lm_head.bias too, unused.
    theirs = hf_model("RobertaForMaskedLM", tie_word_embeddings=tie)
    perturb(theirs)
    assert_mlm_checkpoint_moves_both_ways(theirs, RobertaForMaskedLM, tmp_path, batch)
    ours = RobertaForMaskedLM.from_pretrained(tmp_path / "hf")
    assert (ours.lm_head.decoder.bias is ours.lm_head.bias) is tie
    assert ours.lm_head.bias.requires_grad is tie  # untied, nothing reads it: frozen for DDP
    assert (ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight) is tie
