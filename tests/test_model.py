"""BertModel: shapes, attention masks, padding invariance, dropout, weight edits, gradients,
initialisation, bf16, and parity with transformers on the real all-MiniLM-L6-v2 checkpoint."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _helpers import (
    BATCH,
    LENGTHS,
    SENTENCES,
    SEQ,
    TINY,
    assert_close,
    minilm_path,
    padded_batch,
    tiny_config,
)
from bertforge import BertModel
from bertforge.model import key_padding_mask

HIDDEN, HEADS, LAYERS = TINY["hidden_size"], TINY["num_attention_heads"], TINY["num_hidden_layers"]


@pytest.fixture
def model() -> BertModel:
    torch.manual_seed(0)
    return BertModel(tiny_config()).eval()


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return padded_batch()


@pytest.fixture(scope="module")
def minilm():
    """(bertforge model, transformers model, transformers tokenizer) for all-MiniLM-L6-v2, eval mode."""
    transformers = pytest.importorskip("transformers")
    path = minilm_path()
    ours = BertModel.from_pretrained(path)
    theirs = transformers.AutoModel.from_pretrained(path).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return ours, theirs, tokenizer


# ------------------------------------------------------------------------------------------- shapes
def test_output_shapes_are_batch_seq_hidden_and_batch_hidden(model, batch):
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (BATCH, SEQ, HIDDEN)
    assert out.pooler_output.shape == (BATCH, HIDDEN)
    assert out.hidden_states is None
    assert out.attentions is None


def test_model_without_pooling_layer_returns_no_pooler_output(batch):
    model = BertModel(tiny_config(), add_pooling_layer=False).eval()
    out = model(**batch)
    assert out.pooler_output is None
    assert not any(name.startswith("pooler.") for name in model.state_dict())


def test_output_hidden_states_gives_embeddings_plus_one_per_layer(model, batch):
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        embeddings = model.embeddings(batch["input_ids"], batch["token_type_ids"])
    assert len(out.hidden_states) == LAYERS + 1
    assert all(h.shape == (BATCH, SEQ, HIDDEN) for h in out.hidden_states)
    assert_close(out.hidden_states[0], embeddings)
    assert_close(out.hidden_states[-1], out.last_hidden_state)


def test_output_attentions_are_probabilities_with_zero_weight_on_padding(model, batch):
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    assert len(out.attentions) == LAYERS
    for probs in out.attentions:
        assert probs.shape == (BATCH, HEADS, SEQ, SEQ)
        assert bool((probs >= 0).all())
        assert_close(probs.sum(-1), torch.ones(BATCH, HEADS, SEQ))
        for row, length in enumerate(LENGTHS):
            assert bool((probs[row, :, :, length:] == 0).all())
            assert bool((probs[row, :, :, :length] > 0).all())


@pytest.mark.parametrize("padded", [True, False])
def test_explicit_attention_path_equals_sdpa_path(model, batch, padded):
    if not padded:
        batch = {k: v for k, v in batch.items() if k != "attention_mask"}
    with torch.no_grad():
        fast = model(**batch)
        explicit = model(**batch, output_attentions=True, output_hidden_states=True)
    assert_close(explicit.last_hidden_state, fast.last_hidden_state)
    assert_close(explicit.pooler_output, fast.pooler_output)


def test_key_padding_mask_is_none_when_nothing_is_padded_and_bool_keys_otherwise():
    assert key_padding_mask(None) is None
    assert key_padding_mask(torch.ones(2, 5, dtype=torch.long)) is None
    mask = key_padding_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert mask.dtype == torch.bool
    assert mask.shape == (2, 1, 1, 3)
    assert mask.flatten(1).tolist() == [[True, True, False], [True, True, True]]


def test_attention_mask_of_wrong_rank_is_rejected(model, batch):
    with pytest.raises(ValueError, match="attention_mask"):
        model(batch["input_ids"], attention_mask=batch["attention_mask"][:, None, None, :])


# --------------------------------------------------------------------------------- padding invariance
def test_padding_does_not_change_hidden_states_of_real_tokens(model, batch):
    with torch.no_grad():
        padded = model(**batch)
        for row, length in enumerate(LENGTHS):
            alone = model(
                batch["input_ids"][row : row + 1, :length],
                token_type_ids=batch["token_type_ids"][row : row + 1, :length],
            )
            assert_close(padded.last_hidden_state[row, :length], alone.last_hidden_state[0])
            assert_close(padded.pooler_output[row], alone.pooler_output[0])


def test_padding_does_not_change_minilm_hidden_states_of_real_tokens(minilm):
    ours, _, tokenizer = minilm
    enc = tokenizer(list(SENTENCES), padding=True, return_tensors="pt")
    assert int(enc["attention_mask"].sum(1).min()) < enc["input_ids"].shape[1]  # something is padded
    with torch.no_grad():
        batched = ours(**enc).last_hidden_state
        for row, sentence in enumerate(SENTENCES):
            alone = ours(**tokenizer(sentence, return_tensors="pt")).last_hidden_state[0]
            assert_close(batched[row, : alone.shape[0]], alone)


# ----------------------------------------------------------------------------------- input defaults
def test_token_type_ids_none_equals_explicit_zeros(model, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        implicit = model(ids, attention_mask=mask)
        explicit = model(ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    assert_close(implicit.last_hidden_state, explicit.last_hidden_state)


def test_token_type_ids_change_the_output(model, batch):
    with torch.no_grad():
        with_types = model(**batch).last_hidden_state
        without = model(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    assert (with_types - without).abs().max() > 1e-3


def test_position_ids_none_equals_explicit_arange(model, batch):
    positions = torch.arange(SEQ).expand(BATCH, SEQ)
    with torch.no_grad():
        implicit = model(**batch)
        explicit = model(**batch, position_ids=positions)
        shifted = model(**batch, position_ids=positions + 1)
    assert_close(implicit.last_hidden_state, explicit.last_hidden_state)
    assert (implicit.last_hidden_state - shifted.last_hidden_state).abs().max() > 1e-3


def test_sequence_longer_than_max_position_embeddings_raises_clear_error(model):
    too_long = torch.ones(1, TINY["max_position_embeddings"] + 1, dtype=torch.long)
    with pytest.raises(ValueError, match=r"sequence length 65 exceeds max_position_embeddings \(64\)"):
        model(too_long)


def test_sequence_of_exactly_max_position_embeddings_runs(model):
    ids = torch.ones(1, TINY["max_position_embeddings"], dtype=torch.long)
    with torch.no_grad():
        assert model(ids).last_hidden_state.shape == (1, 64, HIDDEN)


def test_input_ids_of_wrong_rank_are_rejected(model):
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.ones(5, dtype=torch.long))


# ------------------------------------------------------------------------------------------ dropout
def test_eval_mode_is_deterministic(model, batch):
    first = model(**batch).last_hidden_state
    second = model(**batch).last_hidden_state
    assert torch.equal(first, second)


def test_train_mode_dropout_changes_outputs(model, batch):
    model.train()
    torch.manual_seed(1)
    first = model(**batch).last_hidden_state
    second = model(**batch).last_hidden_state
    assert (first - second).abs().max() > 1e-3


@pytest.mark.parametrize("output_attentions", [False, True])
def test_attention_dropout_alone_changes_train_mode_outputs(batch, output_attentions):
    torch.manual_seed(0)
    model = BertModel(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.5)).train()
    with torch.no_grad():
        first = model(**batch, output_attentions=output_attentions).last_hidden_state
        second = model(**batch, output_attentions=output_attentions).last_hidden_state
        evaluated = model.eval()(**batch).last_hidden_state
    assert (first - second).abs().max() > 1e-3
    assert (first - evaluated).abs().max() > 1e-3


@pytest.mark.parametrize("output_attentions", [False, True])
def test_train_mode_without_dropout_equals_eval_mode(batch, output_attentions):
    torch.manual_seed(0)
    model = BertModel(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    trained = model.train()(**batch, output_attentions=output_attentions).last_hidden_state
    with torch.no_grad():
        evaluated = model.eval()(**batch).last_hidden_state
    assert_close(trained, evaluated)


# ------------------------------------------- in-place weight edits are seen (nothing is cached)
def fresh_reference(model: BertModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The same weights in a newly built model: nothing cached anywhere."""
    other = BertModel(model.config).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        return other(**batch).last_hidden_state


