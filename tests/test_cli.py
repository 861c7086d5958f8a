"""The ``bertforge`` command line through ``main(argv)``: every subcommand's output, one-line user
errors with exit code 2 and no traceback, ``--help``, and the bundled demo end to end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bertforge.demo
from bertforge import BertConfig, BertForMaskedLM, BertForPreTraining, BertModel
from bertforge.cli import main
from bertforge.embed import Embedder
from bertforge.errors import BertForgeError
from bertforge.tokenizer import BertTokenizer

CORPUS = [
    "the cat sat on the mat. the dog sat on the log.",
    "a quick brown fox jumps over the lazy dog near the river bank.",
    "paris is the capital of france. berlin is the capital of germany.",
    "the model reads tokens and writes hidden states.",
    "rivers run to the sea and the sea runs to the sky.",
    "猫坐在垫子上。狗在木头上。",
]
TARGET = "capital"
TEXTS = [
    "the cat sat on the mat.",
    "",
    "paris is the capital of france, berlin is the capital of germany",
    "猫坐在垫子上",
    "dog",
    "zebra xylophone",
    "the model reads tokens and writes hidden states near the river bank.",
]
SUBCOMMANDS = (
    "tokenize",
    "train-tokenizer",
    "info",
    "fill-mask",
    "embed",
    "demo",
    "finetune",
    "evaluate",
    "predict",
    "data",
    "pretrain",
    "export",
    "quantize",
    "prune",
    "serve",
    "viz",
)


# ------------------------------------------------------------------------------------------- fixtures
def tiny_config(tokenizer: BertTokenizer) -> BertConfig:
    return BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> SimpleNamespace:
    """Saved checkpoints, each with its tokenizer: a BertModel, a rigged BertForMaskedLM (TARGET
    always wins) and a BertForPreTraining; plus a tokenizer-only directory and an input file."""
    root = tmp_path_factory.mktemp("cli")
    tokenizer = BertTokenizer.train_from_iterator(CORPUS, vocab_size=167, min_frequency=1)
    config = tiny_config(tokenizer)
    torch.manual_seed(0)
    base = BertModel(config).eval()
    mlm = BertForMaskedLM(config).eval()
    with torch.no_grad():
        mlm.cls.predictions.bias[tokenizer.convert_tokens_to_ids(TARGET)] = 8.0
    pretraining = BertForPreTraining(config).eval()
    dirs = {}
    for name, model in (("base", base), ("mlm", mlm), ("pretraining", pretraining)):
        dirs[name] = root / name
        model.save_pretrained(dirs[name])
        tokenizer.save_pretrained(dirs[name])
    tokenizer.save_pretrained(root / "tok")
    (root / "weights-only").mkdir()
    mlm.save_pretrained(root / "weights-only")
    texts_file = root / "texts.txt"
    texts_file.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return SimpleNamespace(
        root=root,
        tokenizer=tokenizer,
        base_model=base,
        pretraining_model=pretraining,
        tok=root / "tok",
        weights_only=root / "weights-only",
        texts=texts_file,
        missing=root / "does-not-exist",
        **dirs,
    )


def run(capsys, *argv: object) -> tuple[int, str, str]:
    """main(argv) as the console script runs it: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *argv: object) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "Traceback" not in err
    return out


def embedder_output(ckpt, **kwargs) -> np.ndarray:
    return Embedder(ckpt.base_model, ckpt.tokenizer, **kwargs)(TEXTS).numpy()


# ------------------------------------------------------------------------------------------- tokenize
def test_tokenize_table_lists_every_token_with_its_id(capsys, ckpt):
    text = "The cat sat on the mat."
    out = ok(capsys, "tokenize", ckpt.tok, text)
    lines = out.splitlines()
    encoding = ckpt.tokenizer(text)
    tokens = ckpt.tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    assert lines[0].split() == ["token", "id", "type", "offsets"]
    rows = [line.split() for line in lines[1:-1]]
    assert [r[0] for r in rows] == tokens
    assert [int(r[1]) for r in rows] == encoding["input_ids"]
    assert [int(r[2]) for r in rows] == [0] * len(tokens)
    assert lines[-1] == f"{len(tokens)} tokens"


def test_tokenize_json_ids_equal_the_tokenizers(capsys, ckpt):
    text = "Paris is the capital of France, 猫坐在垫子上!"
    result = json.loads(ok(capsys, "tokenize", ckpt.tok, text, "--json"))
    encoding = ckpt.tokenizer(text, return_offsets_mapping=True)
    assert result["input_ids"] == encoding["input_ids"]
    assert result["tokens"] == ckpt.tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    assert result["token_type_ids"] == [0] * len(encoding["input_ids"])
    assert result["offsets"] == [list(o) for o in encoding["offset_mapping"]]
    assert "猫" in result["tokens"]


