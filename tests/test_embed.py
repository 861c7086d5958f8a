"""Sentence embeddings: parity with sentence-transformers on the real all-MiniLM-L6-v2 checkpoint,
input order, batching, pooling modes, bfloat16, head models and argument validation."""

from __future__ import annotations

import json
import os
import random
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before sentence_transformers / transformers import

import pytest
import torch
import torch.nn.functional as F

from _helpers import minilm_path
from bertforge import BertConfig, BertForgeError, BertForSequenceClassification, BertModel
from bertforge.embed import Embedder, embed
from bertforge.inference import inference_dtype
from bertforge.tokenizer import BertTokenizer

CORPUS = [
    "the cat sat on the mat and the dog sat on the log",
    "a quick brown fox jumps over the lazy dog near the river bank",
    "embeddings turn sentences into vectors of numbers",
    "padding and truncation change the length of every batch",
    "the model reads tokens and writes hidden states",
    "rivers run to the sea and the sea runs to the sky",
    "猫坐在垫子上。狗在木头上。",
    "les chats dorment au soleil pendant que les chiens jouent",
]
TINY_TEXTS = [
    "the cat sat",
    "",
    "a quick brown fox jumps over the lazy dog near the river bank and the cat sat on the mat",
    "dog",
    "猫坐在垫子上",
    "embeddings turn sentences into vectors",
    "zebra xylophone quux",  # mostly unknown word pieces
    "the model reads tokens, writes hidden states, and the sea runs to the sky!",
    "les chiens jouent",
    "hidden",
    "the the the the the the the the the the the the the the the the the the the the the the the",
]

LONG_PARAGRAPH = " ".join(
    f"Paragraph sentence number {i} talks about rivers, mountains, tokenizers and the weather in town {i % 7}."
    for i in range(40)
)
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "hello",
    "",
    "   ",
    "Ünïcödé àccents are stripped: café, naïve, Zürich.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "El zorro marrón rápido salta sobre el perro perezoso.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "素早い茶色の狐がのろまな犬を飛び越える。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول",
    "Emoji 🦊🐶 and symbols ∑∫√ with numbers 3.14159 and 1,000,000.",
    "URLs like https://example.com/path?query=1&x=2 and e-mails a.b@example.org",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "ALL CAPS SENTENCE SHOUTING LOUDLY",
    "tab\tseparated\tvalues and\nnew lines",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Berlin is the capital of Germany.",
    "How do I reset my password?",
    "Click 'Forgot password' on the login page to reset it.",
    "The stock market fell sharply after the announcement.",
    "It was the best of times, it was the worst of times.",
    "x",
    "1234567890",
    "[CLS] literal special tokens [SEP] inside [MASK] the text",
    "Short.",
    "A sentence with some (parentheses), [brackets] and {braces}.",
    LONG_PARAGRAPH,
]
SHORT = SENTENCES[:-1]  # without the long paragraph, whose 256-token batches dominate the run time


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_tokenizer() -> BertTokenizer:
    return BertTokenizer.train_from_iterator(CORPUS, vocab_size=211, min_frequency=1)


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tiny_tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    return BertModel(config).eval()


@pytest.fixture(scope="module")
def st_model():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    return sentence_transformers.SentenceTransformer(minilm_path(), device="cpu")


@pytest.fixture(scope="module")
def minilm_embedder() -> Embedder:
    return Embedder.from_pretrained(minilm_path())


@pytest.fixture(scope="module")
def minilm_vectors(minilm_embedder) -> torch.Tensor:
    return minilm_embedder(SENTENCES)


def hand_states(model: BertModel, tokenizer: BertTokenizer, text: str, max_length: int = 64) -> torch.Tensor:
    """Last hidden state of one text run alone (no padding): (T, hidden)."""
    ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    with torch.no_grad():
        return model(torch.tensor([ids])).last_hidden_state[0]


