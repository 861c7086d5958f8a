"""Metrics: hand-computed values, and agreement with the peers (scikit-learn, scipy, seqeval, the
official SQuAD v2.0 evaluation functions copied below)."""

from __future__ import annotations

import collections
import math
import random
import re
import string
import warnings

import pytest

from bertforge.errors import BertForgeError
from bertforge.tasks.examples import QAExample
from bertforge.tasks.metrics import (
    MAIN_METRIC,
    accuracy,
    cmrc_scores,
    entity_scores,
    f1,
    matthews_corrcoef,
    normalize_answer,
    pearson,
    spearman,
    squad_scores,
    task_metrics,
)


def qa(qid: str, *answers: str) -> QAExample:
    return QAExample(qid, "?", "context", [{"text": a, "answer_start": 0} for a in answers], not answers)


# ---------------------------------------------------------------------------------- by hand
def test_classification_metrics_by_hand():
    preds, labels = [1, 0, 1, 1], [1, 1, 1, 0]
    assert accuracy(preds, labels) == 0.5
    assert f1(preds, labels) == pytest.approx(2 / 3)  # tp 2, fp 1, fn 1
    assert matthews_corrcoef(preds, labels) == pytest.approx(-1 / 3)  # (2*0 - 1*1) / sqrt(3*3*1*1)
    # per class F1: 0 -> 1, 1 -> 0, 2 -> 0.5
    assert f1([0, 1, 2, 2], [0, 2, 2, 1], average="macro") == pytest.approx(0.5)
    assert f1([0, 1, 2, 2], [0, 2, 2, 1], average="micro") == pytest.approx(0.5)
    assert f1(["pos", "neg"], ["pos", "pos"], pos_label="pos") == pytest.approx(2 / 3)
    assert matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0  # undefined -> 0, as sklearn