# The key bias is left out on purpose: it adds the same q.b_k to every score of a row, which the
# softmax cancels, so changing it does not change the output.
@pytest.mark.parametrize(
    ("attribute", "part"),
    [("query", "weight"), ("key", "weight"), ("value", "weight"), ("query", "bias"), ("value", "bias")],
)
def test_inference_sees_in_place_change_through_data(model, batch, attribute, part):
    with torch.no_grad():
        before = model(**batch).last_hidden_state
    param = getattr(getattr(model.encoder.layer[0].attention.self, attribute), part)
    # Random, not a constant: adding 1 to every query weight is cancelled by LayerNorm's zero mean.
    param.data.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        after = model(**batch).last_hidden_state
    assert (after - before).abs().max() > 1e-3
    assert_close(after, fresh_reference(model, batch))


def test_inference_sees_in_place_change_under_no_grad(model, batch):
    with torch.no_grad():
        before = model(**batch).last_hidden_state
        model.encoder.layer[1].attention.self.value.weight.mul_(3.0)
        after = model(**batch).last_hidden_state
    assert (after - before).abs().max() > 1e-3
    assert_close(after, fresh_reference(model, batch))


def test_inference_sees_optimizer_step(model, batch):
    with torch.no_grad():
        before = model(**batch).last_hidden_state
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    model(**batch).last_hidden_state.square().mean().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model(**batch).last_hidden_state
    assert (after - before).abs().max() > 1e-3
    assert_close(after, fresh_reference(model, batch))