def test_tokenize_a_pair_gives_type_id_1_to_the_second_segment(capsys, ckpt):
    first, second = "the cat sat", "on the mat near the river"
    result = json.loads(ok(capsys, "tokenize", ckpt.tok, first, second, "--json"))
    encoding = ckpt.tokenizer(first, second)
    assert result["input_ids"] == encoding["input_ids"]
    assert result["token_type_ids"] == encoding["token_type_ids"]
    first_len = len(ckpt.tokenizer(first)["input_ids"])
    second_len = len(ckpt.tokenizer(second)["input_ids"]) - 1  # its tokens and the final [SEP]
    assert result["token_type_ids"] == [0] * first_len + [1] * second_len


def test_tokenize_max_length_truncates(capsys, ckpt):
    result = json.loads(
        ok(capsys, "tokenize", ckpt.tok, "the cat sat on the mat near the river", "--max-length", 5, "--json")
    )
    assert len(result["input_ids"]) == 5
    assert result["tokens"][0] == "[CLS]"
    assert result["tokens"][-1] == "[SEP]"


def test_tokenize_accepts_a_vocab_txt_path_and_a_checkpoint_directory(capsys, ckpt):
    from_vocab = json.loads(ok(capsys, "tokenize", ckpt.tok / "vocab.txt", "the dog", "--json"))
    from_checkpoint = json.loads(ok(capsys, "tokenize", ckpt.mlm, "the dog", "--json"))
    assert from_vocab["input_ids"] == from_checkpoint["input_ids"] == ckpt.tokenizer("the dog")["input_ids"]


# ------------------------------------------------------------------------------------ train-tokenizer
def test_train_tokenizer_writes_four_files_that_load_as_the_same_vocabulary(capsys, tmp_path):
    files = [tmp_path / "a.txt", tmp_path / "b.txt"]
    files[0].write_text("\n".join(CORPUS[:3]) + "\n", encoding="utf-8")
    files[1].write_text("\n".join(CORPUS[3:]) + "\n", encoding="utf-8")
    out_dir = tmp_path / "tokenizer"
    out = ok(capsys, "train-tokenizer", *files, "--out", out_dir, "--vocab-size", 151, "--min-frequency", 1)
    assert "WordPiece vocabulary" in out
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (out_dir / name).is_file(), name
    loaded = BertTokenizer.from_pretrained(out_dir)
    lines = (out_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert loaded.get_vocab() == {token: index for index, token in enumerate(lines)}
    assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert 5 < loaded.vocab_size <= 151
    assert loaded.do_lower_case
    # (WordPiece training breaks ties in no fixed order, so the exact vocabulary is not compared.)
    for line in CORPUS:
        ids = loaded(line)["input_ids"]
        assert loaded.unk_token_id not in ids
        assert loaded.decode(ids, skip_special_tokens=True).replace(" ", "") == line.replace(" ", "")


def test_train_tokenizer_cased_keeps_case(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Paris Paris Paris London London\n" * 3, encoding="utf-8")
    ok(
        capsys,
        "train-tokenizer",
        corpus,
        "--out",
        tmp_path / "cased",
        "--vocab-size",
        60,
        "--min-frequency",
        1,
        "--cased",
    )
    loaded = BertTokenizer.from_pretrained(tmp_path / "cased")
    assert not loaded.do_lower_case
    assert "Paris" in loaded.get_vocab()


# ------------------------------------------------------------------------------------------------ info
def test_info_json_parameter_total_equals_num_parameters(capsys, ckpt):
    info = json.loads(ok(capsys, "info", ckpt.pretraining, "--json"))
    model = ckpt.pretraining_model
    assert info["parameters"]["total"] == model.num_parameters()
    assert info["architectures"] == ["BertForPreTraining"]
    assert (info["layers"], info["hidden_size"], info["attention_heads"], info["intermediate_size"]) == (
        2,
        32,
        4,
        37,
    )
    assert info["vocab_size"] == ckpt.tokenizer.vocab_size
    assert info["max_position_embeddings"] == 64
    assert info["weights_dtype"] == ["float32"]
    groups = info["parameters"]
    assert groups["next-sentence head"] == 32 * 2 + 2
    assert groups["pooler"] == 32 * 32 + 32
    assert groups["encoder"] == 2 * info["per_layer"]
    assert sum(v for k, v in groups.items() if k != "total") == groups["total"]
    assert info["labels"] is None
    assert set(info["tokenizer"]) == {"vocab.txt", "tokenizer.json"}


def test_info_of_a_bare_encoder_counts_no_heads(capsys, ckpt):
    info = json.loads(ok(capsys, "info", ckpt.base, "--json"))
    assert info["parameters"]["total"] == ckpt.base_model.num_parameters()
    assert set(info["parameters"]) == {"embeddings", "encoder", "pooler", "total"}
    assert info["architectures"] == ["BertModel"]


@pytest.mark.parametrize("tie", [True, False], ids=["tied-both-names-on-disk", "untied"])
def test_info_counts_a_tied_tensor_once_and_untied_decoder_parameters_apart(capsys, tmp_path, tie):
    from bertforge import BertConfig

    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, tie_word_embeddings=tie)  # fmt: skip
    model = BertForMaskedLM(config)
    model.save_pretrained(tmp_path)
    # Old .bin checkpoints store a tied tensor under both its names.
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    info = json.loads(ok(capsys, "info", tmp_path, "--json"))
    assert info["parameters"]["total"] == model.num_parameters()


def test_info_table_shows_shape_and_total(capsys, ckpt):
    out = ok(capsys, "info", ckpt.pretraining)
    assert "BertForPreTraining" in out
    assert "2 layers, hidden 32, 4 heads, feed-forward 37" in out
    total_line = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert total_line.split()[-1] == f"{ckpt.pretraining_model.num_parameters():,}"


# ------------------------------------------------------------------------------------------- fill-mask
def test_fill_mask_json_ranks_the_rigged_token_first(capsys, ckpt):
    result = json.loads(
        ok(capsys, "fill-mask", ckpt.mlm, "paris is the [MASK] of france.", "--top-k", 3, "--json")
    )
    assert len(result) == 1
    (candidates,) = result
    assert len(candidates) == 3
    assert set(candidates[0]) == {"token", "token_id", "score", "sequence"}
    assert candidates[0]["token"] == TARGET
    assert candidates[0]["token_id"] == ckpt.tokenizer.convert_tokens_to_ids(TARGET)
    assert candidates[0]["sequence"] == "paris is the capital of france."
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)


