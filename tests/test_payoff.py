"""The pretraining payoff check: the random-init twin, the comparison's arithmetic, and the demo's
held-out task cut from the books (the text it tests on is never pretrained on)."""

from __future__ import annotations

import pytest
import torch

from _helpers import tiny_config
from bertforge import BertConfig, BertForMaskedLM, BertTokenizer
from bertforge.auto import AutoModelForMaskedLM
from bertforge.demo import book_task, split_books
from bertforge.errors import BertForgeError
from bertforge.payoff import Payoff, build_random_twin

ENGLISH = [
    "Alice was beginning to get very tired of sitting by her sister on the bank.",
    "The rabbit took a watch out of its waistcoat pocket and hurried on.",
    "She ran across the field after it and was just in time to see it pop down a hole.",
    "Down, down, down: would the fall never come to an end, she wondered aloud.",
    "There were doors all round the hall, but they were all locked tight.",
    "The Queen of Hearts made some tarts, all on a summer day in the garden.",
]
CHINESE = [
    "悟空道我有七十二般变化不怕你们来看。",
    "玄奘法师骑着白马往西天取经一路辛苦。",
    "那猴王在花果山水帘洞里自在逍遥多年。",
    "八戒挑着担子跟在后面口里不住地埋怨。",
    "沙僧牵着马说师父前面山高路远要小心。",
    "唐僧见了那座高山心中不由得十分害怕。",
]


@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizer:
    return BertTokenizer.train_from_iterator(ENGLISH + CHINESE, vocab_size=200, min_frequency=1)


@pytest.fixture
def books(tmp_path):
    """Two books as the bundled corpus has them: hard-wrapped CRLF English and one paragraph per
    line Chinese, blank lines between paragraphs, twenty paragraphs each."""
    english = tmp_path / "books" / "en_tiny.txt"
    chinese = tmp_path / "books" / "zh_tiny.txt"
    english.parent.mkdir()
    paragraphs = [ENGLISH[i % 6].replace(" on ", " on\r\n") for i in range(20)]
    english.write_bytes("\r\n\r\n".join(paragraphs).encode() + b"\r\n")
    chinese.write_text("\n\n".join(f"    {CHINESE[i % 6]}" for i in range(20)) + "\n", encoding="utf-8")
    return [english, chinese]


def test_split_books_keeps_the_last_tenth_out_at_a_paragraph_break(books, tmp_path):
    pretrain, held_out = split_books(books, tmp_path / "corpus")
    assert [p.name for p in pretrain] == [p.name for p in held_out] == [b.name for b in books]
    for book, first, rest in zip(books, pretrain, held_out, strict=True):
        original = book.read_bytes()
        assert first.read_bytes() + rest.read_bytes() == original  # nothing lost, nothing changed
        lines = original.splitlines(keepends=True)
        kept = len(first.read_bytes().splitlines())
        assert not lines[kept].strip()  # the cut is at a blank line, not inside a paragraph
        assert 0.85 <= kept / len(lines) <= 0.95


def test_book_task_draws_disjoint_labelled_sentences_from_the_held_out_parts(books, tmp_path, tokenizer):
    _, held_out = split_books(books, tmp_path / "corpus", held_out=0.5)
    train, test = book_task(held_out, tokenizer, tmp_path / "task", train_per_book=2, test_per_book=2)
    rows = {}
    for path in (train, test):
        header, *lines = path.read_text(encoding="utf-8").splitlines()
        assert header == "label\ttext"
        rows[path.stem] = [tuple(line.split("\t")) for line in lines]
    for split in ("train", "test"):
        assert sorted(label for label, _ in rows[split]) == ["en_tiny", "en_tiny", "zh_tiny", "zh_tiny"]
    train_texts = {text for _, text in rows["train"]}
    assert not train_texts & {text for _, text in rows["test"]}
    held_out_text = " ".join(" ".join(p.read_text(encoding="utf-8").split()) for p in held_out)
    for label, text in rows["train"] + rows["test"]:
        assert text in held_out_text  # whitespace-normalised sentences of the held-out part
        assert ("zh" in label) == any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_payoff_reports_means_spreads_and_difference_in_points():
    payoff = Payoff("accuracy", [0, 1, 2], [0.80, 0.82, 0.84], [0.70, 0.70, 0.73])
    assert payoff.difference == pytest.approx(0.11)
    assert payoff.lines() == [
        "pretrained   accuracy  82.0 ± 2.0",
        "random init  accuracy  71.0 ± 1.7",
        "difference   +11.0 points (mean over seeds [0, 1, 2])",
    ]


def _pretrained(tmp_path, tokenizer) -> str:
    torch.manual_seed(1)
    model = BertForMaskedLM(tiny_config(vocab_size=tokenizer.vocab_size))
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.mul_(3.0)  # unlike any fresh initialisation
    model.save_pretrained(tmp_path / "pretrained")
    tokenizer.save_pretrained(tmp_path / "pretrained")
    return str(tmp_path / "pretrained")


def test_random_twin_has_the_architecture_and_tokenizer_but_fresh_weights(tmp_path, tokenizer):
    model_dir = _pretrained(tmp_path, tokenizer)
    twin = build_random_twin(model_dir, tmp_path / "twin", seed=0)
    pretrained = AutoModelForMaskedLM.from_pretrained(model_dir)
    fresh = AutoModelForMaskedLM.from_pretrained(twin)
    assert fresh.config.to_dict() == pretrained.config.to_dict()
    assert (twin / "vocab.txt").read_text() == (tmp_path / "pretrained" / "vocab.txt").read_text()
    ours = fresh.bert.embeddings.word_embeddings.weight
    assert not torch.equal(ours, pretrained.bert.embeddings.word_embeddings.weight)
    assert ours.std().item() == pytest.approx(fresh.config.initializer_range, rel=0.2)
    # the same seed draws the same twin; an existing twin is reused as it is
    again = build_random_twin(model_dir, tmp_path / "again", seed=0)
    assert torch.equal(
        AutoModelForMaskedLM.from_pretrained(again).bert.embeddings.word_embeddings.weight, ours
    )
    stamp = (twin / "model.safetensors").stat().st_mtime_ns
    assert build_random_twin(model_dir, twin, seed=5) == twin
    assert (twin / "model.safetensors").stat().st_mtime_ns == stamp


def test_random_twin_of_another_architecture_is_refused(tmp_path, tokenizer):
    model_dir = _pretrained(tmp_path, tokenizer)
    twin = build_random_twin(model_dir, tmp_path / "twin")
    config = BertConfig.from_pretrained(model_dir)
    config.num_hidden_layers = 1
    config.save_pretrained(model_dir)
    with pytest.raises(BertForgeError, match="twin of another architecture"):
        build_random_twin(model_dir, twin)


def test_book_task_leaves_out_sentences_the_pretraining_part_also_has(tmp_path, tokenizer):
    repeated = "The Queen of Hearts made some tarts, all on a summer day in the garden."
    paragraphs = [f"The rabbit ran past the hall door number {i} and was gone." for i in range(10)]
    paragraphs[2] = paragraphs[8] = repeated  # once in each half
    book = tmp_path / "en_book.txt"
    book.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    pretrain, held_out = split_books([book], tmp_path / "corpus", held_out=0.5)
    train, test = book_task(
        held_out, tokenizer, tmp_path / "task", train_per_book=2, test_per_book=10, pretrained_on=pretrain
    )
    drawn = [line.split("\t")[1] for path in (train, test) for line in path.read_text().splitlines()[1:]]
    assert sorted(drawn) == sorted(paragraphs[5:8] + paragraphs[9:])  # all held-out sentences but one
