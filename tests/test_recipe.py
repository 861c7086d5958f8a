"""Run recipes: TOML files plus --section.key overrides become one typed PretrainConfig; bad keys and
values are errors that name them; the resolved config written back is itself a recipe."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published before it joined the standard library
    import tomli as tomllib

from bertforge import BertForgeError
from bertforge.train.recipe import (
    Phase,
    PretrainConfig,
    config_from_dict,
    dump_toml,
    load_recipe,
    parse_duration,
    parse_overrides,
)

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_bundled_recipe_loads(path: Path) -> None:
    config = load_recipe(path)
    assert isinstance(config, PretrainConfig)
    assert sum(p.fraction for p in config.phases()) == pytest.approx(1.0)


def test_bundled_recipes_cover_the_classic_setups() -> None:
    names = {p.stem for p in RECIPES}
    assert {
        "bert-base",
        "roberta-base",
        "albert-base",
        "distilbert",
        "macbert-chinese",
        "ernie-chinese",
        "spanbert",
        "chinese-wwm",
        "sanity-cpu",
        "cpu-hour",
    } <= names
    bert = load_recipe(RECIPES[[p.stem for p in RECIPES].index("bert-base")])
    assert [(p.fraction, p.max_seq_length) for p in bert.phases()] == [(0.9, 128), (0.1, 512)]


def test_cpu_hour_recipe_is_a_one_hour_cramming_run_of_bert_tiny() -> None:
    config = load_recipe(RECIPES[[p.stem for p in RECIPES].index("cpu-hour")])
    model = config.model.bert_config(vocab_size=16000)
    assert (model.num_hidden_layers, model.hidden_size, model.max_position_embeddings) == (2, 128, 128)
    assert model.hidden_dropout_prob == model.attention_probs_dropout_prob == 0.0
    assert config.train.budget_seconds == 3600 and config.train.dtype == "fp32"
    assert config.data.objective == "mlm" and config.data.max_seq_length == 128
    assert (config.optim.lr, config.train.batch_size * config.train.grad_accum) == (2e-3, 32)


def test_overrides_are_coerced_to_the_field_types(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        "[optim]\nlr = 1e-3\n[train]\nbatch_size = 8\n[[train.phases]]\nfraction = 1.0\nmax_seq_length = 64\n"
    )
    config = load_recipe(
        recipe,
        parse_overrides(
            [
                "--optim.lr", "1e-4",
                "--train.max_steps=3",
                "--optim.betas", "0.9,0.98",
                "--data.dynamic", "false",
                "--train.budget", "90m",
                "--schedule.warmup", "0.1",
                "--model.hidden_size", "32",
                "--model.num_attention_heads", "4",
                "--output_dir", "somewhere",
            ]
        ),
    )  # fmt: skip
    assert config.optim.lr == 1e-4 and config.optim.betas == (0.9, 0.98)
    assert config.train.max_steps == 3 and config.train.batch_size == 8
    assert config.data.dynamic is False
    assert config.train.budget_seconds == 5400
    assert config.model.hidden_size == 32
    assert config.output_dir == "somewhere"
    assert config.train.phases == [Phase(fraction=1.0, max_seq_length=64)]


def test_phases_and_none_can_be_given_on_the_command_line() -> None:
    config = load_recipe(
        None,
        {
            "train.phases": '[{"fraction": 0.9, "max_seq_length": 64}, {"fraction": 0.1, "max_seq_length": 128}]',
            "train.max_steps": "none",
        },
    )
    assert [p.max_seq_length for p in config.phases()] == [64, 128]
    assert config.train.max_steps is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"optim.lrr": "1"},
            "unknown recipe key 'optim.lrr' (did you mean 'lr'?); valid keys in [optim]: name, lr,",
        ),
        (
            {"trian.max_steps": "1"},
            "unknown recipe key 'trian.max_steps'; valid keys in the recipe: model.KEY",
        ),
        ({"train.max_steps": "three"}, "recipe key 'train.max_steps' must be an integer, got 'three'"),
        ({"train.max_steps": "1.5"}, "recipe key 'train.max_steps' must be an integer"),
        ({"data.dynamic": "maybe"}, "recipe key 'data.dynamic' must be true or false, got 'maybe'"),
        ({"optim.betas": "0.9"}, "recipe key 'optim.betas' must be a list of 2 values"),
        (
            {"data.masking": "spam"},
            "unknown masking strategy 'spam'; choose from token, whole-word, span, ngram",
        ),
        ({"optim.name": "sgd"}, "unknown optimizer 'sgd'; choose from adamw, lamb"),
        ({"train.dtype": "fp16"}, "unknown train.dtype 'fp16'; choose from auto, bf16, fp32"),
        ({"train.parallel": "zero3"}, "unknown train.parallel 'zero3'; choose from ddp, fsdp"),
        ({"model.preset": "bert-huge"}, "unknown preset 'bert-huge'; choose from bert-tiny"),
        ({"train.budget": "two hours"}, "cannot read the duration 'two hours'"),
        ({"train.budget": "1h", "schedule.warmup": "1000"}, "with train.budget give a fraction"),
        ({"train.phases": '[{"fraction": 0.5, "max_seq_length": 64}]'}, "fractions must add up to 1"),
        ({"train.phases": '[{"max_seq_length": 64}]'}, r"\[train.phases\[0\]\] is incomplete"),
        ({"model": "x"}, "override 'model' must name one key of a section"),
    ],
)
def test_bad_keys_and_values_are_errors_naming_them(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(BertForgeError, match=message if "\\" in message else re.escape(message)):
        load_recipe(None, overrides)


def test_unknown_key_in_a_toml_file_lists_the_valid_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nbatch = 8\n")
    with pytest.raises(
        BertForgeError, match=r"unknown recipe key 'train.batch' \(did you mean 'batch_size'\?\)"
    ):
        load_recipe(recipe)
    recipe.write_text("[train]\nbatch_size = 'eight'\n")
    with pytest.raises(BertForgeError, match="recipe key 'train.batch_size' must be an integer, got 'eight'"):
        load_recipe(recipe)


def test_missing_or_malformed_recipe_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="recipe .*nope.toml not found"):
        load_recipe(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(BertForgeError, match="is not valid TOML"):
        load_recipe(bad)


def test_parse_overrides_accepts_both_spellings_and_rejects_strays() -> None:
    assert parse_overrides(["--a.b", "1", "--c.d=x=y", "--e-f.g-h", "2"]) == {
        "a.b": "1",
        "c.d": "x=y",
        "e_f.g_h": "2",
    }
    with pytest.raises(BertForgeError, match="--optim.lr needs a value"):
        parse_overrides(["--optim.lr"])
    with pytest.raises(BertForgeError, match="unexpected argument 'stray'"):
        parse_overrides(["stray"])


def test_resolved_config_toml_round_trips_to_an_equal_config() -> None:
    config = load_recipe(
        None,
        {
            "optim.betas": "0.9,0.98",
            "train.budget": "2h",
            "schedule.warmup": "0.05",
            "data.dataset": 'dir with "quotes" and ü',
            "train.phases": '[{"fraction": 0.9, "max_seq_length": 128}, {"fraction": 0.1, "max_seq_length": 512, "batch_size": 4}]',
        },
    )
    text = dump_toml(config)
    assert config_from_dict(tomllib.loads(text)) == config


@pytest.mark.parametrize(
    ("text", "seconds"), [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("12.5", 12.5)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense_and_zero() -> None:
    for text in ("2x", "h", "1h 2q"):
        with pytest.raises(BertForgeError, match="cannot read the duration"):
            parse_duration(text)
    with pytest.raises(BertForgeError, match="must be positive"):
        parse_duration("0s")