def test_fill_mask_table_shows_each_mask_and_candidate(capsys, ckpt):
    out = ok(capsys, "fill-mask", ckpt.mlm, "[MASK] is the [MASK] of france.", "--top-k", 2)
    lines = out.splitlines()
    assert lines[0] == "[MASK] #1"
    assert lines[3] == "[MASK] #2"
    assert len(lines) == 6
    assert lines[1].split()[1] == TARGET
    assert lines[4].split()[1:] == [TARGET, "is", "the", "capital", "of", "france."]


def test_fill_mask_accepts_a_pretraining_checkpoint(capsys, ckpt):
    result = json.loads(ok(capsys, "fill-mask", ckpt.pretraining, "the [MASK] sat", "--json"))
    assert len(result[0]) == 5


def test_fill_mask_takes_the_tokenizer_from_another_directory(capsys, ckpt):
    result = json.loads(
        ok(capsys, "fill-mask", ckpt.weights_only, "the [MASK] sat", "--tokenizer", ckpt.tok, "--json")
    )
    assert result[0][0]["token"] == TARGET


# ----------------------------------------------------------------------------------------------- embed
def test_embed_to_npy_has_one_row_per_line_equal_to_embedder(capsys, ckpt, tmp_path):
    output = tmp_path / "vectors.npy"
    code, out, err = run(capsys, "embed", ckpt.base, "--input", ckpt.texts, "--output", output)
    assert code == 0, err
    assert out == ""
    assert f"wrote {len(TEXTS)} embeddings of size 32" in err
    vectors = np.load(output)
    assert vectors.shape == (len(TEXTS), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, embedder_output(ckpt), atol=1e-6, rtol=0)


def test_embed_to_jsonl_keeps_index_text_and_vector(capsys, ckpt, tmp_path):
    output = tmp_path / "vectors.jsonl"
    ok(capsys, "embed", ckpt.base, "--input", ckpt.texts, "--output", output)
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in rows] == list(range(len(TEXTS)))
    assert [r["text"] for r in rows] == TEXTS
    np.testing.assert_allclose(
        np.array([r["embedding"] for r in rows]), embedder_output(ckpt), atol=1e-6, rtol=0
    )


