"""Pretraining objectives of the family: SpanBERT's span-boundary objective, MacBERT's MLM as
correction, ERNIE's phrase and entity masking, and masking scheduled by phase.

Statistical checks allow 4 binomial standard deviations with fixed seeds (see test_masking.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import bertforge.train.pretrain as pretrain_module
from _data_helpers import CLS, MASK, SEP, SPECIAL_IDS
from _pretrain_helpers import make_dataset, tiny_recipe
from bertforge.config import BertConfig
from bertforge.data.masking import (
    MaskingConfig,
    MaskingTables,
    build_masking_tables,
    entity_units,
    load_entity_lexicon,
    load_similar_words,
    mask_instance,
    mask_instance_with_boundaries,
    masking_rng,
    phrase_units,
    similar_words_from_embeddings,
)
from bertforge.data.pretraining import PretrainingData
from bertforge.errors import BertForgeError
from bertforge.heads import BertForMaskedLM
from bertforge.models.spanbert import BertForPreTrainingSBO
from bertforge.tokenizer import BertTokenizer
from bertforge.train.pretrain import pretrain
from bertforge.train.recipe import load_recipe

VOCAB = 3000
RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def within(count: float, n: int, p: float, sds: float = 4.0) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def pair_instance(rng: np.random.Generator, length: int = 64, continuation: float = 0.3):
    """[CLS] A [SEP] B [SEP]: (ids, word_starts, special_mask)."""
    ids = rng.integers(5, VOCAB, size=length)
    special = np.zeros(length, dtype=np.bool_)
    middle = int(rng.integers(2, length - 2))
    special[[0, middle, length - 1]] = True
    ids[0], ids[middle], ids[-1] = CLS, SEP, SEP
    starts = rng.random(length) >= continuation
    starts[special] = True
    starts[[1, middle + 1]] = True
    return ids, starts, special


def run(config, ids, starts, special, seed, tables=None):
    return mask_instance(
        ids, starts, special, config, masking_rng(0, 0, seed), VOCAB, MASK, SPECIAL_IDS, tables
    )


def tiny_config(**kw) -> BertConfig:
    sizes = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
    return BertConfig(**{**sizes, "intermediate_size": 37, **kw})


# ------------------------------------------------------------------------------------ SpanBERT


def test_span_boundaries_frame_each_span_at_edges_and_separators():
    config = MaskingConfig(
        strategy="span", span_boundary=True, mlm_probability=0.5, max_predictions_per_seq=100
    )
    data = np.random.default_rng(0)
    seen = {"cls": 0, "middle_sep": 0, "last_sep": 0}
    for i in range(300):
        ids, starts, special = pair_instance(data, length=int(data.integers(8, 40)))
        args = (ids, starts, special, config, masking_rng(0, 0, i), VOCAB, MASK, SPECIAL_IDS)
        masked, labels, (left, right, offset) = mask_instance_with_boundaries(*args)
        plain = mask_instance(ids, starts, special, config, masking_rng(0, 0, i), VOCAB, MASK, SPECIAL_IDS)
        np.testing.assert_array_equal(masked, plain[0])  # same draws as mask_instance
        np.testing.assert_array_equal(labels, plain[1])
        picked = np.flatnonzero(labels != -100)
        assert (left[labels == -100] == 0).all() and (right[labels == -100] == 0).all()
        for p in picked:
            a, b = left[p], right[p]
            assert 0 <= a < p < b < len(ids)
            assert offset[p] == p - a - 1
            span = np.arange(a + 1, b)
            # every token of the span is predicted and shares the same boundaries
            assert (labels[span] != -100).all() and (left[span] == a).all() and (right[span] == b).all()
            assert not special[span].any()
            # the boundaries are outside it: a predicted boundary belongs to the next span
            assert labels[a] == -100 or right[a] == a + 1
            assert labels[b] == -100 or left[b] == b - 1
        middle = np.flatnonzero(special)[1]
        seen["cls"] += int((left[picked] == 0).any())
        seen["middle_sep"] += int((right[picked] == middle).any())
        seen["last_sep"] += int((right[picked] == len(ids) - 1).any())
    assert all(count > 20 for count in seen.values()), seen


def test_span_boundary_batches_carry_the_boundaries_and_other_strategies_refuse_it():
    with pytest.raises(BertForgeError, match="span_boundary needs span masking"):
        MaskingConfig(strategy="whole-word", span_boundary=True)
    from _data_helpers import make_corpus
    from bertforge.data.instances import InstanceConfig

    data = PretrainingData(
        make_corpus([6, 5, 7], vocab_size=200),
        InstanceConfig(objective="mlm", max_seq_length=24),
        MaskingConfig(strategy="span", span_boundary=True, mlm_probability=0.3),
        mask_token_id=MASK,
        pad_token_id=0,
        special_ids=SPECIAL_IDS,
        seed=0,
        cls_token_id=CLS,
        sep_token_id=SEP,
    )
    batch = next(data.batches(0, 2, prefetch=0))
    picked = batch["labels"] != -100
    assert picked.any()
    rows, cols = picked.nonzero(as_tuple=True)
    assert (batch["span_left"][picked] < cols).all() and (batch["span_right"][picked] > cols).all()
    assert (batch["span_offset"][picked] == cols - batch["span_left"][picked] - 1).all()
    assert (batch["span_left"][~picked] == 0).all()


def _gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _layer_norm(x, ln):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


@pytest.mark.parametrize("masked_per_row", [2, 10])  # last layer on selected rows / on all rows
def test_sbo_loss_matches_a_hand_computation(masked_per_row):
    torch.manual_seed(0)
    model = BertForPreTrainingSBO(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    with torch.no_grad():
        model.sbo.bias.normal_()
    model.eval()
    batch, length = 2, 24
    input_ids = torch.randint(5, 99, (batch, length))
    labels = torch.full((batch, length), -100)
    left, right, offset = (torch.zeros(batch, length, dtype=torch.long) for _ in range(3))
    for b in range(batch):  # one span per row, starting after [CLS]
        start = 1 + 3 * b
        span = range(start, start + masked_per_row)
        labels[b, list(span)] = input_ids[b, list(span)]
        input_ids[b, list(span)] = MASK
        left[b, list(span)] = start - 1
        right[b, list(span)] = start + masked_per_row
        offset[b, list(span)] = torch.arange(masked_per_row)
    offset[1, 1 + 3 + 1] = 25  # beyond the 20 position embeddings: left out of the SBO loss
    out = model.pretraining_loss(
        input_ids, labels=labels, span_left=left, span_right=right, span_offset=offset
    )

    # By hand, from the full encoder output.
    with torch.no_grad():
        hidden = model.bert(input_ids).last_hidden_state
        decoder, sbo = model.cls.predictions.decoder.weight, model.sbo
        mlm_terms, sbo_terms = [], []
        for b, t in (labels != -100).nonzero().tolist():
            target = labels[b, t]
            mlm_logits = model.cls.predictions(hidden[b, t])
            mlm_terms.append(-torch.log_softmax(mlm_logits, -1)[target])
            if offset[b, t] >= 20:
                continue
            h = torch.cat(
                [hidden[b, left[b, t]], hidden[b, right[b, t]], sbo.position_embeddings.weight[offset[b, t]]]
            )
            mlp = sbo.mlp_layer_norm
            h = _layer_norm(_gelu(h @ mlp.linear1.weight.T + mlp.linear1.bias), mlp.layer_norm1)
            h = _layer_norm(_gelu(h @ mlp.linear2.weight.T + mlp.linear2.bias), mlp.layer_norm2)
            logits = h @ decoder.T + sbo.bias
            sbo_terms.append(-torch.log_softmax(logits, -1)[target])
        mlm, sbo_loss = torch.stack(mlm_terms).mean(), torch.stack(sbo_terms).mean()
    torch.testing.assert_close(out.mlm_loss, mlm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.sbo_loss, sbo_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, mlm + sbo_loss, atol=1e-5, rtol=1e-5)
    assert int(out.sbo_count) == len(sbo_terms) == 2 * masked_per_row - 1
    assert out.nsp_loss is None
    out.loss.backward()  # gradients reach the encoder through the boundary rows
    assert model.sbo.mlp_layer_norm.linear1.weight.grad.abs().sum() > 0


def test_bert_checkpoints_load_into_the_sbo_model_and_back(tmp_path: Path, caplog):
    torch.manual_seed(1)
    bert = BertForMaskedLM(tiny_config())
    bert.save_pretrained(tmp_path / "bert")
    with caplog.at_level("INFO"):
        sbo = BertForPreTrainingSBO.from_pretrained(tmp_path / "bert")
    assert "sbo.mlp_layer_norm.linear1.weight" in caplog.text  # newly initialised, and said so
    ids = torch.randint(5, 99, (2, 10))
    torch.testing.assert_close(sbo(ids).logits, bert.eval()(ids).logits)
    assert sbo.sbo.bias.abs().sum() == 0 and sbo.sbo.mlp_layer_norm.linear1.weight.std() > 0
    sbo.save_pretrained(tmp_path / "sbo")
    again = BertForMaskedLM.from_pretrained(tmp_path / "sbo")
    torch.testing.assert_close(again(ids).logits, bert(ids).logits)


# ------------------------------------------------------------------------------------- MacBERT


def similar_of(i: int) -> int:
    return 5 + (i * 7 + 3) % (VOCAB - 5)


def test_correction_masking_uses_similar_words_never_mask_and_splits_80_10_10():
    config = MaskingConfig(strategy="whole-word", correction=True, max_predictions_per_seq=1000)
    similar = {(i,): np.array([[similar_of(i)]]) for i in range(5, VOCAB)}
    tables = MaskingTables(similar=similar)
    data = np.random.default_rng(1)
    counts = {"similar": 0, "random": 0, "kept": 0}
    for i in range(400):
        ids, starts, special = pair_instance(data, continuation=0.0)  # one-token words
        masked, labels = run(config, ids, starts, special, i, tables)
        picked = labels != -100
        assert picked.sum() == round(61 * 0.15)
        assert not (masked == MASK).any()
        np.testing.assert_array_equal(masked[~picked], ids[~picked])
        for original, now in zip(ids[picked].tolist(), masked[picked].tolist(), strict=True):
            key = "kept" if now == original else "similar" if now == similar_of(original) else "random"
            counts[key] += 1
    n = sum(counts.values())
    assert within(counts["similar"], n, 0.8) and within(counts["random"], n, 0.1)
    assert within(counts["kept"], n, 0.1)


def test_correction_replaces_whole_words_by_same_length_similar_words_else_random():
    config = MaskingConfig(
        strategy="ngram", correction=True, mlm_probability=1.0, max_predictions_per_seq=100,
        mask_token_prob=1.0, random_token_prob=0.0,
    )  # fmt: skip
    ids = np.array([CLS, 10, 11, 12, 13, 14, SEP])
    starts = np.array([1, 1, 0, 1, 0, 1, 1], dtype=bool)  # words (10 11) (12 13) (14)
    special = np.array([1, 0, 0, 0, 0, 0, 1], dtype=bool)
    tables = MaskingTables(similar={(10, 11): np.array([[20, 21], [22, 23]]), (14,): np.array([[30]])})
    for seed in range(30):
        masked, labels = run(config, ids, starts, special, seed, tables)
        assert (labels[1:-1] == ids[1:-1]).all()
        assert tuple(masked[1:3]) in ((20, 21), (22, 23)) and masked[5] == 30
        assert masked[3] != MASK and masked[4] != MASK  # no similar word: random tokens
    with pytest.raises(BertForgeError, match="word selection"):
        MaskingConfig(strategy="token", correction=True)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> BertTokenizer:
    words = [
        "alice",
        "rabbit",
        "queen",
        "king",
        "hatter",
        "hat",
        "white",
        "red",
        "said",
        "cried",
        "the",
        "a",
        ",",
        ".",
        "!",
        "兔",
        "子",
        "白",
        "王",
        "后",
    ]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "##s", "##ter"]
    return BertTokenizer({t: i for i, t in enumerate(vocab)})


def test_similar_words_file_keeps_same_length_words(tokenizer, tmp_path: Path):
    (tmp_path / "sim.tsv").write_text(
        "alice\tqueen king\nsaid\tcried queens\n白兔\t王后 王\n", encoding="utf-8"
    )
    table = load_similar_words(tmp_path / "sim.tsv", tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    assert table[(ids("alice"),)].tolist() == [[ids("queen")], [ids("king")]]
    assert table[(ids("said"),)].tolist() == [[ids("cried")]]  # "queens" has two tokens
    assert table[(ids("白"), ids("兔"))].tolist() == [[ids("王"), ids("后")]]
    (tmp_path / "sim.json").write_text('{"rabbit": ["white rabbit", "white"]}', encoding="utf-8")
    assert load_similar_words(tmp_path / "sim.json", tokenizer)[(ids("rabbit"),)].tolist() == [[ids("white")]]


def test_nearest_neighbours_come_from_the_embedding_matrix():
    embeddings = np.array(
        [[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.1], [0, 0, 1], [-1, 0, 0.1]], dtype=np.float32
    )
    table = similar_words_from_embeddings(
        embeddings, [(0,), (1,), (2,), (3,), (4,), (0, 4), (1, 4), (2, 3)], 2
    )
    assert table[(0,)].tolist() == [[1], [3]] or table[(0,)][0].tolist() == [1]
    assert table[(2,)][0].tolist() == [3] and table[(3,)][0].tolist() == [2]
    assert table[(0, 4)][0].tolist() == [1, 4]  # words compare with words of their token length
    assert all(rows.shape[1] == len(word) for word, rows in table.items())
    assert all(word not in map(tuple, rows.tolist()) for word, rows in table.items())


# ---------------------------------------------------------------------------------------- ERNIE


def test_phrase_units_chunk_english_runs_and_keep_chinese_words_whole():
    punct = np.zeros(VOCAB, dtype=bool)
    punct[[5, 6]] = True
    cjk = np.zeros(VOCAB, dtype=bool)
    cjk[100:200] = True
    tables = MaskingTables(punctuation=punct, cjk=cjk)
    rng = np.random.default_rng(0)
    lengths = []
    for _ in range(300):
        n = int(rng.integers(5, 40))
        first_ids = rng.choice(
            [5, 150, 500, 600, 700, 800, 900], size=n, p=[0.1, 0.1, 0.16, 0.16, 0.16, 0.16, 0.16]
        )
        word_len = rng.integers(1, 3, size=n)
        word_pos = np.cumsum(word_len) - word_len + 1
        units = phrase_units(word_len, word_pos, first_ids, tables, rng)
        assert [w for w, k in units for w in range(w, w + k)] == list(range(n))  # a partition, in order
        for w, k in units:
            assert 1 <= k <= 4
            if k > 1:
                assert not (punct[first_ids[w : w + k]] | cjk[first_ids[w : w + k]]).any()
                lengths.append(k)
    counts = np.bincount(lengths, minlength=5)[2:]
    assert counts.min() > 0.15 * counts.sum()  # 2, 3 and 4 words all occur (remainders favour short)


def _words(ids, starts, special):
    candidates = np.flatnonzero(~special)
    s = starts[candidates].copy()
    s[1:] |= np.diff(candidates) != 1
    s[0] = True
    first = np.flatnonzero(s)
    return candidates, s, np.cumsum(s) - 1, first, np.diff(np.append(first, len(candidates)))


def test_phrase_masking_masks_whole_phrases_with_one_draw_each():
    config = MaskingConfig(strategy="phrase", max_predictions_per_seq=1000, mlm_probability=0.3)
    punct = np.zeros(VOCAB, dtype=bool)
    punct[5:300] = True
    tables = MaskingTables(punctuation=punct, cjk=np.zeros(VOCAB, dtype=bool))
    data = np.random.default_rng(2)
    unit_counts = {"mask": 0, "random": 0, "kept": 0}
    budget_total = masked_total = 0
    for i in range(300):
        ids, starts, special = pair_instance(data)
        masked, labels = run(config, ids, starts, special, i, tables)
        candidates, _, _, first, word_len = _words(ids, starts, special)
        units = phrase_units(
            word_len, candidates[first], ids[candidates[first]], tables, masking_rng(0, 0, i)
        )
        picked = labels != -100
        for w, k in units:
            tokens = candidates[first[w] : first[w] + int(word_len[w : w + k].sum())]
            assert picked[tokens].all() or not picked[tokens].any()  # a phrase is masked whole or not
            if picked[tokens].all():
                kinds = {
                    "mask" if m == MASK else "kept" if m == o else "random"
                    for m, o in zip(masked[tokens], ids[tokens], strict=True)
                }
                assert len(kinds) == 1 or "kept" in kinds  # one decision per phrase (random may hit itself)
                unit_counts[kinds.pop() if len(kinds) == 1 else "random"] += 1
        budget_total += round(61 * 0.3)
        masked_total += int(picked.sum())
    n = sum(unit_counts.values())
    assert within(unit_counts["mask"], n, 0.8) and within(unit_counts["kept"], n, 0.1)
    assert 0.9 * budget_total <= masked_total <= budget_total  # whole phrases fill ~the budget


def test_entity_matching_is_longest_first_on_word_boundaries(tokenizer, tmp_path: Path):
    (tmp_path / "entities.txt").write_text(
        "the white rabbit\nthe white\nwhite\nhatter\n白兔\n", encoding="utf-8"
    )
    lexicon = load_entity_lexicon(tmp_path / "entities.txt", tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    text = np.array([CLS, *map(ids, ["the", "white", "rabbit", "said", "the", "white", "hat", "##ter"]), SEP])
    # "hat ##ter" is one word (hat is unknown here, so build ids by hand): "hatter" must not match inside it
    starts = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    special = np.zeros(len(text), dtype=bool)
    special[[0, -1]] = True
    candidates, s, word_of, _, _ = _words(text, starts, special)
    units = entity_units(text, candidates, s, word_of, lexicon)
    assert units == [(0, 3), (4, 2)]  # "the white rabbit" (not "the white"), then "the white"


def test_entity_masking_masks_whole_entities_then_fills_the_budget_with_tokens():
    lexicon = {10: [(10, 11, 12)], 20: [(20, 21)]}
    config = MaskingConfig(strategy="entity", max_predictions_per_seq=1000)
    tables = MaskingTables(entities=lexicon)
    data = np.random.default_rng(3)
    in_entities = total = entity_tokens = 0
    for i in range(300):
        ids, starts, special = pair_instance(data, continuation=0.0)
        for at in data.choice(np.arange(2, 58, 4), size=4, replace=False):  # plant entities
            if not special[at : at + 3].any():
                ids[at : at + 3] = (10, 11, 12) if at % 8 else (20, 21, ids[at + 2])
                starts[at : at + 3] = True
        masked, labels = run(config, ids, starts, special, i, tables)
        picked = labels != -100
        candidates, s, word_of, _, _ = _words(ids, starts, special)
        units = entity_units(ids, candidates, s, word_of, lexicon)
        covered = np.zeros(len(ids), dtype=bool)
        for w, k in units:
            tokens = candidates[w : w + k]  # one-token words here
            covered[tokens] = True
            assert picked[tokens].all() or not picked[tokens].any()
        assert picked.sum() == round(61 * 0.15)  # the basic remainder fills the budget exactly
        assert not (masked == MASK)[~picked].any()
        in_entities += int((picked & covered).sum())
        entity_tokens += int(covered.sum())
        total += int(picked.sum())
    # entities are preferred: they hold far more of the masked tokens than of the text
    assert in_entities / total > 0.8 > 2 * entity_tokens / (300 * 61)


# ------------------------------------------------------------------------------ recipes and runs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    return make_dataset(tmp_path_factory.mktemp("objectives"), lines=600)


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    monkeypatch.setattr(pretrain_module, "plot_metrics", lambda *a, **k: None)  # matplotlib: seconds


def test_recipes_load_and_name_their_sources():
    spanbert = load_recipe(RECIPES / "spanbert.toml")
    assert (
        spanbert.data.span_boundary and spanbert.data.masking == "span" and spanbert.data.objective == "mlm"
    )
    macbert = load_recipe(RECIPES / "macbert-chinese.toml", {"data.similar_words": "x.tsv"})
    assert macbert.data.correction and macbert.data.masking in ("whole-word", "ngram")
    ernie = load_recipe(RECIPES / "ernie-chinese.toml", {"data.entity_lexicon": "e.txt"})
    assert [ernie.phase_masking(p) for p in ernie.phases()] == ["token", "phrase", "entity"]
    with pytest.raises(BertForgeError, match="entity_lexicon"):
        load_recipe(RECIPES / "ernie-chinese.toml", {"data.entity_lexicon": "none"})
    with pytest.raises(BertForgeError, match="objective"):
        load_recipe(None, {"data.masking": "span", "data.span_boundary": "true"})


def test_tiny_spanbert_run_trains_the_sbo_model(corpus, tmp_path: Path):
    config = tiny_recipe(
        *corpus, tmp_path, data__objective="mlm", data__masking="span", data__span_boundary="true",
        train__eval_batches=1, train__max_steps=2,
    )  # fmt: skip
    seen = []
    original = BertForPreTrainingSBO.pretraining_loss

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append(out.sbo_loss)
        return out

    BertForPreTrainingSBO.pretraining_loss = spy
    try:
        result = pretrain(config, progress=False)
    finally:
        BertForPreTrainingSBO.pretraining_loss = original
    assert result.stopped == "completed" and math.isfinite(result.train_loss)
    assert seen and all(s is not None and s > 0 for s in seen)
    model = BertForPreTrainingSBO.from_pretrained(result.model_dir)  # sbo.* saved with the model
    assert model.sbo.mlp_layer_norm.linear1.weight.std() > 0


def test_tiny_macbert_run_with_embedding_neighbours(corpus, tmp_path: Path):
    # a checkpoint with the dataset's vocabulary: a freshly built model saved with it
    dataset, tokenizer_dir = corpus
    tokenizer = BertTokenizer.from_pretrained(tokenizer_dir)
    BertForMaskedLM(tiny_config(vocab_size=len(tokenizer), max_position_embeddings=64)).save_pretrained(
        tmp_path / "ckpt"
    )
    config = tiny_recipe(
        *corpus, tmp_path / "run", data__masking="whole-word", data__correction="true",
        data__similar_from=str(tmp_path / "ckpt"), train__eval_batches=1, train__max_steps=2,
    )  # fmt: skip
    result = pretrain(config, progress=False)
    assert result.stopped == "completed" and math.isfinite(result.train_loss)
    tables = config.data.masking_tables(tokenizer, ["whole-word"])  # cached from the run
    assert len(tables.similar) > len(tokenizer) // 2
    assert any(len(word) > 1 for word in tables.similar)  # multi-token words from the dataset too


def test_ernie_phases_switch_masking_and_the_run_finishes(corpus, tmp_path: Path, monkeypatch):
    lexicon = tmp_path / "entities.txt"
    lexicon.write_text("alice\nthe queen\nthe white rabbit\n", encoding="utf-8")
    phases = '[{"fraction": 0.34, "max_seq_length": 32, "masking": "token"}, ' \
        '{"fraction": 0.33, "max_seq_length": 32, "masking": "phrase"}, ' \
        '{"fraction": 0.33, "max_seq_length": 32, "masking": "entity"}]'  # fmt: skip
    config = tiny_recipe(
        *corpus, tmp_path / "run", data__entity_lexicon=str(lexicon), train__phases=phases,
        train__eval_batches=1, train__max_steps=3,
    )  # fmt: skip
    strategies = []
    build = pretrain_module.build_pretraining_data

    def spy(*args, **kwargs):
        data = build(*args, **kwargs)
        strategies.append(
            (data.masking.strategy, data.tables is not None and data.tables.entities is not None)
        )
        return data

    monkeypatch.setattr(pretrain_module, "build_pretraining_data", spy)
    result = pretrain(config, progress=False)
    assert result.stopped == "completed" and result.steps == 3
    assert [s for s, _ in strategies] == ["token", "phrase", "entity"]
    assert strategies[-1][1]  # the entity phase has its lexicon
    tokenizer = BertTokenizer.from_pretrained(corpus[1])
    tables = build_masking_tables(tokenizer, strategies=["entity"], entity_lexicon=lexicon)
    assert tables is not None and tokenizer.convert_tokens_to_ids("alice") in tables.entities


def test_sbo_under_bf16_and_config_errors_name_the_missing_source():
    model = BertForPreTrainingSBO(tiny_config())
    ids = torch.randint(5, 99, (2, 24))
    labels = torch.full_like(ids, -100)
    labels[:, 3:5] = ids[:, 3:5]
    left, right, offset = torch.zeros_like(ids), torch.zeros_like(ids), torch.zeros_like(ids)
    left[:, 3:5], right[:, 3:5], offset[:, 4] = 2, 5, 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.pretraining_loss(ids, labels=labels, span_left=left, span_right=right, span_offset=offset)
    assert torch.isfinite(out.loss) and out.sbo_loss > 0
    with pytest.raises(BertForgeError, match="similar_words FILE or data.similar_from"):
        load_recipe(None, {"data.masking": "whole-word", "data.correction": "true"})
    with pytest.raises(ValueError, match="go together"):
        model.pretraining_loss(ids, labels=labels, span_left=left)