def test_inference_sees_load_state_dict(model, batch):
    torch.manual_seed(123)
    other = BertModel(model.config).eval()
    with torch.no_grad():
        model(**batch)
        expected = other(**batch).last_hidden_state
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert_close(model(**batch).last_hidden_state, expected)


def test_inference_matches_transformers_after_weight_change(model, batch):
    transformers = pytest.importorskip("transformers")
    with torch.no_grad():
        model(**batch)  # populate any cache
    model.encoder.layer[0].attention.self.key.weight.data.mul_(-2.0)
    theirs = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    theirs.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert_close(model(**batch).last_hidden_state, theirs(**batch).last_hidden_state)


# ---------------------------------------------------------------------------------------- gradients
def test_gradients_reach_query_key_value_and_every_parameter(model, batch):
    model.train()
    model(**batch).pooler_output.square().sum().backward()
    for name, param in model.named_parameters():
        if name == "embeddings.word_embeddings.weight":
            continue  # only rows of the ids in the batch get gradient
        assert param.grad is not None, name
        assert param.grad.abs().max() > 0, name
    for layer in model.encoder.layer:
        for proj in ("query", "key", "value"):
            linear = getattr(layer.attention.self, proj)
            assert linear.weight.grad.abs().max() > 0
            assert linear.bias.grad is not None


def test_padding_embedding_row_gets_no_gradient(model, batch):
    model.train()
    hidden = model(**batch).last_hidden_state
    # A random projection: a plain sum of LayerNorm outputs has zero gradient when gamma is all ones.
    (hidden * torch.randn_like(hidden)).sum().backward()
    grad = model.embeddings.word_embeddings.weight.grad
    assert bool((grad[0] == 0).all())
    assert grad[batch["input_ids"][0, 0]].abs().max() > 0


# ----------------------------------------------------------------------------------- initialisation
def test_initialisation_follows_bert():
    torch.manual_seed(0)
    config = tiny_config(vocab_size=499, hidden_size=64, intermediate_size=257, initializer_range=0.05)
    model = BertModel(config)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 6 * config.num_hidden_layers + 1
    weights = torch.cat([m.weight.flatten() for m in linears])
    assert abs(weights.mean().item()) < 0.005
    assert weights.std().item() == pytest.approx(0.05, rel=0.05)
    assert all(bool((m.bias == 0).all()) for m in linears)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * config.num_hidden_layers + 1
    assert all(bool((m.weight == 1).all()) and bool((m.bias == 0).all()) for m in norms)
    word = model.embeddings.word_embeddings.weight
    assert bool((word[config.pad_token_id] == 0).all())
    rest = torch.cat([word[1:].flatten(), model.embeddings.position_embeddings.weight.flatten()])
    assert rest.std().item() == pytest.approx(0.05, rel=0.05)


def test_padding_row_follows_pad_token_id():
    model = BertModel(tiny_config(pad_token_id=7))
    word = model.embeddings.word_embeddings.weight
    assert bool((word[7] == 0).all())
    assert word[0].abs().max() > 0