# ----------------------------------------------------------------- parity with sentence-transformers
def test_long_paragraph_is_longer_than_minilm_max_seq_length(minilm_embedder):
    assert minilm_embedder.max_length == 256
    assert len(minilm_embedder.tokenizer(LONG_PARAGRAPH)["input_ids"]) > 256


def test_from_pretrained_reads_sentence_transformers_settings(minilm_embedder):
    assert (minilm_embedder.pooling, minilm_embedder.normalize, minilm_embedder.max_length) == (
        "mean",
        True,
        256,
    )


def test_minilm_embeddings_equal_sentence_transformers_encode(st_model, minilm_vectors):
    expected = st_model.encode(SENTENCES, convert_to_tensor=True).cpu()
    assert minilm_vectors.shape == (len(SENTENCES), 384)
    assert minilm_vectors.dtype == torch.float32
    assert (minilm_vectors - expected).abs().max().item() <= 1e-5
    torch.testing.assert_close(minilm_vectors.norm(dim=-1), torch.ones(len(SENTENCES)))


def test_unnormalized_minilm_embeddings_equal_sentence_transformers_without_normalize(st_model):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    # ST's Normalize module ignores normalize_embeddings=False, so build the pipeline without it.
    without_normalize = sentence_transformers.SentenceTransformer(
        modules=[st_model[0], st_model[1]], device="cpu"
    )
    expected = without_normalize.encode(SHORT, convert_to_tensor=True).cpu()
    assert not torch.allclose(expected.norm(dim=-1), torch.ones(len(SHORT)))  # really unnormalised
    actual = Embedder.from_pretrained(minilm_path(), normalize=False)(SHORT)
    assert (actual - expected).abs().max().item() <= 1e-5