def test_correlations_by_hand():
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(9 / math.sqrt(84))
    # ranks with ties: x -> 1, 2.5, 2.5, 4
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman([10, 20, 30], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_metric_inputs_must_match():
    with pytest.raises(BertForgeError, match="3 predictions for 2 references"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(BertForgeError, match="unknown F1 average 'weighted'"):
        f1([1], [1], average="weighted")
    with pytest.raises(BertForgeError, match="sentence 0 has 2 true tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])


def test_entity_scores_by_hand():
    true = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-MISC"]]
    scores = entity_scores(true, pred)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert scores["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "MISC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }


def test_entity_scores_read_i_without_b_and_iob1_and_bioes():
    # An I- after O starts an entity (seqeval default mode), so IOB1 predictions score as entities.
    assert entity_scores([["B-PER", "O", "B-LOC"]], [["I-PER", "O", "I-LOC"]])["f1"] == 1.0
    assert entity_scores([["I-PER", "B-PER"]], [["B-PER", "B-PER"]], scheme="IOB1")["f1"] == 1.0
    assert (
        entity_scores([["B-PER", "E-PER", "S-LOC"]], [["B-PER", "I-PER", "B-LOC"]], scheme="BIOES")["f1"]
        == 1.0
    )
    with pytest.raises(BertForgeError, match="unknown tag scheme"):
        entity_scores([["O"]], [["O"]], scheme="BILOU2")


def test_squad_normalisation_and_scores_by_hand():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a day") == "apple day"
    examples = [qa("q1", "Denver Broncos", "Broncos"), qa("q2", "Santa Clara")]
    predictions = {"q1": "the Denver Broncos", "q2": "Santa Clara, California"}
    scores = squad_scores(predictions, examples)
    # q1: exact 1, f1 1; q2: exact 0, f1 2*(2/3*1)/(2/3+1) = 0.8
    assert scores["exact"] == pytest.approx(50.0) and scores["f1"] == pytest.approx(90.0)
    assert scores["total"] == 2 and scores["HasAns_total"] == 2 and "NoAns_total" not in scores


def test_squad_v2_no_answer_handling_by_hand():
    examples = [qa("has", "Paris"), qa("none")]
    assert squad_scores({"has": "Paris", "none": ""}, examples)["exact"] == 100.0
    scores = squad_scores({"has": "Paris", "none": "London"}, examples)
    assert (scores["HasAns_exact"], scores["NoAns_exact"], scores["exact"]) == (100.0, 0.0, 50.0)
    # A no-answer probability above the threshold turns the prediction into "no answer".
    probs = {"has": 0.9, "none": 0.8}
    scores = squad_scores({"has": "Paris", "none": "London"}, examples, probs, no_answer_threshold=0.5)
    assert (scores["HasAns_exact"], scores["NoAns_exact"]) == (0.0, 100.0)
    # Best threshold: with "has" at 0.1 and "none" at 0.9, any threshold in [0.1, 0.9) is perfect;
    # the sweep reports the lowest, 0.1.
    scores = squad_scores({"has": "Paris", "none": "London"}, examples, {"has": 0.1, "none": 0.9})
    assert (scores["best_exact"], scores["best_exact_thresh"], scores["exact"]) == (100.0, 0.1, 50.0)


def test_squad_missing_prediction_scores_zero():
    scores = squad_scores({"a": "x"}, [qa("a", "x"), qa("b", "y")])
    assert scores["exact"] == 50.0 and scores["missing"] == 1


def test_cmrc_scores_by_hand():
    examples = [qa("1", "灭司马家族"), qa("2", "司马家族"), qa("3", "iPhone 6s手机")]
    predictions = {"1": "司马家族", "2": "《司马家族》", "3": "iphone 6s"}
    scores = cmrc_scores(predictions, examples)
    # 1: lcs 4 of 4 predicted / 5 true chars -> 8/9, not exact; 2: punctuation removed -> exact;
    # 3: segments [iphone, 6s, 手, 机] vs [iphone, 6s] -> 2/3
    assert scores["f1"] == pytest.approx(100 * (8 / 9 + 1 + 2 / 3) / 3)
    assert scores["exact"] == pytest.approx(100 / 3)
    assert scores["average"] == pytest.approx((scores["f1"] + scores["exact"]) / 2)
    assert cmrc_scores({"1": "x", "2": "司马家族"}, examples[:2])["f1"] == 50.0
    assert cmrc_scores({}, examples)["missing"] == 3


def test_task_metrics_and_main_metric():
    for task, main in MAIN_METRIC.items():
        assert isinstance(main, str) and task
    cls = task_metrics("classification", ["1", "0", "1"], ["1", "1", "1"])
    assert cls["accuracy"] == pytest.approx(2 / 3) and cls["f1"] == pytest.approx(0.8)
    assert set(task_metrics("classification", ["a", "b"], ["a", "c"])) == {"accuracy", "macro_f1", "mcc"}
    reg = task_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert reg["pearson"] == pytest.approx(9 / math.sqrt(84)) and reg["mse"] == pytest.approx(1 / 3)
    ner = task_metrics("ner", [["B-X", "O"]], [["B-X", "B-Y"]])
    assert (ner["precision"], ner["recall"], ner["accuracy"]) == (1.0, 0.5, 0.5)
    zh = QAExample("z", "?", "曹操决定灭司马家族", [{"text": "灭司马家族", "answer_start": 4}], False)
    assert task_metrics("qa", {"z": "灭司马家族"}, [zh])["average"] == 100.0
    assert task_metrics("qa", {"q": "Paris"}, [qa("q", "Paris")])["exact"] == 100.0
    assert task_metrics("multiple-choice", [0, 1], [0, 0]) == {"accuracy": 0.5}
    with pytest.raises(BertForgeError, match="unknown task 'translation'"):
        task_metrics("translation", [], [])


# ---------------------------------------------------------------------------------- against peers
def test_classification_and_correlations_match_sklearn_and_scipy():
    sk = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for _ in range(100):
        n, k = rng.randint(2, 30), rng.randint(2, 4)
        preds, labels = [rng.randrange(k) for _ in range(n)], [rng.randrange(k) for _ in range(n)]
        assert accuracy(preds, labels) == pytest.approx(sk.accuracy_score(labels, preds))
        assert matthews_corrcoef(preds, labels) == pytest.approx(sk.matthews_corrcoef(labels, preds))
        for average in ("macro", "micro"):
            expected = sk.f1_score(labels, preds, average=average, zero_division=0)
            assert f1(preds, labels, average=average) == pytest.approx(expected)
        binary_p, binary_l = [p % 2 for p in preds], [t % 2 for t in labels]
        assert f1(binary_p, binary_l) == pytest.approx(sk.f1_score(binary_l, binary_p, zero_division=0))
        x = [rng.choice([0.0, 1.0, 2.5, rng.random()]) for _ in range(n)]
        y = [rng.choice([0.0, 1.0, rng.random()]) for _ in range(n)]
        if len(set(x)) > 1 and len(set(y)) > 1:
            assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
            assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_entity_scores_match_seqeval_on_random_tags():
    seqeval = pytest.importorskip("seqeval.metrics")
    tags = ["O", "O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B", "I-C"]
    rng = random.Random(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about undefined precision
        for _ in range(300):
            true = [[rng.choice(tags) for _ in range(rng.randint(1, 8))] for _ in range(rng.randint(1, 4))]
            pred = [[rng.choice(tags) for _ in sentence] for sentence in true]
            ours = entity_scores(true, pred)
            assert ours["precision"] == pytest.approx(seqeval.precision_score(true, pred))
            assert ours["recall"] == pytest.approx(seqeval.recall_score(true, pred))
            assert ours["f1"] == pytest.approx(seqeval.f1_score(true, pred))
            report = seqeval.classification_report(true, pred, output_dict=True, zero_division=0)
            per_type = {k: v for k, v in report.items() if not k.endswith(" avg")}
            assert set(ours["per_type"]) == set(per_type)
            for type_, values in ours["per_type"].items():
                assert values["f1"] == pytest.approx(per_type[type_]["f1-score"])
                assert values["support"] == per_type[type_]["support"]


# The official SQuAD v2.0 evaluation functions (evaluate-v2.0.py), trimmed to what scoring needs.
def _official_normalize(s):
    def remove_articles(text):
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return " ".join(remove_articles(remove_punc(s.lower())).split())


def _official_f1(a_gold, a_pred):
    gold_toks = _official_normalize(a_gold).split() if a_gold else []
    pred_toks = _official_normalize(a_pred).split() if a_pred else []
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _official_best_thresh(preds, scores, na_probs, qid_to_has_ans):
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = best_score = num_no_ans
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        diff = scores[qid] if qid_to_has_ans[qid] else (-1 if preds[qid] else 0)
        cur_score += diff
        if cur_score > best_score:
            best_score, best_thresh = cur_score, na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def test_squad_scores_match_the_official_v2_script_on_random_answers():
    words = ["the", "a", "Denver", "Broncos", "won", "Super", "Bowl", "50", "!", "Paris,", "an"]
    rng = random.Random(2)
    for _ in range(30):
        examples, predictions, probs = [], {}, {}
        for i in range(rng.randint(1, 12)):
            answers = [" ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(rng.randint(0, 3))]
            examples.append(qa(f"q{i}", *answers))
            predictions[f"q{i}"] = " ".join(rng.choices(words, k=rng.randint(0, 3)))
            probs[f"q{i}"] = rng.choice([0.1, 0.3, 0.5, 0.7, rng.random()])
        threshold = rng.choice([0.4, 0.6, 1.0])
        ours = squad_scores(predictions, examples, probs, threshold)

        has_ans = {e.id: bool(e.answers) for e in examples}
        exact_raw, f1_raw = {}, {}
        for e in examples:
            golds = [a["text"] for a in e.answers if _official_normalize(a["text"])] or [""]
            pred = predictions[e.id]
            exact_raw[e.id] = max(int(_official_normalize(g) == _official_normalize(pred)) for g in golds)
            f1_raw[e.id] = max(_official_f1(g, pred) for g in golds)
        exact = {q: float(not has_ans[q]) if probs[q] > threshold else s for q, s in exact_raw.items()}
        f1s = {q: float(not has_ans[q]) if probs[q] > threshold else s for q, s in f1_raw.items()}
        assert ours["exact"] == pytest.approx(100 * sum(exact.values()) / len(exact))
        assert ours["f1"] == pytest.approx(100 * sum(f1s.values()) / len(f1s))
        best_exact, best_exact_thresh = _official_best_thresh(predictions, exact_raw, probs, has_ans)
        best_f1, best_f1_thresh = _official_best_thresh(predictions, f1_raw, probs, has_ans)
        assert (ours["best_exact"], ours["best_exact_thresh"]) == pytest.approx(
            (best_exact, best_exact_thresh)
        )
        assert (ours["best_f1"], ours["best_f1_thresh"]) == pytest.approx((best_f1, best_f1_thresh))