def test_same_seed_builds_same_weights():
    torch.manual_seed(3)
    first = BertModel(tiny_config()).state_dict()
    torch.manual_seed(3)
    second = BertModel(tiny_config()).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_num_parameters_counts_every_tensor_once():
    model = BertModel(tiny_config())
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    frozen = model.embeddings.word_embeddings.weight.numel()
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - frozen


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu", "silu"])
def test_hidden_act_is_applied_in_the_feed_forward(act):
    model = BertModel(tiny_config(hidden_act=act))
    x = torch.linspace(-3, 3, 37)
    expected = {
        "gelu": F.gelu(x),
        "gelu_new": F.gelu(x, approximate="tanh"),
        "relu": F.relu(x),
        "silu": F.silu(x),
    }[act]
    assert_close(model.encoder.layer[0].intermediate.act(x), expected)


# --------------------------------------------------------------------------------------------- bf16
def test_bfloat16_model_runs_and_is_close_to_float32(model, batch):
    with torch.no_grad():
        reference = model(**batch).last_hidden_state
        model.to(torch.bfloat16)
        assert model.dtype == torch.bfloat16
        low = model(**batch).last_hidden_state
    assert low.dtype == torch.bfloat16
    for row, length in enumerate(LENGTHS):
        cosine = F.cosine_similarity(low[row, :length].float(), reference[row, :length], dim=-1)
        assert cosine.min() > 0.99


# ------------------------------------------------------------------------------------ real checkpoint
def test_minilm_hidden_states_and_pooler_equal_transformers(minilm):
    ours, theirs, tokenizer = minilm
    enc = tokenizer(list(SENTENCES), padding=True, return_tensors="pt")
    with torch.no_grad():
        a = ours(**enc, output_hidden_states=True)
        b = theirs(**enc, output_hidden_states=True)
    assert len(a.hidden_states) == len(b.hidden_states) == 7
    mask = enc["attention_mask"].bool()
    for mine, reference in zip(a.hidden_states, b.hidden_states, strict=True):
        assert_close(mine[mask], reference[mask])
    assert_close(a.last_hidden_state[mask], b.last_hidden_state[mask])
    assert_close(a.pooler_output, b.pooler_output)


def test_minilm_sentence_pair_with_token_types_equals_transformers(minilm):
    ours, theirs, tokenizer = minilm
    enc = tokenizer(
        ["Where is the station?", "Who wrote it?"],
        ["The station is two blocks north of here.", "It was written long ago by someone."],
        padding=True,
        return_tensors="pt",
    )
    assert int(enc["token_type_ids"].max()) == 1
    with torch.no_grad():
        a, b = ours(**enc), theirs(**enc)
    mask = enc["attention_mask"].bool()
    assert_close(a.last_hidden_state[mask], b.last_hidden_state[mask])
    assert_close(a.pooler_output, b.pooler_output)


# ------------------------------------------------------------------------------------------- hygiene
def test_library_core_never_imports_transformers():
    code = (
        "import sys\n"
        "import bertforge, bertforge.config, bertforge.model, bertforge.heads, bertforge.checkpoint\n"
        "import bertforge.outputs, bertforge.fileio\n"
        "assert 'transformers' not in sys.modules, 'bertforge imported transformers'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------ fast CPU dropout
def test_fast_dropout_drops_at_the_configured_rate_and_is_unbiased():
    from bertforge.model import dropout

    torch.manual_seed(0)
    ones = torch.ones(2_000_003)  # odd size: the last 64-bit word is only partly used
    out = dropout(ones, 0.1, training=True)
    dropped = (out == 0).float().mean().item()
    # binomial sd at n=2e6 is 2.1e-4; 5 sd
    assert abs(dropped - 0.1) < 1.1e-3
    assert abs(out.mean().item() - 1.0) < 2e-3
    values = out.unique().tolist()
    assert values[0] == 0.0 and values[1] == pytest.approx(65536 / (65536 - 6554)) and len(values) == 2


def test_fast_dropout_is_reproducible_from_the_torch_seed_and_identity_in_eval():
    from bertforge.model import dropout

    x = torch.randn(4, 33, 7)
    torch.manual_seed(3)
    first = dropout(x, 0.3, training=True)
    torch.manual_seed(3)
    assert torch.equal(first, dropout(x, 0.3, training=True))
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x


def test_fast_dropout_gradient_is_the_same_mask_and_scale():
    from bertforge.model import dropout

    x = torch.randn(1000, requires_grad=True)
    out = dropout(x, 0.25, training=True)
    out.sum().backward()
    kept = out.detach() != 0
    assert torch.equal(x.grad != 0, kept)
    assert_close(x.grad[kept], torch.full_like(x.grad[kept], 65536 / (65536 - 16384)))