def test_from_pretrained_honours_a_cls_pooling_config_without_normalize(tmp_path, st_model):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    source = minilm_path()
    target = tmp_path / "minilm-cls"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    (target / "model.safetensors").symlink_to(os.path.join(source, "model.safetensors"))
    pooling = json.loads((target / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = [
        m for m in json.loads((target / "modules.json").read_text()) if not m["type"].endswith("Normalize")
    ]
    (target / "modules.json").write_text(json.dumps(modules))
    st_config = json.loads((target / "sentence_bert_config.json").read_text())
    st_config["max_seq_length"] = 16
    (target / "sentence_bert_config.json").write_text(json.dumps(st_config))

    embedder = Embedder.from_pretrained(target)
    assert (embedder.pooling, embedder.normalize, embedder.max_length) == ("cls", False, 16)
    texts = SHORT[:12] + [LONG_PARAGRAPH]
    expected = sentence_transformers.SentenceTransformer(str(target), device="cpu").encode(
        texts, convert_to_tensor=True
    )
    assert (embedder(texts) - expected.cpu()).abs().max().item() <= 1e-5


def test_from_pretrained_overrides_win_over_sentence_transformers_settings():
    embedder = Embedder.from_pretrained(minilm_path(), pooling="max", normalize=False, max_length=32)
    assert (embedder.pooling, embedder.normalize, embedder.max_length) == ("max", False, 32)


# ------------------------------------------------------------------------------ order and batching
def test_output_rows_follow_input_order_whatever_the_length_sorting(minilm_embedder, minilm_vectors):
    order = list(range(len(SHORT)))
    random.Random(0).shuffle(order)
    shuffled = minilm_embedder([SHORT[i] for i in order])
    for row, index in enumerate(order):
        assert (shuffled[row] - minilm_vectors[index]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batch_size_does_not_change_the_embeddings(tiny_model, tiny_tokenizer, batch_size):
    reference = torch.stack(
        [hand_states(tiny_model, tiny_tokenizer, text).mean(dim=0) for text in TINY_TEXTS]
    )
    actual = Embedder(tiny_model, tiny_tokenizer, batch_size=batch_size)(TINY_TEXTS)
    assert (actual - reference).abs().max().item() <= 1e-5


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_minilm_batch_sizes_1_7_and_64_agree(minilm_embedder, minilm_vectors, batch_size):
    embedder = Embedder(
        minilm_embedder.encoder,
        minilm_embedder.tokenizer,
        normalize=True,
        max_length=256,
        batch_size=batch_size,
    )
    actual = embedder(SHORT[:20])
    assert (actual - minilm_vectors[:20]).abs().max().item() <= 1e-5


def test_show_progress_gives_the_same_vectors(tiny_model, tiny_tokenizer):
    embedder = Embedder(tiny_model, tiny_tokenizer, batch_size=3)
    torch.testing.assert_close(embedder(TINY_TEXTS, show_progress=True), embedder(TINY_TEXTS))


# ------------------------------------------------------------------------------------------ pooling
def test_mean_pooling_averages_real_tokens_only(tiny_model, tiny_tokenizer):
    actual = embed(tiny_model, tiny_tokenizer, TINY_TEXTS, pooling="mean", batch_size=4)
    for row, text in enumerate(TINY_TEXTS):
        expected = hand_states(tiny_model, tiny_tokenizer, text).mean(dim=0)
        assert (actual[row] - expected).abs().max().item() <= 1e-5, text


def test_cls_pooling_is_the_last_hidden_state_at_position_zero(tiny_model, tiny_tokenizer):
    actual = embed(tiny_model, tiny_tokenizer, TINY_TEXTS, pooling="cls", batch_size=4)
    for row, text in enumerate(TINY_TEXTS):
        expected = hand_states(tiny_model, tiny_tokenizer, text)[0]
        assert (actual[row] - expected).abs().max().item() <= 1e-5, text


def test_max_pooling_takes_the_elementwise_max_over_real_tokens(tiny_model, tiny_tokenizer):
    actual = embed(tiny_model, tiny_tokenizer, TINY_TEXTS, pooling="max", batch_size=4)
    for row, text in enumerate(TINY_TEXTS):
        expected = hand_states(tiny_model, tiny_tokenizer, text).amax(dim=0)
        assert (actual[row] - expected).abs().max().item() <= 1e-5, text


def test_max_length_truncates_each_text(tiny_model, tiny_tokenizer):
    actual = embed(tiny_model, tiny_tokenizer, TINY_TEXTS, max_length=5)
    for row, text in enumerate(TINY_TEXTS):
        expected = hand_states(tiny_model, tiny_tokenizer, text, max_length=5).mean(dim=0)
        assert (actual[row] - expected).abs().max().item() <= 1e-5, text


def test_normalize_gives_unit_vectors_in_the_same_direction(tiny_model, tiny_tokenizer):
    raw = embed(tiny_model, tiny_tokenizer, TINY_TEXTS)
    unit = embed(tiny_model, tiny_tokenizer, TINY_TEXTS, normalize=True)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(len(TINY_TEXTS)))
    torch.testing.assert_close(unit, F.normalize(raw, dim=-1))


# --------------------------------------------------------------------------------------- shapes
def test_a_single_string_returns_one_vector(tiny_model, tiny_tokenizer):
    one = embed(tiny_model, tiny_tokenizer, "the cat sat")
    assert one.shape == (32,)
    torch.testing.assert_close(one, embed(tiny_model, tiny_tokenizer, ["the cat sat", "dog"])[0])


def test_an_empty_list_returns_zero_rows(tiny_model, tiny_tokenizer):
    out = embed(tiny_model, tiny_tokenizer, [])
    assert out.shape == (0, 32)
    assert out.dtype == torch.float32


def test_a_tuple_or_generator_of_texts_is_accepted(tiny_model, tiny_tokenizer):
    expected = embed(tiny_model, tiny_tokenizer, TINY_TEXTS)
    torch.testing.assert_close(embed(tiny_model, tiny_tokenizer, tuple(TINY_TEXTS)), expected)
    torch.testing.assert_close(embed(tiny_model, tiny_tokenizer, (t for t in TINY_TEXTS)), expected)


# -------------------------------------------------------------------------------------- bfloat16
def test_bfloat16_is_close_to_float32_and_leaves_the_callers_model_float32(minilm_vectors, minilm_embedder):
    model = BertModel.from_pretrained(minilm_path())
    before = model.embeddings.word_embeddings.weight.clone()
    embedder = Embedder(
        model, minilm_embedder.tokenizer, normalize=True, max_length=256, dtype=torch.bfloat16
    )
    vectors = embedder(SHORT)
    assert inference_dtype(embedder.encoder) == torch.bfloat16  # its matmuls; LayerNorm stays float32
    assert vectors.dtype == torch.float32
    assert not torch.equal(vectors, minilm_vectors[: len(SHORT)])  # it really ran in bfloat16
    cosines = F.cosine_similarity(vectors, minilm_vectors[: len(SHORT)], dim=-1)
    assert cosines.min().item() >= 0.999
    assert model.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(model.embeddings.word_embeddings.weight, before)


def test_bfloat16_keyword_of_embed_function_is_close_to_float32(tiny_model, tiny_tokenizer):
    fp32 = embed(tiny_model, tiny_tokenizer, TINY_TEXTS)
    bf16 = embed(tiny_model, tiny_tokenizer, TINY_TEXTS, dtype=torch.bfloat16)
    assert F.cosine_similarity(bf16, fp32, dim=-1).min().item() >= 0.99
    assert tiny_model.dtype == torch.float32


# ------------------------------------------------------------------------------------ model kinds
def test_embed_uses_the_encoder_of_a_head_model(tiny_tokenizer):
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=tiny_tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=3,
    )
    head = BertForSequenceClassification(config).eval()
    actual = embed(head, tiny_tokenizer, TINY_TEXTS)
    expected = torch.stack([hand_states(head.bert, tiny_tokenizer, text).mean(dim=0) for text in TINY_TEXTS])
    assert (actual - expected).abs().max().item() <= 1e-5


def test_embedding_a_model_in_training_mode_uses_no_dropout_and_keeps_training_mode(tiny_tokenizer):
    torch.manual_seed(2)
    config = BertConfig(
        vocab_size=tiny_tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.5,
    )
    model = BertModel(config).train()
    first = embed(model, tiny_tokenizer, TINY_TEXTS)
    second = embed(model, tiny_tokenizer, TINY_TEXTS)
    torch.testing.assert_close(first, second)
    assert model.training
    assert all(module.training for module in model.modules())


def test_a_module_without_a_bert_encoder_is_refused(tiny_tokenizer):
    with pytest.raises(BertForgeError, match="cannot embed"):
        embed(torch.nn.Linear(3, 3), tiny_tokenizer, ["text"])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "sum"}, "pooling"),
        ({"pooling": "CLS"}, "pooling"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -3}, "batch_size"),
        ({"max_length": 65}, "max_length"),
        ({"max_length": 1}, "max_length"),
        ({"max_length": 0}, "max_length"),
        ({"dtype": torch.int8}, "dtype"),
    ],
)
def test_bad_arguments_raise_bertforge_error(tiny_model, tiny_tokenizer, kwargs, message):
    with pytest.raises(BertForgeError, match=message):
        Embedder(tiny_model, tiny_tokenizer, **kwargs)
    with pytest.raises(BertForgeError, match=message):
        embed(tiny_model, tiny_tokenizer, ["text"], **kwargs)


def test_max_length_equal_to_the_position_count_is_accepted(tiny_model, tiny_tokenizer):
    assert Embedder(tiny_model, tiny_tokenizer, max_length=64).max_length == 64


@pytest.mark.parametrize("bad", [["fine", 3], ["fine", None], [b"bytes"], [["nested"]]])
def test_a_text_that_is_not_a_str_raises_bertforge_error(tiny_model, tiny_tokenizer, bad):
    with pytest.raises(BertForgeError, match="must be a str"):
        embed(tiny_model, tiny_tokenizer, bad)
