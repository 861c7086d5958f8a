"""BertConfig: defaults, presets, config.json round trips (with transformers both ways), labels, validation;
and the other families' config modules: free of torch, still importable from the modeling modules."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys

import pytest
import transformers

from _helpers import TINY, tiny_config
from bertforge import BertConfig, BertForgeError, BertModel, preset_names
from bertforge.config import PRESET_ALIASES, PRESETS

COMPACT = [f"bert-L{layers}-H{hidden}" for layers in (2, 4, 6, 8, 10, 12) for hidden in (128, 256, 512, 768)]
MODEL_FIELDS = [f.name for f in dataclasses.fields(BertConfig) if f.name != "extra"]
# Fields every transformers version has; the defaults test must at least compare these.
CORE_FIELDS = {
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
    "classifier_dropout",
    "tie_word_embeddings",
    "num_labels",
    "id2label",
    "label2id",
    "problem_type",
}


def shared_fields(hf_config: transformers.BertConfig) -> list[str]:
    return [name for name in MODEL_FIELDS if hasattr(hf_config, name)]


def assert_same_fields(ours: BertConfig, theirs: transformers.BertConfig) -> None:
    names = shared_fields(theirs)
    assert set(names) >= CORE_FIELDS
    mismatched = {
        n: (getattr(ours, n), getattr(theirs, n)) for n in names if getattr(ours, n) != getattr(theirs, n)
    }
    assert mismatched == {}


# ----------------------------------------------------------------------------------------- defaults
def test_defaults_equal_transformers_bert_config_for_every_shared_field():
    assert_same_fields(BertConfig(), transformers.BertConfig())


def test_default_config_is_bert_base_uncased():
    config = BertConfig()
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (30522, 768, 12)
    assert (config.num_attention_heads, config.intermediate_size, config.head_dim) == (12, 3072, 64)


# ------------------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("name", COMPACT)
def test_compact_preset_has_64_dim_heads_and_4x_feed_forward(name):
    layers, hidden = (int(part[1:]) for part in name.removeprefix("bert-").split("-"))
    config = BertConfig.from_preset(name)
    assert config.num_hidden_layers == layers
    assert config.hidden_size == hidden
    assert config.num_attention_heads == hidden // 64
    assert config.head_dim == 64
    assert config.intermediate_size == 4 * hidden
    assert config.vocab_size == 30522


def test_there_are_exactly_24_compact_presets_plus_bert_large():
    assert sorted(PRESETS) == sorted([*COMPACT, "bert-large"])


@pytest.mark.parametrize(
    ("alias", "layers", "hidden"),
    [("bert-tiny", 2, 128), ("bert-mini", 4, 256), ("bert-small", 4, 512), ("bert-medium", 8, 512)],
)
def test_small_aliases_name_the_published_compact_models(alias, layers, hidden):
    config = BertConfig.from_preset(alias)
    assert config == BertConfig.from_preset(f"bert-L{layers}-H{hidden}")
    assert (config.num_hidden_layers, config.hidden_size) == (layers, hidden)


def test_bert_base_preset_is_12_layers_768_hidden_12_heads_3072_ffn():
    config = BertConfig.from_preset("bert-base")
    shape = (config.num_hidden_layers, config.hidden_size)
    assert (*shape, config.num_attention_heads, config.intermediate_size) == (12, 768, 12, 3072)
    assert config == BertConfig()


def test_bert_large_preset_is_24_layers_1024_hidden_16_heads_4096_ffn():
    config = BertConfig.from_preset("bert-large")
    shape = (config.num_hidden_layers, config.hidden_size)
    assert (*shape, config.num_attention_heads, config.intermediate_size) == (24, 1024, 16, 4096)


def test_bert_base_model_has_109_482_240_parameters():
    model = BertModel(BertConfig.from_preset("bert-base"))
    assert model.num_parameters() == 109_482_240


def test_preset_names_lists_every_preset_and_alias_and_each_builds():
    names = preset_names()
    assert set(names) == set(PRESETS) | set(PRESET_ALIASES)
    assert len(names) == len(set(names))
    for name in names:
        assert isinstance(BertConfig.from_preset(name), BertConfig)


def test_from_preset_applies_overrides():
    config = BertConfig.from_preset("bert-tiny", vocab_size=99, num_labels=3)
    assert (config.vocab_size, config.hidden_size, config.num_labels) == (99, 128, 3)


def test_unknown_preset_raises_naming_it_and_listing_choices():
    with pytest.raises(BertForgeError, match="'bert-gigantic'") as info:
        BertConfig.from_preset("bert-gigantic")
    assert "bert-base" in str(info.value)


# ------------------------------------------------------------------------------------- JSON round trip
def test_config_json_round_trip_preserves_fields_and_unknown_keys(tmp_path):
    data = {
        **TINY,
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
        "gradient_checkpointing": False,
        "my_custom_setting": {"nested": [1, 2, 3]},
        "hidden_act": "gelu_new",
    }
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = BertConfig.from_pretrained(tmp_path)
    assert config.hidden_act == "gelu_new"
    assert config.vocab_size == 99
    assert config.extra["my_custom_setting"] == {"nested": [1, 2, 3]}

    out = tmp_path / "out"
    out.mkdir()
    written = config.save_pretrained(out)
    assert written == out / "config.json"
    saved = json.loads(written.read_text())
    for key, value in data.items():
        assert saved[key] == value
    assert BertConfig.from_pretrained(out) == config


def test_from_pretrained_accepts_the_config_file_itself(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    assert BertConfig.from_pretrained(tmp_path / "config.json") == tiny_config()


def test_config_written_by_transformers_loads_with_equal_fields(tmp_path):
    theirs = transformers.BertConfig(
        **TINY,
        hidden_act="relu",
        hidden_dropout_prob=0.2,
        layer_norm_eps=1e-7,
        id2label={0: "neg", 1: "neu", 2: "pos"},
        label2id={"neg": 0, "neu": 1, "pos": 2},
    )
    theirs.save_pretrained(tmp_path)
    ours = BertConfig.from_pretrained(tmp_path)
    assert_same_fields(ours, theirs)
    assert ours.num_labels == 3
    assert ours.id2label == {0: "neg", 1: "neu", 2: "pos"}


@pytest.mark.parametrize("loader", ["BertConfig", "AutoConfig"])
def test_config_we_write_loads_in_transformers_with_equal_fields(tmp_path, loader):
    ours = tiny_config(
        hidden_act="gelu_new",
        attention_probs_dropout_prob=0.05,
        classifier_dropout=0.3,
        type_vocab_size=3,
        pad_token_id=7,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"},
        problem_type="single_label_classification",
    )
    ours.save_pretrained(tmp_path)
    theirs = getattr(transformers, loader).from_pretrained(tmp_path)
    assert type(theirs) is transformers.BertConfig
    assert_same_fields(ours, theirs)
    assert theirs.num_labels == 5


# ------------------------------------------------------------------------------------------- labels
def test_id2label_decides_num_labels_and_builds_label2id():
    config = tiny_config(id2label={0: "neg", 1: "neu", 2: "pos"}, num_labels=7)
    assert config.num_labels == 3
    assert config.label2id == {"neg": 0, "neu": 1, "pos": 2}


def test_num_labels_alone_gives_default_label_names():
    config = tiny_config(num_labels=4)
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"}
    assert config.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2, "LABEL_3": 3}


def test_id2label_is_written_with_string_keys_and_read_back_with_int_keys(tmp_path):
    tiny_config(id2label={0: "neg", 1: "pos"}).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["id2label"] == {"0": "neg", "1": "pos"}
    assert saved["label2id"] == {"neg": 0, "pos": 1}
    loaded = BertConfig.from_pretrained(tmp_path)
    assert loaded.id2label == {0: "neg", 1: "pos"}
    assert loaded.num_labels == 2


def test_replace_num_labels_resets_label_names():
    config = tiny_config(id2label={0: "neg", 1: "pos"}).replace(num_labels=5)
    assert config.num_labels == 5
    assert config.id2label == {i: f"LABEL_{i}" for i in range(5)}
    assert set(config.label2id) == {f"LABEL_{i}" for i in range(5)}


def test_from_pretrained_override_changes_num_labels(tmp_path):
    tiny_config(id2label={0: "neg", 1: "pos"}).save_pretrained(tmp_path)
    config = BertConfig.from_pretrained(tmp_path, num_labels=5, hidden_dropout_prob=0.0)
    assert config.num_labels == 5
    assert len(config.id2label) == 5
    assert config.hidden_dropout_prob == 0.0


def test_replace_returns_a_copy_and_leaves_the_original_alone():
    config = tiny_config()
    changed = config.replace(hidden_act="relu")
    assert changed.hidden_act == "relu"
    assert config.hidden_act == "gelu"


def test_replace_rejects_unknown_field_by_name():
    with pytest.raises(BertForgeError, match="hiden_size"):
        tiny_config().replace(hiden_size=64)


# --------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"hidden_size": 100, "num_attention_heads": 12}, "try num_attention_heads=10"),
        ({"hidden_size": 100, "num_attention_heads": 12}, "hidden_size (100)"),
        ({"hidden_act": "gelu_quick_fake"}, "'gelu_quick_fake'"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob (1.5)"),
        ({"attention_probs_dropout_prob": -0.1}, "attention_probs_dropout_prob (-0.1)"),
        ({"classifier_dropout": 1.0}, "classifier_dropout (1.0)"),
        ({"position_embedding_type": "relative_key"}, "'relative_key'"),
        ({"vocab_size": 0}, "vocab_size (0)"),
        ({"num_hidden_layers": 2.5}, "num_hidden_layers (2.5)"),
        ({"pad_token_id": 99}, "pad_token_id (99)"),
        ({"layer_norm_eps": 0.0}, "layer_norm_eps (0.0)"),
        ({"initializer_range": -0.02}, "initializer_range (-0.02)"),
        ({"num_labels": 0}, "num_labels (0)"),
        ({"problem_type": "ranking"}, "'ranking'"),
    ],
)
def test_invalid_value_raises_bertforge_error_naming_it(overrides, expected):
    with pytest.raises(BertForgeError) as info:
        tiny_config(**overrides)
    assert expected in str(info.value)


def test_bertforge_error_is_a_value_error():
    with pytest.raises(ValueError):
        tiny_config(hidden_act="nope")


def test_config_json_with_model_type_roberta_is_rejected_naming_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "model_type": "roberta"}))
    with pytest.raises(BertForgeError, match="'roberta'"):
        BertConfig.from_pretrained(tmp_path)


def test_invalid_value_in_config_json_is_rejected_on_load(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "hidden_size": 30}))
    with pytest.raises(BertForgeError, match="hidden_size \\(30\\)"):
        BertConfig.from_pretrained(tmp_path)


def test_missing_config_json_raises_naming_the_file(tmp_path):
    with pytest.raises(BertForgeError, match="config.json"):
        BertConfig.from_pretrained(tmp_path)


def test_config_json_that_is_not_json_raises_helpful_error(tmp_path):
    (tmp_path / "config.json").write_text('{"vocab_size": 99,')
    with pytest.raises(BertForgeError, match="not valid JSON"):
        BertConfig.from_pretrained(tmp_path)


def test_config_json_that_is_a_list_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(BertForgeError, match="JSON object"):
        BertConfig.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------------- family configs
FAMILY_CONFIGS = {"albert": "AlbertConfig", "distilbert": "DistilBertConfig", "roberta": "RobertaConfig"}


def test_family_configs_build_save_and_load_without_importing_torch(tmp_path):
    # Reading or listing a config (the CLI's checks, AutoConfig) should not pay for torch.
    code = (
        "import sys\n"
        "from bertforge.auto import AutoConfig, config_class_for\n"
        f"for model_type in {list(FAMILY_CONFIGS)!r}:\n"
        "    config = config_class_for(model_type).from_preset(model_type + '-tiny')\n"
        f"    config.save_pretrained({str(tmp_path)!r} + '/' + model_type)\n"
        f"    assert AutoConfig.from_pretrained({str(tmp_path)!r} + '/' + model_type) == config\n"
        "assert 'torch' not in sys.modules, 'loading a family config imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("family", "name"), FAMILY_CONFIGS.items())
def test_family_config_is_still_importable_from_its_modeling_module(family, name):
    modeling = importlib.import_module(f"bertforge.models.{family}")
    configuration = importlib.import_module(f"bertforge.models.{family}_config")
    assert getattr(modeling, name) is getattr(configuration, name)
    assert name in modeling.__all__