def test_embed_reads_stdin_and_writes_jsonl_to_stdout(capsys, ckpt, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(TEXTS) + "\n"))
    out = ok(capsys, "embed", ckpt.base)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    np.testing.assert_allclose(
        np.array([r["embedding"] for r in rows]), embedder_output(ckpt), atol=1e-6, rtol=0
    )


def test_embed_pooling_normalize_and_batch_size_options_reach_the_embedder(capsys, ckpt, tmp_path):
    output = tmp_path / "cls.npy"
    ok(capsys, "embed", ckpt.base, "--input", ckpt.texts, "--output", output,
       "--pooling", "cls", "--normalize", "--batch-size", 2, "--max-length", 6)  # fmt: skip
    expected = embedder_output(ckpt, pooling="cls", normalize=True, max_length=6)
    np.testing.assert_allclose(np.load(output), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(np.load(output), axis=1), 1.0, atol=1e-5)


def test_embed_format_flag_wins_over_the_output_suffix(capsys, ckpt, tmp_path):
    output = tmp_path / "vectors.txt"
    ok(capsys, "embed", ckpt.base, "--input", ckpt.texts, "--output", output, "--format", "jsonl")
    assert len(output.read_text(encoding="utf-8").splitlines()) == len(TEXTS)


def test_embed_bfloat16_is_close_to_float32(capsys, ckpt, tmp_path):
    output = tmp_path / "bf16.npy"
    ok(capsys, "embed", ckpt.base, "--input", ckpt.texts, "--output", output, "--dtype", "bfloat16")
    bf16 = torch.from_numpy(np.load(output))
    fp32 = torch.from_numpy(embedder_output(ckpt))
    assert bf16.dtype == torch.float32
    assert not torch.equal(bf16, fp32)
    assert F.cosine_similarity(bf16, fp32, dim=-1).min().item() >= 0.99


# ------------------------------------------------------------------------------------------------ help
@pytest.mark.parametrize("command", [[], *([c] for c in SUBCOMMANDS)])
def test_help_exits_0_and_prints_usage(capsys, command):
    code, out, err = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("usage: bertforge")
    assert err == ""


def test_version_prints_the_package_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"bertforge {bertforge.__version__}"


