"""Distillation: the soft-target and cosine losses against hand-computed values, the distillation loss
module against an independent computation, student initialisation from chosen teacher layers (BERT
-> DistilBERT exactly), the [distill] recipe section, and tiny distillation pretraining runs."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _helpers import assert_close
from _pretrain_helpers import make_dataset, tiny_recipe
from bertforge import BertConfig, BertForMaskedLM, BertForPreTraining
from bertforge.errors import BertForgeError
from bertforge.models.distilbert import DistilBertForMaskedLM
from bertforge.models.distilbert_config import DistilBertConfig
from bertforge.train.distill import (
    DistillationLoss,
    default_teacher_layers,
    hidden_cosine_loss,
    init_student_from_teacher,
    soft_target_loss,
)
from bertforge.train.logging import read_metrics
from bertforge.train.pretrain import pretrain
from bertforge.train.recipe import dump_toml, load_recipe

REPO = Path(__file__).resolve().parents[1]
BERT = {"vocab_size": 99, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 37,
        "max_position_embeddings": 64}  # fmt: skip
DISTIL = {"vocab_size": 99, "dim": 32, "n_heads": 4, "hidden_dim": 37, "max_position_embeddings": 64}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturb(model: torch.nn.Module, seed: int = 5) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.1 * torch.randn(param.shape, generator=gen))
    return model.eval()


def bert_teacher(layers: int = 4, seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    return perturb(BertForMaskedLM(BertConfig(**BERT, num_hidden_layers=layers)))  # type: ignore[return-value]


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 99, (3, 12), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0
    attention_mask[2, 5:] = 0
    input_ids[attention_mask == 0] = 0
    labels = torch.full_like(input_ids, -100)
    labels[0, [1, 6, 10]] = torch.tensor([4, 50, 98])
    labels[1, [2, 7]] = torch.tensor([9, 13])
    labels[2, 0] = 77
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": torch.zeros_like(input_ids),
        "labels": labels,
    }


# ---------------------------------------------------------------------------------------- losses
def test_soft_target_loss_is_temperature_scaled_kl_by_hand():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[3.0, 2.0, 1.0], [1.0, 0.0, -1.0]])
    T = 2.0

    def softmax(row: list[float]) -> list[float]:
        exps = [math.exp(x / T) for x in row]
        return [e / sum(exps) for e in exps]

    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        p, q = softmax(t_row), softmax(s_row)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    expected = expected / 2 * T**2  # mean over the two rows, times T^2
    got = soft_target_loss(student, teacher, T)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # By hand: both rows have p = (.5065, .3072, .1863); KL 0.3202 and 0.0784, mean 0.1993, x T^2 = 4.
    assert expected == pytest.approx(0.7972, abs=1e-4)
    # DistilBERT's formulation: KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T)) * T^2.
    reference = torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(student / T, -1), F.softmax(teacher / T, -1)
    )
    assert_close(got, reference * T**2)
    # Gradient: T * (softmax(s/T) - softmax(t/T)) / rows.
    s = student.clone().requires_grad_(True)
    soft_target_loss(s, teacher, T).backward()
    assert_close(s.grad, T * (F.softmax(student / T, -1) - F.softmax(teacher / T, -1)) / 2)
    assert soft_target_loss(teacher, teacher, T).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_target_loss(torch.zeros(0, 3), torch.zeros(0, 3), T).item() == 0.0


def test_hidden_cosine_loss_by_hand_and_masked_positions_are_left_out():
    student = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[1.0, 1.0], [0.0, -1.0], [-1.0, 0.0]]])
    # cos: 1/sqrt(2), -1, -1/sqrt(2)
    all_three = ((1 - 1 / math.sqrt(2)) + 2 + (1 + 1 / math.sqrt(2))) / 3
    assert hidden_cosine_loss(student, teacher).item() == pytest.approx(all_three, rel=1e-6)
    mask = torch.tensor([[1, 1, 0]])
    assert hidden_cosine_loss(student, teacher, mask).item() == pytest.approx(
        ((1 - 1 / math.sqrt(2)) + 2) / 2
    )
    assert hidden_cosine_loss(student, 3 * student).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="equal widths"):
        hidden_cosine_loss(student, teacher[..., :1])


def test_distillation_loss_is_the_weighted_sum_with_teacher_logits_at_masked_positions():
    teacher = bert_teacher()
    torch.manual_seed(1)
    student = perturb(DistilBertForMaskedLM(DistilBertConfig(**DISTIL, n_layers=2)))
    module = DistillationLoss(student, teacher, temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0)
    assert [name for name, _ in module.named_children()] == ["model"]  # the teacher is not a submodule
    b = batch()
    out = module(**b)
    masked = b["labels"] != -100
    with torch.no_grad():
        t_out = teacher(b["input_ids"], b["attention_mask"], b["token_type_ids"], output_hidden_states=True)
        s_out = student(b["input_ids"], b["attention_mask"], output_hidden_states=True)
    ce = soft_target_loss(s_out.logits[masked], t_out.logits[masked], 2.0)
    mlm = F.cross_entropy(s_out.logits[masked], b["labels"][masked])
    cos = hidden_cosine_loss(s_out.hidden_states[-1], t_out.hidden_states[-1], b["attention_mask"])
    assert_close(out.distill_ce_loss, ce)
    assert_close(out.mlm_loss, mlm)
    assert_close(out.distill_cos_loss, cos)
    assert_close(out.loss, 5 * ce + 2 * mlm + cos)
    assert int(out.mlm_count) == 6 and ce > 0 and cos > 0
    out.loss.backward()  # the teacher's inference tensors are not saved for backward
    assert all(p.grad is None for p in teacher.parameters())
    assert student.vocab_transform.weight.grad is not None

    # Without the cosine term, the student's last layer runs at the masked rows only: same ce and mlm.
    no_cos = DistillationLoss(student, teacher, temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=0.0)(
        **b
    )
    assert no_cos.distill_cos_loss is None
    assert_close(no_cos.loss, 5 * ce + 2 * mlm)


# -------------------------------------------------------------------------- student initialisation
def test_default_teacher_layers_spread_evenly_as_distilbert_chose():
    assert default_teacher_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert default_teacher_layers(4, 2) == [0, 3]
    assert default_teacher_layers(6, 6) == list(range(6))
    assert default_teacher_layers(12, 1) == [0]


def test_bert_teacher_maps_onto_a_distilbert_student_exactly():
    teacher = bert_teacher(layers=4)
    with torch.no_grad():  # a non-zero segment-A row, which the student must fold into its positions
        teacher.bert.embeddings.token_type_embeddings.weight.normal_()
    student = DistilBertForMaskedLM(DistilBertConfig(**DISTIL, n_layers=4)).eval()
    assert init_student_from_teacher(student, teacher) == [0, 1, 2, 3]
    b = batch()
    with torch.no_grad():
        expected = teacher(b["input_ids"], b["attention_mask"], output_hidden_states=True)
        got = student(b["input_ids"], b["attention_mask"], output_hidden_states=True)
    for ours, theirs in zip(got.hidden_states, expected.hidden_states, strict=True):
        assert_close(ours, theirs)
    assert_close(got.logits, expected.logits)  # the MLM head too (bias included; decoder tied)


def test_student_initialisation_copies_exactly_the_chosen_layers():
    teacher = bert_teacher(layers=4)
    student = DistilBertForMaskedLM(DistilBertConfig(**DISTIL, n_layers=2))
    init_student_from_teacher(student, teacher, [1, 3])
    t_layers, s_layers = teacher.bert.encoder.layer, student.distilbert.transformer.layer
    for s_index, t_index in ((0, 1), (1, 3)):
        t, s = t_layers[t_index], s_layers[s_index]
        pairs = [(s.attention.q_lin, t.attention.self.query), (s.attention.k_lin, t.attention.self.key),
                 (s.attention.v_lin, t.attention.self.value), (s.attention.out_lin, t.attention.output.dense),
                 (s.sa_layer_norm, t.attention.output.LayerNorm), (s.ffn.lin1, t.intermediate.dense),
                 (s.ffn.lin2, t.output.dense), (s.output_layer_norm, t.output.LayerNorm)]  # fmt: skip
        for mine, theirs in pairs:
            assert torch.equal(mine.weight, theirs.weight) and torch.equal(mine.bias, theirs.bias)
    emb, t_emb = student.distilbert.embeddings, teacher.bert.embeddings
    assert torch.equal(emb.word_embeddings.weight, t_emb.word_embeddings.weight)
    assert student.vocab_projector.weight is emb.word_embeddings.weight
    assert_close(
        emb.position_embeddings.weight,
        t_emb.position_embeddings.weight + t_emb.token_type_embeddings.weight[0],
    )
    assert torch.equal(student.vocab_projector.bias, teacher.cls.predictions.bias)

    # BERT -> BERT copies the layers under their own names; the rest of the teacher is untouched.
    bert_student = BertForMaskedLM(BertConfig(**BERT, num_hidden_layers=2))
    init_student_from_teacher(bert_student, teacher, [3, 0])
    for s_index, t_index in ((0, 3), (1, 0)):
        mine = bert_student.bert.encoder.layer[s_index].state_dict()
        theirs = t_layers[t_index].state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert torch.equal(
        bert_student.bert.embeddings.token_type_embeddings.weight, t_emb.token_type_embeddings.weight
    )

    # DistilBERT -> DistilBERT, and a sinusoidal student keeps its frozen table.
    sin_student = DistilBertForMaskedLM(DistilBertConfig(**DISTIL, n_layers=1, sinusoidal_pos_embds=True))
    table = sin_student.distilbert.embeddings.position_embeddings.weight.clone()
    init_student_from_teacher(sin_student, student, [1])
    assert torch.equal(sin_student.distilbert.embeddings.position_embeddings.weight, table)
    assert torch.equal(
        sin_student.distilbert.transformer.layer[0].ffn.lin1.weight, s_layers[1].ffn.lin1.weight
    )


def test_student_initialisation_refuses_other_shapes_and_bad_layer_lists():
    teacher = bert_teacher(layers=4)
    narrow = DistilBertForMaskedLM(DistilBertConfig(**{**DISTIL, "dim": 16, "n_heads": 2}, n_layers=2))
    with pytest.raises(BertForgeError, match=r"hidden_size \(student 16, teacher 32\)"):
        init_student_from_teacher(narrow, teacher)
    student = DistilBertForMaskedLM(DistilBertConfig(**DISTIL, n_layers=2))
    with pytest.raises(BertForgeError, match="must name 2 of the teacher's layers"):
        init_student_from_teacher(student, teacher, [0, 4])
    with pytest.raises(BertForgeError, match="must name 2"):
        init_student_from_teacher(student, teacher, [0, 1, 2])


# ------------------------------------------------------------------------------------------ recipe
def test_distill_recipe_section_parses_validates_and_round_trips(tmp_path):
    config = load_recipe(REPO / "recipes" / "distilbert.toml", {"distill.teacher": "teachers/bert"})
    assert config.distill.enabled and config.distill.teacher == "teachers/bert"
    assert (config.distill.temperature, config.distill.alpha_ce, config.distill.alpha_mlm) == (2.0, 5.0, 2.0)
    assert config.model.family() == "distilbert" and config.data.objective == "mlm"
    (tmp_path / "r.toml").write_text(dump_toml(config))
    assert load_recipe(tmp_path / "r.toml") == config
    assert not load_recipe(None).distill.enabled
    assert load_recipe(None, {"distill.teacher_layers": "0,2"}).distill.teacher_layers == [0, 2]
    with pytest.raises(BertForgeError, match="data.objective mlm"):
        load_recipe(None, {"distill.teacher": "t"})
    with pytest.raises(BertForgeError, match="span_boundary false"):
        load_recipe(
            None,
            {
                "distill.teacher": "t",
                "data.objective": "mlm",
                "data.masking": "span",
                "data.span_boundary": "true",
            },
        )
    with pytest.raises(BertForgeError, match="temperature"):
        load_recipe(None, {"distill.temperature": "0"})
    with pytest.raises(BertForgeError, match="did you mean 'alpha_cos'"):
        load_recipe(None, {"distill.alpha_cosine": "1"})


# ------------------------------------------------------------------------------- pretraining runs
@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_dataset(tmp_path_factory.mktemp("alice"))


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    teacher = BertForPreTraining(BertConfig(**{**BERT, "vocab_size": 300}, num_hidden_layers=4))
    path = tmp_path_factory.mktemp("teacher")
    teacher.save_pretrained(path)
    return path


def test_distillation_pretraining_trains_a_distilbert_student_on_three_terms(corpus, teacher_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = tiny_recipe(
        *corpus, tmp_path, model__preset="distilbert-tiny", data__objective="mlm", distill__teacher=teacher_dir,
        distill__teacher_layers="1,3",
    )  # fmt: skip
    result = pretrain(config, progress=False)
    assert result.steps == 3 and math.isfinite(result.train_loss)  # type: ignore[arg-type]
    train = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert len(train) == 3
    for record in train:
        assert record["distill_ce_loss"] > 0 and record["mlm_loss"] > 0 and record["distill_cos_loss"] > 0
        total = 5.0 * record["distill_ce_loss"] + 2.0 * record["mlm_loss"] + 1.0 * record["distill_cos_loss"]
        assert record["loss"] == pytest.approx(total, rel=1e-5)
    assert "eval_mlm_loss" in result.eval
    # The saved model is the student alone, a DistilBERT transformers loads.
    student = DistilBertForMaskedLM.from_pretrained(tmp_path / "model")
    assert student.config.n_layers == 2 and student.config.vocab_size == 300
    theirs = transformers.DistilBertForMaskedLM.from_pretrained(tmp_path / "model").eval()
    ids = torch.tensor([[2, 10, 20, 30, 3]])
    with torch.no_grad():
        assert_close(student(ids).logits, theirs(ids).logits)


def test_distillation_into_a_narrower_bert_skips_the_cosine_term(corpus, teacher_dir, tmp_path, caplog):
    config = tiny_recipe(
        *corpus, tmp_path, data__objective="mlm", distill__teacher=teacher_dir, distill__init_from_teacher="false",
        model__hidden_size=16, model__num_attention_heads=2, train__max_steps=1, train__dtype="bf16",
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="bertforge.train.distill"):
        result = pretrain(config, progress=False)
    assert "alpha_cos skipped" in caplog.text and "student hidden_size 16, teacher 32" in caplog.text
    (record,) = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["event"] == "train"]
    assert record["distill_cos_loss"] == 0.0
    assert record["loss"] == pytest.approx(
        5.0 * record["distill_ce_loss"] + 2.0 * record["mlm_loss"], rel=1e-4
    )
    assert result.steps == 1 and BertForMaskedLM.from_pretrained(tmp_path / "model").config.hidden_size == 16


def test_teacher_with_another_vocabulary_is_a_one_line_error(corpus, tmp_path):
    BertForMaskedLM(BertConfig(**{**BERT, "vocab_size": 301}, num_hidden_layers=2)).save_pretrained(
        tmp_path / "t"
    )
    config = tiny_recipe(*corpus, tmp_path / "run", data__objective="mlm", distill__teacher=tmp_path / "t")
    with pytest.raises(BertForgeError, match="vocab_size 301 but the student 300") as err:
        pretrain(config, progress=False)
    assert "\n" not in str(err.value) and "tokenizer" in str(err.value)
