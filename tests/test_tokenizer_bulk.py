"""BulkEncoder (bertforge.tokenization.bulk): each distinct piece encoded once, the same arrays as
``encode_batch`` on the whole sentences, for any text."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bertforge.tokenization import BertTokenizer, RobertaTokenizer  # noqa: E402
from bertforge.tokenization.bulk import BulkEncoder  # noqa: E402
from bertforge.tokenization.wordpiece import _PADDED_CJK  # noqa: E402
from test_tokenizer_fuzz import TEXT  # noqa: E402
from test_tokenizer_parity import corpus_excerpt  # noqa: E402

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# CJK around the edges of the padded ranges (0x2B81F is padded, 0x2B820 is not), compatibility
# ideographs (NFD changes them), kana and full-width forms (not padded), Chinese punctuation.
_CJK = st.sampled_from(
    list("天下大势分久必合我们喜欢模型，。「」（）ｱＡ１かカ")
    + [chr(c) for c in (0x3400, 0x4DBF, 0x4DC0, 0x9FFF, 0xF900, 0xFAFF, 0x2B81F, 0x2B820, 0x2B920, 0x2FA1F)]
)
SENTENCE = st.lists(st.one_of(TEXT, st.text(_CJK, min_size=1, max_size=8)), max_size=6).map("".join)


def reference(tokenizer: Any, sentences: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    encodings = tokenizer.backend_tokenizer.encode_batch(sentences, add_special_tokens=False)
    ids = np.array(list(itertools.chain.from_iterable(e.ids for e in encodings)), dtype=np.int64)
    lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
    starts = np.array([a for e in encodings for a, _ in e.offsets], dtype=np.int64)
    return ids, lengths, starts


def assert_same_as_encode_batch(encoder: BulkEncoder, tokenizer: Any, sentences: list[str]) -> None:
    got = encoder.encode(sentences, char_starts=True)
    ids, lengths, starts = reference(tokenizer, sentences)
    np.testing.assert_array_equal(got.lengths, lengths, err_msg=repr(sentences))
    np.testing.assert_array_equal(got.ids, ids, err_msg=repr(sentences))
    assert got.char_starts is not None
    np.testing.assert_array_equal(got.char_starts, starts, err_msg=repr(sentences))


@pytest.fixture(scope="module")
def wordpiece() -> dict[str, BertTokenizer]:
    texts = corpus_excerpt(3000)
    uncased = BertTokenizer.train_from_iterator(texts, vocab_size=1200)
    vocab = uncased.get_vocab()
    return {
        "uncased": uncased,
        "cased": BertTokenizer(vocab, do_lower_case=False),
        "no-chinese-chars": BertTokenizer(vocab, tokenize_chinese_chars=False),
    }


@pytest.mark.parametrize("variant", ["uncased", "cased", "no-chinese-chars"])
@FUZZ
@given(sentences=st.lists(SENTENCE, min_size=1, max_size=4))
def test_generated_sentences_encode_as_encode_batch_encodes_them(
    wordpiece: dict[str, BertTokenizer], variant: str, sentences: list[str]
) -> None:
    tokenizer = wordpiece[variant]
    encoder = BulkEncoder(tokenizer)
    assert encoder.pattern is not None  # the fast path, not the fallback
    assert_same_as_encode_batch(encoder, tokenizer, sentences)
    assert_same_as_encode_batch(encoder, tokenizer, sentences[::-1])  # now from the cache


def test_bundled_books_encode_as_encode_batch_encodes_them(wordpiece: dict[str, BertTokenizer]) -> None:
    sentences = [line for text in corpus_excerpt(20_000) for line in text.splitlines() if line.strip()]
    encoder = BulkEncoder(wordpiece["uncased"])
    for start in range(0, len(sentences), 300):  # chunk after chunk, as the dataset builder calls it
        assert_same_as_encode_batch(encoder, wordpiece["uncased"], sentences[start : start + 300])


def test_cache_starts_over_when_full_and_results_do_not_change(wordpiece: dict[str, BertTokenizer]) -> None:
    sentences = [line for text in corpus_excerpt(5000) for line in text.splitlines() if line.strip()]
    encoder = BulkEncoder(wordpiece["uncased"], max_pieces=50)
    sizes = []
    for start in range(0, len(sentences), 20):
        chunk = sentences[start : start + 20]
        assert_same_as_encode_batch(encoder, wordpiece["uncased"], chunk)
        sizes.append(len(encoder._cache.index))
        # Bounded: at most the limit, or (right after a restart) the distinct pieces of one chunk.
        assert sizes[-1] <= max(50, sum(len(s) + 1 for s in chunk))
    assert any(later < earlier for earlier, later in itertools.pairwise(sizes))  # it did restart


def test_sentences_without_tokens_get_length_zero(wordpiece: dict[str, BertTokenizer]) -> None:
    encoder = BulkEncoder(wordpiece["uncased"])
    got = encoder.encode(["", "   ", "\u200b", "the cat"], char_starts=True)
    assert got.lengths.tolist()[:3] == [0, 0, 0] and got.lengths[3] > 0
    assert_same_as_encode_batch(encoder, wordpiece["uncased"], ["", "   ", "\u200b", "the cat"])


def test_sentence_holding_the_separator_still_encodes_right(wordpiece: dict[str, BertTokenizer]) -> None:
    # Sentences are joined by " \n " internally; one that contains it takes the slow, exact path.
    assert_same_as_encode_batch(
        BulkEncoder(wordpiece["uncased"]), wordpiece["uncased"], ["a \n b", "the cat"]
    )


def test_special_token_that_strips_spaces_disables_the_cache() -> None:
    # RoBERTa's <mask> eats the space before it, and its pieces would carry their leading space:
    # byte-level BPE does not promise independent pieces, so whole sentences go to encode_batch.
    texts = corpus_excerpt(2000)
    roberta = RobertaTokenizer.train_from_iterator(texts, vocab_size=400)
    encoder = BulkEncoder(roberta)
    assert encoder.pattern is None
    assert_same_as_encode_batch(encoder, roberta, ["a <mask> of tea.", " two  spaces", "你好"])


def test_padded_cjk_ranges_are_exactly_what_the_normaliser_pads() -> None:
    from tokenizers import normalizers

    normaliser = normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    # _PADDED_CJK is a regex class body of ranges "a-b" (three characters each).
    bounds = [(ord(_PADDED_CJK[i]), ord(_PADDED_CJK[i + 2])) for i in range(0, len(_PADDED_CJK), 3)]
    for first, last in bounds:
        for code in (first, (first + last) // 2, last):
            assert normaliser.normalize_str(chr(code)) == f" {chr(code)} ", hex(code)
        for code in (first - 1, last + 1):
            if not any(a <= code <= b for a, b in bounds):
                assert normaliser.normalize_str(chr(code)) == chr(code), hex(code)


def test_cut_punctuation_is_isolated_by_the_pre_tokenizer_and_kept_by_the_normaliser() -> None:
    from tokenizers import normalizers, pre_tokenizers

    from bertforge.tokenization.wordpiece import _CUT_PUNCTUATION

    split = pre_tokenizers.BertPreTokenizer()
    for char in _CUT_PUNCTUATION:
        assert [word for word, _ in split.pre_tokenize_str(f"ab{char}cd")] == ["ab", char, "cd"], repr(char)
        for lowercase in (True, False):
            normaliser = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
            assert normaliser.normalize_str(char) == char, repr(char)
