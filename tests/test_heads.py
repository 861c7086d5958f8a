"""Task heads: parity with transformers in both directions for every class, state-dict key names,
losses (hand-computed and against transformers), tied decoder weights and output containers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import transformers

from _helpers import (
    AUTO_CLASS,
    BATCH,
    HEAD_NAMES,
    LENGTHS,
    NUM_CHOICES,
    SEQ,
    TINY,
    assert_close,
    bf_class,
    hf_class,
    hf_tiny_config,
    inputs_for,
    output_tensors,
    padded_batch,
    tiny_config,
)
from bertforge import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
)

VOCAB, HIDDEN = TINY["vocab_size"], TINY["hidden_size"]

# Label count per class where it matters (QA always has two: start and end).
NUM_LABELS = {"BertForSequenceClassification": 3, "BertForTokenClassification": 5}


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return padded_batch()


def labels_for(name: str, num_labels: int | None = None) -> dict[str, torch.Tensor]:
    """Labels that exercise every loss rule: -100 ignored positions, out-of-window QA positions."""
    gen = torch.Generator().manual_seed(11)
    if name in ("BertForMaskedLM", "BertForPreTraining"):
        labels = torch.full((BATCH, SEQ), -100)
        labels[0, [1, 4, 9]] = torch.tensor([5, 17, 98])
        labels[1, [0, 6]] = torch.tensor([3, 64])
        labels[2, 2] = 42
        if name == "BertForPreTraining":
            return {"labels": labels, "next_sentence_label": torch.tensor([0, 1, 1])}
        return {"labels": labels}
    if name == "BertForNextSentencePrediction":
        return {"labels": torch.tensor([1, 0, 1])}
    if name == "BertForSequenceClassification":
        if num_labels == 1:
            return {"labels": torch.tensor([0.5, -1.25, 2.0])}
        return {"labels": torch.tensor([2, 0, 1])}
    if name == "BertForTokenClassification":
        labels = torch.randint(0, NUM_LABELS[name], (BATCH, SEQ), generator=gen)
        for row, length in enumerate(LENGTHS):
            labels[row, length:] = -100
        labels[0, 0] = -100
        return {"labels": labels}
    if name == "BertForQuestionAnswering":
        # Row 1's answer was truncated away (positions past the window): ignored, as in transformers.
        return {"start_positions": torch.tensor([2, 40, 1]), "end_positions": torch.tensor([5, 60, SEQ + 3])}
    if name == "BertForMultipleChoice":
        return {"labels": torch.tensor([1, 0, 1])}
    return {}


def hf_model(name: str, seed: int = 0, **config_overrides):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    num_labels = NUM_LABELS.get(name)
    if num_labels is not None:
        config_overrides.setdefault("num_labels", num_labels)
    return hf_class(name)(hf_tiny_config(**config_overrides)).eval()


def bf_model(name: str, seed: int = 0, **config_overrides):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    num_labels = NUM_LABELS.get(name)
    if num_labels is not None:
        config_overrides.setdefault("num_labels", num_labels)
    return bf_class(name)(tiny_config(**config_overrides)).eval()


def perturb_zero_initialised(model: torch.nn.Module) -> None:
    """Give biases and LayerNorms random values: with BERT's init they are 0/1, which would hide a
    bias that is loaded into the wrong place."""
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                param.add_(0.1 * torch.randn(param.shape, generator=gen))


def assert_same_outputs(ours, theirs, expect_loss: bool) -> None:  # type: ignore[no-untyped-def]
    mine, reference = output_tensors(ours), output_tensors(theirs)
    assert set(mine) == set(reference)
    assert ("loss" in mine) == expect_loss
    assert len(mine) >= 1 + expect_loss
    for key in mine:
        assert_close(mine[key], reference[key])


def run(model, name: str, batch, labels=None):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(**inputs_for(name, batch), **(labels or {}))


# ---------------------------------------------------------------------------------- state dict keys
@pytest.mark.parametrize("name", HEAD_NAMES)
def test_state_dict_keys_equal_transformers_in_order(name):
    assert list(bf_model(name).state_dict().keys()) == list(hf_model(name).state_dict().keys())


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_state_dict_shapes_equal_transformers(name):
    ours, theirs = bf_model(name).state_dict(), hf_model(name).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


# ------------------------------------------------------------------------------ transformers -> ours
@pytest.mark.parametrize(
    ("name", "with_labels"),
    [(name, False) for name in HEAD_NAMES] + [(name, True) for name in HEAD_NAMES if name != "BertModel"],
)
def test_transformers_checkpoint_loads_with_identical_outputs(tmp_path, batch, name, with_labels):
    theirs = hf_model(name)
    perturb_zero_initialised(theirs)
    theirs.save_pretrained(tmp_path)
    ours = bf_class(name).from_pretrained(tmp_path)
    assert type(ours) is bf_class(name)
    assert not ours.training
    labels = labels_for(name) if with_labels else None
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), with_labels)


def test_transformers_regression_checkpoint_loads_with_identical_logits_and_mse_loss(tmp_path, batch):
    name = "BertForSequenceClassification"
    theirs = hf_model(name, num_labels=1)
    perturb_zero_initialised(theirs)
    theirs.save_pretrained(tmp_path)
    ours = BertForSequenceClassification.from_pretrained(tmp_path)
    assert ours.config.num_labels == 1
    labels = labels_for(name, num_labels=1)
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), True)


def test_transformers_multi_label_checkpoint_gives_identical_bce_loss(tmp_path, batch):
    name = "BertForSequenceClassification"
    theirs = hf_model(name)
    theirs.save_pretrained(tmp_path)
    ours = BertForSequenceClassification.from_pretrained(tmp_path)
    labels = {"labels": torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])}
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), True)


# ------------------------------------------------------------------------------ ours -> transformers
@pytest.mark.parametrize("loader", ["specific", "auto"])
@pytest.mark.parametrize("name", HEAD_NAMES)
def test_our_checkpoint_loads_in_transformers_with_identical_outputs(tmp_path, batch, name, loader):
    ours = bf_model(name, seed=1)
    perturb_zero_initialised(ours)
    ours.save_pretrained(tmp_path)
    cls = hf_class(name) if loader == "specific" else getattr(transformers, AUTO_CLASS[name])
    theirs, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert type(theirs) is hf_class(name)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    theirs.eval()
    labels = labels_for(name) or None
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), labels is not None)


def test_our_regression_checkpoint_loads_in_transformers_with_identical_outputs(tmp_path, batch):
    name = "BertForSequenceClassification"
    ours = bf_model(name, num_labels=1)
    perturb_zero_initialised(ours)
    ours.save_pretrained(tmp_path)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert theirs.config.num_labels == 1
    labels = labels_for(name, num_labels=1)
    assert_same_outputs(run(ours, name, batch, labels), run(theirs, name, batch, labels), True)


def test_our_checkpoint_keeps_label_names_in_transformers(tmp_path):
    id2label = {0: "neg", 1: "neu", 2: "pos"}
    BertForSequenceClassification(tiny_config(id2label=id2label)).save_pretrained(tmp_path)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert theirs.config.id2label == id2label
    assert theirs.config.architectures == ["BertForSequenceClassification"]


# ---------------------------------------------------------------------------------- loss definitions
def test_mlm_loss_is_cross_entropy_over_labelled_positions_only(batch):
    model = bf_model("BertForMaskedLM")
    labels = labels_for("BertForMaskedLM")["labels"]
    out = run(model, "BertForMaskedLM", batch, {"labels": labels})
    assert out.logits.shape == (BATCH, SEQ, VOCAB)
    picked = labels != -100
    log_probs = out.logits[picked].log_softmax(-1)
    expected = -log_probs.gather(1, labels[picked][:, None]).mean()
    assert picked.sum() == 6
    assert_close(out.loss, expected)


def test_mlm_loss_ignores_logits_at_unlabelled_positions(batch):
    model = bf_model("BertForMaskedLM")
    labels = labels_for("BertForMaskedLM")["labels"]
    logits = run(model, "BertForMaskedLM", batch).logits
    changed = logits.clone()
    changed[labels == -100] = torch.randn_like(changed[labels == -100]) * 10
    from bertforge.task_heads import _mlm_loss

    assert_close(_mlm_loss(changed, labels), _mlm_loss(logits, labels))


def test_pretraining_loss_with_both_labels_is_mlm_plus_nsp(batch):
    name = "BertForPreTraining"
    model = bf_model(name)
    both = labels_for(name)
    out = run(model, name, batch, both)
    mlm = run(model, name, batch, {"labels": both["labels"]}).loss
    nsp = run(model, name, batch, {"next_sentence_label": both["next_sentence_label"]}).loss
    assert out.prediction_logits.shape == (BATCH, SEQ, VOCAB)
    assert out.seq_relationship_logits.shape == (BATCH, 2)
    assert_close(nsp, F.cross_entropy(out.seq_relationship_logits, both["next_sentence_label"]))
    assert_close(out.loss, mlm + nsp)
    assert mlm > 0 and nsp > 0


def test_pretraining_without_labels_has_no_loss(batch):
    out = run(bf_model("BertForPreTraining"), "BertForPreTraining", batch)
    assert out.loss is None


def test_regression_loss_is_mean_squared_error(batch):
    model = bf_model("BertForSequenceClassification", num_labels=1)
    labels = labels_for("BertForSequenceClassification", num_labels=1)["labels"]
    out = run(model, "BertForSequenceClassification", batch, {"labels": labels})
    assert out.logits.shape == (BATCH, 1)
    assert_close(out.loss, ((out.logits[:, 0] - labels) ** 2).mean())


def test_float_labels_use_binary_cross_entropy(batch):
    model = bf_model("BertForSequenceClassification")
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    out = run(model, "BertForSequenceClassification", batch, {"labels": labels})
    probs = out.logits.sigmoid()
    expected = -(labels * probs.log() + (1 - labels) * (1 - probs).log()).mean()
    assert_close(out.loss, expected)


def test_integer_labels_use_cross_entropy(batch):
    model = bf_model("BertForSequenceClassification")
    labels = torch.tensor([2, 0, 1])
    out = run(model, "BertForSequenceClassification", batch, {"labels": labels})
    assert out.logits.shape == (BATCH, 3)
    expected = -out.logits.log_softmax(-1)[torch.arange(BATCH), labels].mean()
    assert_close(out.loss, expected)


def test_problem_type_regression_with_several_labels_uses_mse(batch):
    model = bf_model("BertForSequenceClassification", problem_type="regression")
    labels = torch.tensor([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0], [2.0, 0.0, -2.0]])
    out = run(model, "BertForSequenceClassification", batch, {"labels": labels})
    assert_close(out.loss, ((out.logits - labels) ** 2).mean())


def test_token_classification_loss_skips_ignored_positions(batch):
    name = "BertForTokenClassification"
    model = bf_model(name)
    labels = labels_for(name)["labels"]
    out = run(model, name, batch, {"labels": labels})
    assert out.logits.shape == (BATCH, SEQ, 5)
    picked = labels != -100
    expected = -out.logits[picked].log_softmax(-1).gather(1, labels[picked][:, None]).mean()
    assert_close(out.loss, expected)


def test_question_answering_loss_ignores_positions_outside_the_sequence(batch):
    name = "BertForQuestionAnswering"
    model = bf_model(name)
    positions = labels_for(name)
    out = run(model, name, batch, positions)
    assert out.start_logits.shape == out.end_logits.shape == (BATCH, SEQ)
    # start: rows 0 and 2 count, row 1 (40) is out of window; end: only row 0 (5) is inside.
    start = F.cross_entropy(out.start_logits[[0, 2]], torch.tensor([2, 1]))
    end = F.cross_entropy(out.end_logits[[0]], torch.tensor([5]))
    assert_close(out.loss, (start + end) / 2)


def test_question_answering_needs_both_positions_for_a_loss(batch):
    name = "BertForQuestionAnswering"
    out = run(bf_model(name), name, batch, {"start_positions": torch.tensor([1, 2, 3])})
    assert out.loss is None


def test_multiple_choice_scores_each_choice_independently(batch):
    name = "BertForMultipleChoice"
    model = bf_model(name)
    inputs = inputs_for(name, batch)
    assert inputs["input_ids"].shape == (BATCH, NUM_CHOICES, SEQ)
    labels = torch.tensor([1, 0, 1])
    with torch.no_grad():
        out = model(**inputs, labels=labels)
        first_choice_alone = model(**{k: v[:, :1] for k, v in inputs.items()}).logits
    assert out.logits.shape == (BATCH, NUM_CHOICES)
    assert_close(first_choice_alone[:, 0], out.logits[:, 0])
    assert_close(out.loss, F.cross_entropy(out.logits, labels))


def test_multiple_choice_rejects_two_dimensional_input(batch):
    with pytest.raises(ValueError, match="num_choices"):
        bf_model("BertForMultipleChoice")(batch["input_ids"])


def test_next_sentence_prediction_accepts_next_sentence_label_alias(batch):
    model = bf_model("BertForNextSentencePrediction")
    labels = torch.tensor([1, 0, 1])
    a = run(model, "BertForNextSentencePrediction", batch, {"labels": labels})
    b = run(model, "BertForNextSentencePrediction", batch, {"next_sentence_label": labels})
    assert a.logits.shape == (BATCH, 2)
    assert_close(a.loss, b.loss)
    assert_close(a.loss, F.cross_entropy(a.logits, labels))


def test_losses_backpropagate_to_the_encoder(batch):
    for name in HEAD_NAMES[1:]:
        model = bf_model(name).train()
        out = model(**inputs_for(name, batch), **labels_for(name))
        out.loss.backward()
        grad = model.bert.encoder.layer[0].attention.self.query.weight.grad
        assert grad is not None and grad.abs().max() > 0, name


# ------------------------------------------------------------------------------------- tied decoder
@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForPreTraining])
def test_mlm_decoder_is_the_word_embedding_matrix(cls):
    model = cls(tiny_config())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.get_output_embeddings() is model.cls.predictions.decoder
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias


def test_untied_config_gives_a_separate_decoder_matrix():
    model = BertForMaskedLM(tiny_config(tie_word_embeddings=False))
    decoder, word = model.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight
    assert decoder is not word
    assert decoder.data_ptr() != word.data_ptr()


def test_tied_model_counts_shared_matrix_and_bias_once():
    tied = BertForMaskedLM(tiny_config())
    untied = BertForMaskedLM(tiny_config(tie_word_embeddings=False))
    assert untied.cls.predictions.decoder.bias is not untied.cls.predictions.bias
    # Untied, the decoder has its own (V, H) matrix and its own (V,) bias, as in transformers 5.
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * HIDDEN + VOCAB


@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForPreTraining])
def test_untied_model_leaves_no_trainable_parameter_without_a_gradient(cls):
    # DDP (find_unused_parameters off) fails on a trainable parameter the loss never reads: untied,
    # that is cls.predictions.bias (the decoder has its own), so it is frozen.
    torch.manual_seed(0)
    model = cls(tiny_config(tie_word_embeddings=False))
    ids = torch.randint(1, VOCAB, (2, 7))
    pair = {"next_sentence_label": torch.tensor([0, 1])} if cls is BertForPreTraining else {}
    model(input_ids=ids, labels=ids, **pair).loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert not model.cls.predictions.bias.requires_grad
    assert model.cls.predictions.decoder.bias.grad is not None


def test_classifier_dropout_overrides_hidden_dropout_in_heads():
    model = BertForSequenceClassification(tiny_config(classifier_dropout=0.3))
    assert model.dropout.p == 0.3
    assert model.bert.embeddings.dropout.p == 0.1
    assert BertForTokenClassification(tiny_config()).dropout.p == 0.1


# ----------------------------------------------------------------------------------- output objects
def test_model_output_supports_index_key_attribute_and_unpacking(batch):
    model = bf_model("BertForSequenceClassification")
    labels = torch.tensor([2, 0, 1])
    out = run(model, "BertForSequenceClassification", batch, {"labels": labels})
    loss, logits = out
    assert loss is out.loss and logits is out.logits
    assert out[0] is out.loss
    assert out[1] is out["logits"] is out.logits
    assert out.keys() == ["loss", "logits"]
    assert out.to_tuple() == (out.loss, out.logits)


def test_model_output_skips_unset_fields_when_indexing(batch):
    out = run(bf_model("BertForQuestionAnswering"), "BertForQuestionAnswering", batch)
    assert out[0] is out.start_logits
    assert out[1] is out.end_logits
    assert len(out.to_tuple()) == 2
    with_hidden = bf_model("BertForQuestionAnswering")(**batch, output_hidden_states=True)
    assert len(with_hidden[2]) == TINY["num_hidden_layers"] + 1


def test_heads_forward_hidden_states_and_attentions(batch):
    out = run(bf_model("BertForTokenClassification"), "BertForTokenClassification", batch)
    assert out.hidden_states is None and out.attentions is None
    with torch.no_grad():
        out = bf_model("BertForTokenClassification")(
            **batch, output_hidden_states=True, output_attentions=True
        )
    assert len(out.hidden_states) == TINY["num_hidden_layers"] + 1
    assert out.attentions[0].shape == (BATCH, TINY["num_attention_heads"], SEQ, SEQ)


# Multiple choice is left out: its choices are rows of one padded (B, C, T) block by construction.
@pytest.mark.parametrize("name", [n for n in HEAD_NAMES[1:] if n != "BertForMultipleChoice"])
def test_head_outputs_do_not_depend_on_padding(batch, name):
    model = bf_model(name)
    padded = output_tensors(run(model, name, batch))
    for row, length in enumerate(LENGTHS[1:], start=1):
        single = {k: v[row : row + 1, :length] for k, v in batch.items() if k != "attention_mask"}
        alone = output_tensors(run(model, name, single))
        for key, value in alone.items():
            reference = padded[key][row : row + 1]
            if value.dim() >= 2 and value.shape[1] == length and reference.shape[1] == SEQ:
                reference = reference[:, :length]
            assert_close(value, reference)


# ------------------------------------------------------------- training-time loss at masked positions
def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["BertForPreTraining", "BertForMaskedLM"])
def test_pretraining_loss_equals_transformers_loss_and_gradients(batch, name):
    labels = labels_for(name)
    ours = bf_model(name)
    theirs = hf_class(name)(hf_tiny_config()).eval()
    theirs.load_state_dict(ours.state_dict(), strict=False)
    theirs.tie_weights()
    ours.pretraining_loss(**batch, **labels).loss.backward()
    expected = theirs(**batch, **labels).loss
    expected.backward()
    assert_close(ours.pretraining_loss(**batch, **labels).loss.detach(), expected.detach())
    ours_grads, their_grads = _grads(ours), _grads(theirs)
    assert ours_grads.keys() <= their_grads.keys() and len(ours_grads) > 10
    for key, grad in ours_grads.items():
        assert_close(grad, their_grads[key], atol=1e-5)


def test_pretraining_loss_counts_masked_positions_and_correct_predictions(batch):
    name = "BertForPreTraining"
    model = bf_model(name)
    labels = labels_for(name)
    out = model.pretraining_loss(**batch, **labels)
    full = run(model, name, batch, labels)
    picked = labels["labels"] != -100
    expected_correct = (full.prediction_logits[picked].argmax(-1) == labels["labels"][picked]).sum()
    assert out.mlm_count.item() == 6
    assert out.mlm_correct.item() == expected_correct.item()
    nsp_correct = (full.seq_relationship_logits.argmax(-1) == labels["next_sentence_label"]).sum()
    assert (out.nsp_count.item(), out.nsp_correct.item()) == (BATCH, nsp_correct.item())
    assert_close(out.loss, out.mlm_loss + out.nsp_loss)


def test_pretraining_loss_is_zero_not_nan_when_nothing_is_masked(batch):
    model = bf_model("BertForMaskedLM")
    out = model.pretraining_loss(**batch, labels=torch.full((BATCH, SEQ), -100))
    assert out.loss.item() == 0.0 and out.mlm_count.item() == 0
    out.loss.backward()  # still differentiable: the step is a no-op, not a crash


def test_pretraining_loss_without_labels_says_what_it_needs(batch):
    with pytest.raises(ValueError, match="needs labels"):
        bf_model("BertForMaskedLM").pretraining_loss(**batch)


def test_forward_rows_equals_forward_at_those_positions(batch):
    model = bf_model("BertModel")
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


@pytest.mark.parametrize("masked_per_row", [1, 8])  # 8 of 11: too many, the full-sequence path runs
def test_pretraining_loss_is_the_same_whichever_path_computes_it(batch, masked_per_row):
    from bertforge.masked_lm import masked_rows

    model = bf_model("BertForPreTraining")
    labels = torch.full((BATCH, SEQ), -100)
    gen = torch.Generator().manual_seed(5)
    for row in range(BATCH):
        picked = torch.randperm(SEQ - 1, generator=gen)[:masked_per_row] + 1
        labels[row, picked] = torch.randint(5, VOCAB, (masked_per_row,), generator=gen)
    nsp = torch.tensor([0, 1, 0])
    assert (masked_rows(labels, with_cls=True) is None) == (masked_per_row == 8)
    with torch.no_grad():
        ours = model.pretraining_loss(**batch, labels=labels, next_sentence_label=nsp)
        reference = model(**batch, labels=labels, next_sentence_label=nsp)
    assert_close(ours.loss, reference.loss)
    assert ours.mlm_count.item() == BATCH * masked_per_row


def test_pretraining_loss_can_skip_the_accuracy_counts(batch):
    labels = labels_for("BertForPreTraining")
    out = bf_model("BertForPreTraining").pretraining_loss(**batch, **labels, accuracy=False)
    assert out.mlm_correct is None and out.mlm_count.item() == 6
