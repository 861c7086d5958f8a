"""DistilBERT: parity with transformers' DistilBert* classes in both directions for every class (learned
and sinusoidal positions), config names and presets, losses, the masked-rows pretraining loss,
padding, bf16, and the fixed sinusoidal positions (DistilBERT's and BERT's)."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
import transformers

from _helpers import (
    BATCH,
    LENGTHS,
    NUM_CHOICES,
    SEQ,
    assert_close,
    assert_mlm_checkpoint_moves_both_ways,
    output_tensors,
    tiny_config,
)
from bertforge.auto import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    forward_kwargs,
)
from bertforge.errors import BertForgeError
from bertforge.models import distilbert as D
from bertforge.models.distilbert import (
    DistilBertForMaskedLM,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertModel,
)
from bertforge.models.distilbert_config import DistilBertConfig
from bertforge.ops import sinusoidal_positions

VOCAB = 99
TINY = {
    "vocab_size": VOCAB,
    "dim": 32,
    "n_layers": 2,
    "n_heads": 4,
    "hidden_dim": 37,
    "max_position_embeddings": 64,
}
NAMES = (
    "DistilBertModel",
    "DistilBertForMaskedLM",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertForQuestionAnswering",
    "DistilBertForMultipleChoice",
)
AUTO = {
    "DistilBertModel": "AutoModel",
    "DistilBertForMaskedLM": "AutoModelForMaskedLM",
    "DistilBertForSequenceClassification": "AutoModelForSequenceClassification",
    "DistilBertForTokenClassification": "AutoModelForTokenClassification",
    "DistilBertForQuestionAnswering": "AutoModelForQuestionAnswering",
    "DistilBertForMultipleChoice": "AutoModelForMultipleChoice",
}
NUM_LABELS = {"DistilBertForSequenceClassification": 3, "DistilBertForTokenClassification": 5}


def padded_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, VOCAB, (BATCH, SEQ), generator=gen)
    attention_mask = torch.zeros(BATCH, SEQ, dtype=torch.long)
    for row, length in enumerate(LENGTHS):
        attention_mask[row, :length] = 1
        input_ids[row, length:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def inputs_for(name: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if name != "DistilBertForMultipleChoice":
        return dict(batch)
    rows = torch.tensor([[(b + c) % BATCH for c in range(NUM_CHOICES)] for b in range(BATCH)])
    return {k: v[rows].contiguous() for k, v in batch.items()}


def labels_for(name: str) -> dict[str, torch.Tensor]:
    if name == "DistilBertForMaskedLM":
        labels = torch.full((BATCH, SEQ), -100)
        labels[0, [1, 4, 9]] = torch.tensor([5, 17, 98])
        labels[1, [0, 6]] = torch.tensor([3, 64])
        labels[2, 2] = 42
        return {"labels": labels}
    if name == "DistilBertForSequenceClassification":
        return {"labels": torch.tensor([2, 0, 1])}
    if name == "DistilBertForTokenClassification":
        labels = torch.randint(0, 5, (BATCH, SEQ), generator=torch.Generator().manual_seed(3))
        for row, length in enumerate(LENGTHS):
            labels[row, length:] = -100
        return {"labels": labels}
    if name == "DistilBertForQuestionAnswering":
        return {"start_positions": torch.tensor([2, 40, 1]), "end_positions": torch.tensor([5, 60, SEQ + 3])}
    if name == "DistilBertForMultipleChoice":
        return {"labels": torch.tensor([1, 0, 1])}
    return {}


def hf_model(name: str, seed: int = 0, **overrides):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    if name in NUM_LABELS:
        overrides.setdefault("num_labels", NUM_LABELS[name])
    config = transformers.DistilBertConfig(**TINY, attn_implementation="eager", **overrides)
    return getattr(transformers, name)(config).eval()


def bf_model(name: str, seed: int = 0, **overrides):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    if name in NUM_LABELS:
        overrides.setdefault("num_labels", NUM_LABELS[name])
    return getattr(D, name)(DistilBertConfig(**TINY, **overrides)).eval()


def perturb(model: torch.nn.Module) -> None:
    """Random biases and LayerNorms (init makes them 0/1, which would hide a misplaced one)."""
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and (name.endswith("bias") or "norm" in name.lower()):
                param.add_(0.1 * torch.randn(param.shape, generator=gen))


def run(model, name, batch, labels=None, **kw):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(**inputs_for(name, batch), **(labels or {}), **kw)


def assert_same(ours, theirs, expect_loss: bool) -> None:  # type: ignore[no-untyped-def]
    mine, reference = output_tensors(ours), output_tensors(theirs)
    assert set(mine) == set(reference)
    assert ("loss" in mine) == expect_loss
    for key in mine:
        assert_close(mine[key], reference[key])


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return padded_batch()


# ------------------------------------------------------------------------------------- config
def test_config_defaults_and_names_are_distilbert_base_uncased():
    config = DistilBertConfig()
    ref = transformers.DistilBertConfig()
    for name in ("vocab_size", "max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads", "dim",
                 "hidden_dim", "dropout", "attention_dropout", "activation", "initializer_range", "qa_dropout",
                 "seq_classif_dropout", "pad_token_id", "tie_word_embeddings"):  # fmt: skip
        assert getattr(config, name) == getattr(ref, name), name
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 6, 12)
    assert (config.intermediate_size, config.type_vocab_size, config.layer_norm_eps) == (3072, 0, 1e-12)
    assert config.tie_weights_ is True


def test_real_config_json_round_trips_and_loads_through_autoconfig(tmp_path):
    data = {
        "activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1, "dim": 768,
        "dropout": 0.1, "hidden_dim": 3072, "initializer_range": 0.02, "max_position_embeddings": 512,
        "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "tie_weights_": True,
        "transformers_version": "4.10.0.dev0", "vocab_size": 30522,
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, DistilBertConfig)
    assert config == DistilBertConfig(
        extra={"architectures": ["DistilBertForMaskedLM"], "transformers_version": "4.10.0.dev0"}
    )
    written = config.to_dict()
    assert {k: written[k] for k in data} == data


def test_presets_and_generic_override_names():
    assert DistilBertConfig.from_preset("distilbert-base") == DistilBertConfig()
    tiny = DistilBertConfig.from_preset("distilbert-tiny", vocab_size=99, hidden_size=64, num_hidden_layers=3)
    assert (tiny.dim, tiny.n_layers, tiny.n_heads, tiny.hidden_dim, tiny.vocab_size) == (64, 3, 2, 512, 99)
    mini = DistilBertConfig.from_preset("distilbert-mini")
    assert (mini.n_layers, mini.dim, mini.n_heads, mini.hidden_dim) == (4, 256, 4, 1024)
    assert mini.replace(intermediate_size=100, hidden_act="relu").hidden_dim == 100
    with pytest.raises(BertForgeError, match="unknown preset"):
        DistilBertConfig.from_preset("distilbert-huge")
    with pytest.raises(BertForgeError, match="n_heads"):
        DistilBertConfig(dim=30, n_heads=4)


# ----------------------------------------------------------------------------- state dict layout
# Every class with learned positions; the sinusoidal table through the classes that own it or a head.
CASES = [(name, False) for name in NAMES] + [("DistilBertForMaskedLM", True)]


@pytest.mark.parametrize(("name", "sinusoidal"), [*CASES, ("DistilBertModel", True)])
def test_state_dict_keys_and_shapes_equal_transformers(name, sinusoidal):
    ours = bf_model(name, sinusoidal_pos_embds=sinusoidal).state_dict()
    theirs = {k: v for k, v in hf_model(name, sinusoidal_pos_embds=sinusoidal).state_dict().items()}
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


# ------------------------------------------------------------------------------ transformers -> ours
@pytest.mark.parametrize(("name", "sinusoidal"), CASES)
def test_transformers_checkpoint_loads_with_identical_outputs_and_losses(tmp_path, batch, name, sinusoidal):
    theirs = hf_model(name, sinusoidal_pos_embds=sinusoidal)
    perturb(theirs)
    theirs.save_pretrained(tmp_path)
    ours = getattr(D, name).from_pretrained(tmp_path)
    assert type(ours) is getattr(D, name) and not ours.training
    labels = labels_for(name) or None
    assert_same(run(ours, name, batch, labels), run(theirs, name, batch, labels), labels is not None)
    # Hidden states and attention probabilities, layer by layer.
    a = run(ours, name, batch, output_hidden_states=True, output_attentions=True)
    b = run(theirs, name, batch, output_hidden_states=True, output_attentions=True)
    assert len(a.hidden_states) == len(b.hidden_states) == TINY["n_layers"] + 1
    assert len(a.attentions) == len(b.attentions) == TINY["n_layers"]
    for x, y in zip(a.hidden_states + a.attentions, b.hidden_states + b.attentions, strict=True):
        assert_close(x, y)


def test_sequence_classification_regression_and_multi_label_losses_match(tmp_path, batch):
    name = "DistilBertForSequenceClassification"
    for num_labels, labels in (
        (1, torch.tensor([0.5, -1.25, 2.0])),
        (3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])),
    ):
        theirs = hf_model(name, num_labels=num_labels)
        theirs.save_pretrained(tmp_path / str(num_labels))
        ours = DistilBertForSequenceClassification.from_pretrained(tmp_path / str(num_labels))
        assert_same(
            run(ours, name, batch, {"labels": labels}), run(theirs, name, batch, {"labels": labels}), True
        )


# ------------------------------------------------------------------------------ ours -> transformers
@pytest.mark.parametrize(
    ("name", "sinusoidal", "loader"),
    [(name, False, "auto") for name in NAMES]
    + [("DistilBertForMaskedLM", True, "specific"), ("DistilBertForSequenceClassification", True, "auto")],
)
def test_our_checkpoint_loads_in_transformers_with_identical_outputs(
    tmp_path, batch, name, sinusoidal, loader
):
    ours = bf_model(name, seed=1, sinusoidal_pos_embds=sinusoidal)
    perturb(ours)
    ours.save_pretrained(tmp_path)
    cls = getattr(transformers, name if loader == "specific" else AUTO[name])
    theirs, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert type(theirs) is getattr(transformers, name)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    theirs.eval()
    labels = labels_for(name) or None
    assert_same(run(ours, name, batch, labels), run(theirs, name, batch, labels), labels is not None)


def test_base_checkpoint_loads_into_each_head_and_head_back_into_base(tmp_path, batch):
    base = bf_model("DistilBertModel", seed=2)
    perturb(base)
    base.save_pretrained(tmp_path / "base")
    expected = base(**batch).last_hidden_state
    for name in NAMES[1:]:
        head = getattr(D, name).from_pretrained(tmp_path / "base")
        assert_close(head.distilbert(**batch).last_hidden_state, expected)
    head.save_pretrained(tmp_path / "head")  # the last head, multiple choice
    back = AutoModel.from_pretrained(tmp_path / "head")
    assert type(back) is DistilBertModel
    assert_close(back(**batch).last_hidden_state, expected)


@pytest.mark.parametrize("name", NAMES)
def test_no_distilbert_forward_names_token_type_ids(name):
    # The heads inherit the forward every family shares and narrow its signature: forward_kwargs,
    # the ONNX export and distillation read it to decide whether to send segment ids.
    forward = inspect.signature(getattr(D, name).forward).parameters
    assert "token_type_ids" not in forward and list(forward)[:3] == ["self", "input_ids", "attention_mask"]


def test_auto_classes_pick_distilbert_and_forward_kwargs_drop_token_type_ids(tmp_path, batch):
    bf_model("DistilBertForMaskedLM").save_pretrained(tmp_path)
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path)) is DistilBertForMaskedLM
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    assert type(model) is DistilBertForSequenceClassification and model.config.num_labels == 4
    kwargs = forward_kwargs(model, {**batch, "token_type_ids": torch.zeros_like(batch["input_ids"])})
    assert "token_type_ids" not in kwargs and model(**kwargs).logits.shape == (BATCH, 4)


def test_question_answering_needs_two_labels():
    with pytest.raises(BertForgeError, match="num_labels = 2"):
        DistilBertForQuestionAnswering(DistilBertConfig(**TINY, num_labels=3))


# --------------------------------------------------------------------------------- model behaviour
def test_masked_lm_decoder_is_tied_to_word_embeddings_and_pretraining_loss_matches_forward(batch):
    model = bf_model("DistilBertForMaskedLM")
    perturb(model)
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    assert model.get_output_embeddings() is model.vocab_projector
    labels = labels_for("DistilBertForMaskedLM")["labels"]
    full = model(**batch, labels=labels)
    # pretraining_loss takes (and ignores) the batch's token_type_ids, scores masked rows only.
    fast = model.pretraining_loss(**batch, token_type_ids=torch.zeros_like(labels), labels=labels)
    assert_close(fast.loss, full.loss)
    assert int(fast.mlm_count) == 6
    picked = labels != -100
    assert int(fast.mlm_correct) == int((full.logits[picked].argmax(-1) == labels[picked]).sum())
    # Mostly-masked batch: the fallback path (no row subset) gives the same value too.
    dense = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)
    assert_close(model.pretraining_loss(**batch, labels=dense).loss, model(**batch, labels=dense).loss)


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_vocab_projector_tie_moves_both_ways_as_transformers(tmp_path, batch, tie):
    # vocab_projector has one bias, its own, tied or not; untied, its matrix is its own too.
    theirs = hf_model("DistilBertForMaskedLM", tie_word_embeddings=tie)
    perturb(theirs)
    assert_mlm_checkpoint_moves_both_ways(theirs, DistilBertForMaskedLM, tmp_path, batch)


def test_forward_rows_equals_full_forward_at_those_rows(batch):
    model = bf_model("DistilBertModel")
    rows = torch.tensor([[0, 3], [1, 5], [2, 0]])
    full = model(**batch).last_hidden_state
    part = model.forward_rows(batch["input_ids"], rows, batch["attention_mask"]).last_hidden_state
    assert_close(part, full.gather(1, rows[..., None].expand(-1, -1, full.shape[-1])))


def test_padding_is_masked_and_sequence_output_is_the_last_hidden_state(batch):
    model = bf_model("DistilBertModel")
    out = model(**batch).last_hidden_state
    changed = dict(batch, input_ids=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 7))
    again = model(**changed).last_hidden_state
    mask = batch["attention_mask"].bool()
    assert_close(again[mask], out[mask])
    assert_close(model.sequence_output(**batch, token_type_ids=None), out)
    single = model(batch["input_ids"][2:3, : LENGTHS[2]]).last_hidden_state
    assert_close(single[0], out[2, : LENGTHS[2]])


def test_bf16_autocast_and_bf16_weights_stay_close_to_fp32(batch):
    model = bf_model("DistilBertForMaskedLM")
    labels = labels_for("DistilBertForMaskedLM")["labels"]
    ref = model(**batch).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = model(**batch).logits
        loss = model.pretraining_loss(**batch, labels=labels).loss
    assert torch.isfinite(loss)
    half = model.to(torch.bfloat16)(**batch).logits
    for got in (auto, half):
        assert (got.float() - ref).abs().max() < 0.1


# ------------------------------------------------------------------------------ sinusoidal positions
def test_distilbert_sinusoidal_positions_equal_transformers_table_and_stay_frozen(batch):
    model = bf_model("DistilBertForMaskedLM", sinusoidal_pos_embds=True).train()
    table = model.distilbert.embeddings.position_embeddings.weight
    assert not table.requires_grad
    assert_close(
        table, hf_model("DistilBertModel", sinusoidal_pos_embds=True).embeddings.position_embeddings.weight
    )
    assert_close(table, sinusoidal_positions(64, 32))
    before = table.detach().clone()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=0.1, weight_decay=0.1
    )
    model.pretraining_loss(**batch, labels=labels_for("DistilBertForMaskedLM")["labels"]).loss.backward()
    optimizer.step()
    assert table.grad is None
    assert torch.equal(table, before)


def test_bert_sinusoidal_positions_are_frozen_and_load_in_transformers_bert(tmp_path):
    from _helpers import padded_batch as bert_batch
    from bertforge import BertForMaskedLM, BertModel
    from bertforge.train.optim import OptimConfig, build_optimizer

    batch = bert_batch()
    model = BertForMaskedLM(tiny_config(sinusoidal_pos_embds=True)).train()
    table = model.bert.embeddings.position_embeddings.weight
    assert not table.requires_grad
    assert_close(table, sinusoidal_positions(64, 32))
    before = table.detach().clone()
    labels = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)
    optimizer = build_optimizer(model, OptimConfig(lr=0.1, weight_decay=0.1))
    model(**batch, labels=labels).loss.backward()
    optimizer.step()
    assert torch.equal(table, before)  # neither the gradient nor weight decay touched it

    model.eval().save_pretrained(tmp_path)
    reloaded = BertModel.from_pretrained(tmp_path)
    assert (
        reloaded.config.sinusoidal_pos_embds
        and not reloaded.embeddings.position_embeddings.weight.requires_grad
    )
    theirs = transformers.BertModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():
        assert_close(theirs.embeddings.position_embeddings.weight, before)
        assert_close(theirs(**batch).last_hidden_state, reloaded(**batch).last_hidden_state)
        ours_mlm = model(**batch).logits
        theirs_mlm = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()(**batch).logits
    assert_close(ours_mlm, theirs_mlm)