@pytest.mark.parametrize("module", ["bertforge.cli", "bertforge"])
def test_python_dash_m_help_lists_every_subcommand(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for command in SUBCOMMANDS:
        assert command in result.stdout


# ------------------------------------------------------------------------------------------ user errors
USER_ERRORS = {
    "missing checkpoint for info": ["info", "{missing}"],
    "missing checkpoint for fill-mask": ["fill-mask", "{missing}", "a [MASK]", "--tokenizer", "{tok}"],
    "missing checkpoint for embed": ["embed", "{missing}", "--input", "{texts}"],
    "missing tokenizer for tokenize": ["tokenize", "{missing}", "text"],
    "tokenizer dir without config for info": ["info", "{tok}"],
    "tokenizer dir without weights for fill-mask": ["fill-mask", "{tok}", "a [MASK]"],
    "missing input file for embed": ["embed", "{base}", "--input", "{missing}"],
    "missing input file for train-tokenizer": ["train-tokenizer", "{missing}", "--out", "{root}/new-tok"],
    "top-k 0": ["fill-mask", "{mlm}", "a [MASK]", "--top-k", "0"],
    "top-k not a number": ["fill-mask", "{mlm}", "a [MASK]", "--top-k", "five"],
    "text without mask": ["fill-mask", "{mlm}", "no mask in this text"],
    "checkpoint without masked-LM head": ["fill-mask", "{base}", "the [MASK] sat"],
    "npy without output": ["embed", "{base}", "--input", "{texts}", "--format", "npy"],
    "embed max-length beyond positions": ["embed", "{base}", "--input", "{texts}", "--max-length", "65"],
    "embed input that is not utf-8": ["embed", "{base}", "--input", "{base}/model.safetensors"],
    "bad pooling choice": ["embed", "{base}", "--input", "{texts}", "--pooling", "sum"],
    "unknown subcommand": ["frobnicate"],
    "no subcommand": [],
}


@pytest.mark.parametrize("argv", list(USER_ERRORS.values()), ids=list(USER_ERRORS))
def test_user_error_is_one_line_on_stderr_with_exit_code_2(capsys, ckpt, argv):
    paths = {k: str(v) for k, v in vars(ckpt).items() if isinstance(v, Path)}
    code, out, err = run(capsys, *(a.format(**paths) for a in argv))
    assert code == 2
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bertforge")
    assert "error" in lines[0]


def test_checkpoint_without_masked_lm_head_names_the_missing_head(capsys, ckpt):
    code, _, err = run(capsys, "fill-mask", ckpt.base, "the [MASK] sat")
    assert code == 2
    assert "masked-LM head" in err


def test_npy_without_output_writes_nothing_to_stdout(capsys, ckpt):
    code, out, _ = run(capsys, "embed", ckpt.base, "--input", ckpt.texts, "--format", "npy")
    assert code == 2
    assert out == ""


def test_user_error_in_a_real_process_is_one_line_without_traceback(ckpt):
    result = subprocess.run(
        [sys.executable, "-m", "bertforge.cli", "info", str(ckpt.missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("bertforge: error:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------------ demo
def test_demo_runs_end_to_end_and_its_model_loads_in_transformers(capsys, tmp_path):
    transformers = pytest.importorskip("transformers")
    # The real demo trains bert-mini for 3 minutes; a few steps of bert-tiny run the same pipeline.
    figures = bertforge.demo.run_demo(
        tmp_path,
        max_steps=12,
        vocab_size=3000,
        preset="bert-tiny",
        batch_size=8,
        progress=False,
        payoff_seeds=(0,),
        payoff_train_per_book=4,
        payoff_test_per_book=3,
        payoff_epochs=1,
    )
    out = capsys.readouterr().out
    result = figures["result"]
    model_dir = tmp_path / "pretrain" / "model"
    assert result.model_dir == model_dir and result.steps == 12
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        assert (model_dir / name).is_file(), name
    assert (tmp_path / "pretrain" / "metrics.png").is_file()
    assert (tmp_path / "dataset" / "manifest.json").is_file()
    assert figures["accuracy"] == result.eval["eval_mlm_accuracy"]
    assert 0.0 < figures["baseline"] < 0.2  # the most frequent token is a few percent of the text
    assert "baseline: always" in out and "悟空道：我有七十二般[MASK]化。" in out
    assert str(model_dir) in out
    # Step 6: the pretrained model and its random-init twin, fine-tuned on sentences from the last
    # tenth of each book, which pretraining never read.
    payoff = figures["payoff"]
    assert "6. does the pretraining pay off?" in out and "random init  accuracy" in out
    assert payoff.metric == "accuracy" and len(payoff.pretrained) == len(payoff.random_init) == 1
    pretrained_text = " ".join(
        " ".join(p.read_text(encoding="utf-8").split()) for p in (tmp_path / "corpus" / "pretrain").iterdir()
    )
    test_rows = (tmp_path / "task" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(test_rows) == 7 * 3
    for row in test_rows:
        label, text = row.split("\t")
        assert text not in pretrained_text, (label, text)

    ours = BertForPreTraining.from_pretrained(model_dir).eval()
    theirs = transformers.BertForPreTraining.from_pretrained(model_dir).eval()
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    batch = tokenizer(
        ["Alice was beginning to get very tired.", "悟空道：我有七十二般变化。"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        expected = theirs(**batch)
        actual = ours(**batch)
    torch.testing.assert_close(actual.prediction_logits, expected.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        actual.seq_relationship_logits, expected.seq_relationship_logits, atol=1e-5, rtol=0
    )
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    assert (
        hf_tokenizer("Down the rabbit hole, 花果山")["input_ids"]
        == tokenizer("Down the rabbit hole, 花果山")["input_ids"]
    )


def test_demo_takes_steps_or_a_budget_not_both(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--steps", "10", "--budget", "3m", "--out", tmp_path / "demo")
    assert code == 2 and "not allowed with argument" in err and len(err.splitlines()) == 1
    with pytest.raises(BertForgeError, match="a step count .10. or a budget .3m., not both"):
        bertforge.demo.run_demo(tmp_path / "demo", max_steps=10, budget="3m")
    assert not (tmp_path / "demo").exists()


def test_demo_rejects_a_bad_budget_before_doing_any_work(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--budget", "3 minutes", "--out", tmp_path / "demo")
    assert code == 2
    assert err.startswith("bertforge: error: cannot read the duration") and len(err.splitlines()) == 1
    assert not (tmp_path / "demo").exists()


def test_pretrain_on_a_missing_dataset_says_how_to_build_one(capsys, tmp_path):
    code, _, err = run(capsys, "pretrain", "--data.dataset", tmp_path / "nope", "--out", tmp_path / "run")
    assert code == 2
    assert "does not exist; build one with `bertforge data build" in err and len(err.splitlines()) == 1
