"""A catalogue of bad input, run through the real command line: one table row per mistake.

Each row is a command a user might type with one thing wrong in it (a corpus file, a task file, a
recipe or override, a checkpoint, a tokenizer directory, a flag) and the fragments its error line
must hold: the file, line or value at fault, and the fix. For every row the command must exit with
code 2, print exactly one line on stderr and no traceback, and leave its output path as it was
(absent, or unchanged when it existed), with nothing half-written beside it. Warnings logged before
the error count as lines, as they would in a terminal. Two rows also run in a real process.

Server requests are not in the table: a bad request is a 4xx JSON answer, not an exit code, and
test_serve.py covers them; the server's start-up errors are rows here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from _pretrain_helpers import make_dataset
from _task_data import VOCAB, single_thread, write_checkpoint, write_sentiment  # noqa: F401
from bertforge.auto import model_class_for
from bertforge.cli import main
from bertforge.tasks.registry import get_task
from bertforge.tokenizer import BertTokenizer


@dataclass(frozen=True)
class Case:
    """``argv``: the command after ``bertforge``, split like a shell would; ``expect``: fragments of the
    error line; ``out``: the path the command would write, "" when it writes nothing. All three may
    hold {placeholders}: {files} (the bad files), {ckpt} (a tiny masked-LM checkpoint), {classifier}
    (a tiny fine-tuned classifier), {tok} and {data} (a pretraining tokenizer and dataset), {rows}
    and {big} (the checkpoint's embedding rows, the oversized vocabulary), {out} (a fresh path)."""

    argv: str
    expect: tuple[str, ...]
    out: str = "{out}"


FINETUNE = "finetune --model {ckpt} --out {out} --task"
PRETRAIN = "pretrain --data.dataset {data} --out {out} --model.preset bert-tiny --data.max_seq_length 32"

CASES: dict[str, Case] = {
    # ------------------------------------------------------ corpus files: data build, train-tokenizer
    "corpus-missing": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/nope.txt",
        ("corpus path {files}/nope.txt does not exist", "pass text files, directories or globs"),
    ),
    "corpus-empty": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/empty.txt",
        ("the corpus ({files}/empty.txt) holds no text",),
    ),
    "corpus-binary": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/binary.txt",
        ("{files}/binary.txt looks like a binary file", "remove it from the corpus"),
    ),
    "corpus-latin1-strict": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/latin1.txt --errors strict",
        ("{files}/latin1.txt at byte 3: not UTF-8", "re-encode the file as UTF-8", "--errors replace"),
    ),
    "corpus-utf16": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/utf16.txt",
        ("{files}/utf16.txt is UTF-16 text", "convert it to UTF-8"),
    ),
    "corpus-empty-directory": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/emptydir",
        ("corpus directory {files}/emptydir holds no files",),
    ),
    "corpus-unmatched-glob": Case(
        "data build --tokenizer {tok} --out {out} --corpus '{files}/*.nomatch'",
        ("no files match the corpus pattern '{files}/*.nomatch'",),
    ),
    "corpus-jsonl-broken-line": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/corpus.jsonl",
        ("{files}/corpus.jsonl:2: not valid JSON", "fix the line or remove it"),
    ),
    "corpus-broken-gzip": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/broken.txt.gz",
        ("{files}/broken.txt.gz is not a valid gzip file", "drop the .gz"),
    ),
    "corpus-tokenizer-without-vocabulary": Case(
        "data build --tokenizer {files}/tok-empty --out {out} --corpus {files}/corpus.txt",
        ("cannot tell which tokenizer {files}/tok-empty holds (found: nothing)", "vocab.txt"),
    ),
    "dataset-already-there": Case(
        "data build --tokenizer {tok} --out {data} --corpus {files}/corpus.txt",
        ("{data} already holds a dataset", "--overwrite"),
        out="{data}",
    ),
    "dataset-eval-fraction": Case(
        "data build --tokenizer {tok} --out {out} --corpus {files}/corpus.txt --eval-fraction 2",
        ("eval_fraction must be in [0, 1), got 2.0",),
    ),
    "vocab-missing-file": Case(
        "train-tokenizer {files}/nope.txt --out {out}", ("training file {files}/nope.txt not found",)
    ),
    "vocab-whitespace-only": Case(
        "train-tokenizer {files}/whitespace.txt --out {out}",
        ("the training files ({files}/whitespace.txt) hold no text", "non-empty"),
    ),
    "vocab-binary-file": Case(
        "train-tokenizer {files}/binary.txt --out {out}",
        ("training file {files}/binary.txt is not UTF-8 text", "convert it to UTF-8"),
    ),
    "vocab-latin1-file-bpe": Case(
        "train-tokenizer {files}/corpus.txt {files}/latin1.txt --type bpe --out {out}",
        ("training file {files}/latin1.txt is not UTF-8 text",),
    ),
    "vocab-directory-unigram": Case(
        "train-tokenizer {files}/emptydir --type unigram --out {out}",
        ("training file {files}/emptydir is a directory", "{files}/emptydir/*.txt"),
    ),
    "vocab-broken-gzip": Case(
        "train-tokenizer {files}/broken.txt.gz --out {out}",
        ("training file {files}/broken.txt.gz is not a valid gzip file",),
    ),
    "vocab-size-too-small": Case(
        "train-tokenizer {files}/corpus.txt --vocab-size 3 --out {out}", ("vocab_size=3 is too small",)
    ),
    "vocab-out-is-a-file": Case(
        "train-tokenizer {files}/corpus.txt --min-frequency 1 --vocab-size 60 --out {files}/texts.txt",
        ("cannot save the tokenizer to {files}/texts.txt: it is a file", "pass a directory"),
        out="{files}/texts.txt",
    ),
    # ------------------------------------------------------------ task files: finetune, evaluate, predict
    "task-missing-file": Case(
        FINETUNE + " classification --train {files}/nope.tsv",
        ("{files}/nope.tsv is not a file", "classification data file"),
    ),
    "task-empty-file": Case(
        FINETUNE + " classification --train {files}/empty.tsv", ("{files}/empty.tsv is empty",)
    ),
    "task-header-only": Case(
        FINETUNE + " classification --train {files}/header-only.tsv",
        ("{files}/header-only.tsv has a header (sentence, label) but no rows",),
    ),
    "task-not-utf8": Case(
        FINETUNE + " classification --train {files}/latin1.tsv",
        ("task file {files}/latin1.tsv is not UTF-8 text", "at byte 18", "convert it to UTF-8"),
    ),
    "task-short-row": Case(
        FINETUNE + " classification --train {files}/short-row.tsv",
        ("{files}/short-row.tsv:3: 1 fields, expected 2", "pass --on-error skip"),
    ),
    "task-unknown-text-column": Case(
        FINETUNE + " classification --train {files}/train.tsv --text-column review",
        ("--text-column 'review' is not in {files}/train.tsv", "its columns: 'sentence', 'label'"),
    ),
    "task-label-column-out-of-range": Case(
        FINETUNE + " classification --train {files}/train.tsv --label-column 9",
        ("--label-column 9 is out of range for {files}/train.tsv", "2 columns"),
    ),
    "task-headerless-three-columns": Case(
        FINETUNE + " classification --train {files}/headerless.tsv",
        ("{files}/headerless.tsv has no header row", "pass --text-column"),
    ),
    "task-label-column-not-guessed": Case(
        FINETUNE + " classification --train {files}/no-label.tsv",
        ("{files}/no-label.tsv:2: example has no gold label", "--label-column"),
    ),
    "task-single-label": Case(
        FINETUNE + " classification --train {files}/one-label.tsv",
        ("{files}/one-label.tsv has the label '1'", "at least two labels"),
    ),
    "task-dev-label-unseen": Case(
        FINETUNE + " classification --train {files}/train.tsv --dev {files}/dev-unknown-label.tsv",
        ("{files}/dev-unknown-label.tsv:3: label '7' does not occur in the training data",),
    ),
    "task-regression-nan": Case(
        FINETUNE + " regression --train {files}/nan.tsv",
        ("{files}/nan.tsv:3: regression label 'nan' is not a finite number", "--on-error skip"),
    ),
    "task-regression-word": Case(
        FINETUNE + " regression --train {files}/words.tsv",
        ("{files}/words.tsv:3: regression label 'high' is not a number",),
    ),
    "task-jsonl-broken-line": Case(
        FINETUNE + " classification --train {files}/task.jsonl",
        ("{files}/task.jsonl:2: invalid JSON", "pass --on-error skip"),
    ),
    "task-jsonl-missing-key": Case(
        FINETUNE + " classification --train {files}/missing-key.jsonl",
        ("{files}/missing-key.jsonl:2: no key 'text'", "its keys: 'sentence', 'label'"),
    ),
    "conll-missing-column": Case(
        FINETUNE + " ner --train {files}/bad.conll",
        ("{files}/bad.conll:3: 1 columns, the file's first token line has 4", "--on-error skip"),
    ),
    "conll-unknown-tag": Case(
        FINETUNE + " ner --train {files}/bad-tag.conll", ("{files}/bad-tag.conll:1: tag 'X-PER'",)
    ),
    "cluener-span-past-the-text": Case(
        FINETUNE + " ner --train {files}/span.json",
        ("{files}/span.json:1: PER span [0, 9] of 'john' is outside the text's 4 characters",),
    ),
    "squad-not-json": Case(
        FINETUNE + " qa --train {files}/not-json.json", ("{files}/not-json.json:1: invalid JSON",)
    ),
    "squad-without-data": Case(
        FINETUNE + " qa --train {files}/no-data.json",
        ("{files}/no-data.json is not SQuAD JSON", "'version'", '{{"data":'),
    ),
    "squad-answer-off-context": Case(
        FINETUNE + " qa --train {files}/mismatch.json",
        ("{files}/mismatch.json:1: question 'q1': answer 'zz' does not match the context",),
    ),
    "swag-label-out-of-range": Case(
        FINETUNE + " multiple-choice --train {files}/swag-label.csv",
        ("{files}/swag-label.csv:2: label '5' is not an ending index 0..1",),
    ),
    "swag-without-endings": Case(
        FINETUNE + " multiple-choice --train {files}/swag-no-endings.csv",
        ("{files}/swag-no-endings.csv is not SWAG-style multiple choice", "ending0"),
    ),
    "evaluate-unlabelled-file": Case(
        "evaluate {classifier} {files}/unlabelled.tsv --output {out}",
        ("{files}/unlabelled.tsv:2: example has no gold label", "evaluate needs a labelled file"),
    ),
    "evaluate-unknown-label": Case(
        "evaluate {classifier} {files}/dev-unknown-label.tsv --output {out}",
        ("{files}/dev-unknown-label.tsv:3: label '7' is not one of the model's labels (0, 1)",),
    ),
    "evaluate-checkpoint-without-task": Case(
        "evaluate {ckpt} {files}/train.tsv --output {out}", ("cannot tell the task of {ckpt}", "pass --task")
    ),
    "predict-unknown-column": Case(
        "predict {classifier} {files}/train.tsv --text-column review --output {out}",
        ("--text-column 'review' is not in {files}/train.tsv",),
    ),
    # ------------------------------------------------------------------- recipes and overrides: pretrain
    "recipe-missing": Case(
        PRETRAIN + " --config {files}/nope.toml", ("recipe {files}/nope.toml not found", "recipes/")
    ),
    "recipe-not-toml": Case(
        PRETRAIN + " --config {files}/bad.toml", ("recipe {files}/bad.toml is not valid TOML", "line 1")
    ),
    "recipe-not-utf8": Case(
        PRETRAIN + " --config {files}/latin1.toml",
        ("recipe {files}/latin1.toml is not UTF-8 text", "convert it to UTF-8"),
    ),
    "recipe-is-a-directory": Case(PRETRAIN + " --config {files}", ("recipe {files} is a directory",)),
    "recipe-misspelt-section": Case(
        PRETRAIN + " --config {files}/misspelt.toml", ("unknown recipe key 'trian' (did you mean 'train'?)",)
    ),
    "recipe-unknown-key": Case(
        PRETRAIN + " --config {files}/unknown-key.toml",
        ("unknown recipe key 'optim.learning_rate'", "valid keys in [optim]: name, lr"),
    ),
    "recipe-wrong-type": Case(
        PRETRAIN + " --config {files}/wrong-type.toml",
        ("recipe key 'train.batch_size' must be an integer, got 'four'",),
    ),
    "recipe-bad-value": Case(
        PRETRAIN + " --config {files}/bad-value.toml", ("optim.lr must be > 0, got -1.0",)
    ),
    "recipe-unknown-preset": Case(
        "pretrain --data.dataset {data} --out {out} --config {files}/bad-preset.toml",
        ("unknown preset 'bert-tiniest'; choose from bert-tiny",),
    ),
    "override-unknown-key": Case(
        PRETRAIN + " --optim.learning_rate 1e-4", ("unknown recipe key 'optim.learning_rate'", "lr")
    ),
    "override-not-a-number": Case(
        PRETRAIN + " --optim.lr fast", ("recipe key 'optim.lr' must be a number, got 'fast'",)
    ),
    "override-without-value": Case(PRETRAIN + " --optim.lr", ("--optim.lr needs a value",)),
    "override-stray-word": Case(PRETRAIN + " stray", ("unexpected argument 'stray'", "--section.key VALUE")),
    "override-heads-do-not-divide": Case(
        PRETRAIN + " --model.hidden_size 32 --model.num_attention_heads 5",
        ("hidden_size (32) must be divisible by num_attention_heads (5)", "try num_attention_heads=4"),
    ),
    "override-budget-unreadable": Case(
        PRETRAIN + " --budget '3 minutes'", ("cannot read the duration '3 minutes'", "90m")
    ),
    "override-longer-than-positions": Case(
        PRETRAIN + " --data.max_seq_length 4096",
        ("max_seq_length 4096 exceeds the model's max_position_embeddings (512)", "--model.max_position"),
    ),
    "pretrain-missing-dataset": Case(
        "pretrain --data.dataset {files}/nodata --out {out}",
        ("dataset directory {files}/nodata does not exist", "bertforge data build"),
    ),
    "pretrain-not-a-dataset": Case(
        "pretrain --data.dataset {files} --out {out}", ("{files} is not a bertforge dataset",)
    ),
    "pretrain-init-from-other-vocabulary": Case(
        PRETRAIN + " --model.init_from {ckpt}",
        ("cannot start from {ckpt}: dataset {data} was built with a different vocabulary",),
    ),
    "pretrain-similar-words-not-utf8": Case(
        PRETRAIN
        + " --data.masking whole-word --data.correction true --data.similar_words {files}/latin1.txt",
        ("similar-word file {files}/latin1.txt is not UTF-8 text", "at byte 3"),
    ),
    "pretrain-entity-lexicon-missing": Case(
        PRETRAIN + " --data.masking entity --data.entity_lexicon {files}/nope.txt",
        ("entity lexicon {files}/nope.txt not found", "--data.entity_lexicon"),
    ),
    "pretrain-other-vocabulary": Case(
        PRETRAIN + " --data.tokenizer {ckpt}", ("dataset {data} was built with a different vocabulary",)
    ),
    # ------------------------------------------------------------------------------------- checkpoints
    "checkpoint-truncated-weights": Case(
        "info {files}/ckpt-truncated",
        ("cannot read weights file {files}/ckpt-truncated/model.safetensors", "corrupt"),
        out="",
    ),
    "checkpoint-truncated-weights-finetune": Case(
        "finetune --model {files}/ckpt-truncated --out {out} --task classification --train {files}/train.tsv",
        ("cannot read weights file {files}/ckpt-truncated/model.safetensors",),
    ),
    "checkpoint-without-config": Case(
        "embed {files}/ckpt-no-config --input {files}/texts.txt --output {out}",
        ("config file {files}/ckpt-no-config/config.json not found",),
    ),
    "checkpoint-without-weights": Case(
        "info {files}/ckpt-no-weights",
        ("no weights in {files}/ckpt-no-weights", "model.safetensors"),
        out="",
    ),
    "checkpoint-without-vocabulary": Case(
        "finetune --model {files}/ckpt-no-vocab --out {out} --task classification --train {files}/train.tsv",
        ("no vocab.txt or tokenizer.json in {files}/ckpt-no-vocab",),
    ),
    "checkpoint-unsupported-family": Case(
        "finetune --model {files}/ckpt-gpt2 --out {out} --task classification --train {files}/train.tsv",
        ("model_type 'gpt2' is not supported; bertforge supports bert",),
    ),
    "checkpoint-other-family-than-its-weights": Case(
        "finetune --model {files}/ckpt-roberta --out {out} --task classification --train {files}/train.tsv",
        ("{files}/ckpt-roberta", "named 'bert.*', not 'roberta.*'", "model_type 'roberta'"),
    ),
    "checkpoint-config-vocab-size-mismatch": Case(
        "embed {files}/ckpt-vocab-size --input {files}/texts.txt --output {out}",
        ("shape mismatch for embeddings.word_embeddings.weight", "has ({rows}, 32)", "expects (80, 32)"),
    ),
    "checkpoint-tokenizer-larger-than-embeddings": Case(
        "fill-mask {files}/ckpt-big-vocab 'the [MASK]'",
        ("the tokenizer in {files}/ckpt-big-vocab has {big} tokens but the model has {rows} embedding rows",),
        out="",
    ),
    "checkpoint-tokenizer-larger-than-embeddings-finetune": Case(
        FINETUNE + " classification --train {files}/train.tsv --tokenizer {files}/ckpt-big-vocab",
        ("the tokenizer in {files}/ckpt-big-vocab has {big} tokens",),
    ),
    "checkpoint-config-not-json": Case(
        "info {files}/ckpt-bad-json", ("{files}/ckpt-bad-json/config.json is not valid JSON",), out=""
    ),
    "checkpoint-config-impossible": Case(
        "info {files}/ckpt-heads",
        (
            "{files}/ckpt-heads/config.json: hidden_size (32) must be divisible by num_attention_heads (5)",
            "try num_attention_heads=4",
        ),
        out="",
    ),
    # ----------------------------------------------------------------------------- tokenizer directories
    "tokenizer-missing": Case(
        "tokenize {files}/nope hello", ("tokenizer path {files}/nope does not exist",), out=""
    ),
    "tokenizer-empty-directory": Case(
        "tokenize {files}/tok-empty hello",
        ("cannot tell which tokenizer {files}/tok-empty holds (found: nothing)", "vocab.txt"),
        out="",
    ),
    "tokenizer-merges-without-vocab": Case(
        "tokenize {files}/tok-merges hello", ("{files}/tok-merges holds (found: merges.txt)",), out=""
    ),
    "tokenizer-broken-spiece": Case(
        "tokenize {files}/tok-spiece hello",
        ("cannot read {files}/tok-spiece/spiece.model as a SentencePiece model",),
        out="",
    ),
    "tokenizer-broken-tokenizer-json": Case(
        "tokenize {files}/tok-json hello", ("cannot read {files}/tok-json/tokenizer.json",), out=""
    ),
    "tokenizer-unknown-class": Case(
        "tokenize {files}/tok-class hello",
        ("{files}/tok-class/tokenizer_config.json names tokenizer_class='GPT2Tokenizer'",),
        out="",
    ),
    "tokenizer-vocab-without-unk": Case(
        "tokenize {files}/tok-no-unk hello",
        ("tokenizer {files}/tok-no-unk: special token unk_token='[UNK]' is not in the vocabulary",),
        out="",
    ),
    "tokenizer-vocab-not-utf8": Case(
        "tokenize {files}/tok-latin1 hello",
        ("vocabulary file {files}/tok-latin1/vocab.txt is not UTF-8 text",),
        out="",
    ),
    # --------------------------------------------------------------------------------------- CLI flags
    "flag-lr-negative": Case(
        FINETUNE + " classification --train {files}/train.tsv --lr -1", ("--lr -1.0 must be positive",)
    ),
    "flag-epochs-zero": Case(
        FINETUNE + " classification --train {files}/train.tsv --epochs 0", ("--epochs 0.0 must be positive",)
    ),
    "flag-batch-size-zero": Case(
        FINETUNE + " classification --train {files}/train.tsv --batch-size 0",
        ("argument --batch-size: expected a positive integer, got 0",),
    ),
    "flag-task-unknown": Case(
        FINETUNE + " summarize --train {files}/train.tsv",
        ("argument --task: invalid choice: 'summarize'", "classification"),
    ),
    "flag-device-unknown": Case(
        FINETUNE + " classification --train {files}/train.tsv --device tpu",
        ("--device tpu is not a torch device", "pass cpu"),
    ),
    "flag-device-gpu-absent": Case(  # no GPU here, or not 100 of them
        FINETUNE + " classification --train {files}/train.tsv --device cuda:99",
        ("--device cuda:99:", "pass --device c"),
    ),
    "flag-max-seq-length-beyond-positions": Case(
        FINETUNE + " classification --train {files}/train.tsv --max-seq-length 100000",
        ("--max-seq-length 100000 is longer than the 64 positions of {ckpt}", "--max-seq-length 64 or less"),
    ),
    "flag-model-missing": Case(
        "finetune --model {files}/nomodel --out {out} --task classification --train {files}/train.tsv",
        ("--model {files}/nomodel does not exist", "config.json"),
    ),
    "flag-model-is-a-file": Case(
        "finetune --model {files}/train.tsv --out {out} --task classification --train {files}/train.tsv",
        ("--model {files}/train.tsv is a file, not a checkpoint directory",),
    ),
    "flag-seeds-not-numbers": Case(
        FINETUNE + " classification --train {files}/train.tsv --seeds a,b",
        ("argument --seeds", "'a' is not an integer"),
    ),
    "flag-seed-and-seeds": Case(
        FINETUNE + " classification --train {files}/train.tsv --dev {files}/train.tsv --seed 1 --seeds 1,2",
        ("pass --seed or --seeds, not both",),
    ),
    "flag-out-is-a-file": Case(
        "finetune --model {ckpt} --out {files}/texts.txt --task classification --train {files}/train.tsv",
        ("--out {files}/texts.txt is a file", "pass a directory"),
        out="{files}/texts.txt",
    ),
    "embed-npy-without-output": Case(
        "embed {ckpt} --input {files}/texts.txt --format npy", ("--format npy needs --output",), out=""
    ),
    "embed-output-is-a-directory": Case(
        "embed {ckpt} --input {files}/texts.txt --output {files}/emptydir",
        ("argument --output: {files}/emptydir is a directory; pass a file path",),
        out="{files}/emptydir",
    ),
    "embed-input-not-utf8": Case(
        "embed {ckpt} --input {files}/latin1.txt --output {out}",
        ("input file {files}/latin1.txt is not UTF-8 text (invalid continuation byte at byte 3)",),
    ),
    "embed-input-is-a-directory": Case(
        "embed {ckpt} --input {files}/emptydir --output {out}",
        ("input file {files}/emptydir is a directory",),
    ),
    "export-unknown-head": Case(
        "export {ckpt} --head decoder --out {out}", ("unknown head 'decoder'; choose from base",)
    ),
    "export-opset-out-of-range": Case(
        "export {ckpt} --opset 99 --out {out}", ("--opset 99 is not supported", "14 to 23")
    ),
    "fill-mask-without-mask": Case(
        "fill-mask {ckpt} 'no mask here'", ("text has no [MASK] token", "Paris is the [MASK]"), out=""
    ),
    "serve-missing-checkpoint": Case(
        "serve {files}/nope", ("{files}/nope is not a checkpoint directory (no config.json)",), out=""
    ),
    "serve-device-unknown": Case(
        "serve {ckpt} --device tpu", ("--device tpu is not a torch device",), out=""
    ),
    "demo-budget-unreadable": Case(
        "demo --budget '3 minutes' --out {out}", ("cannot read the duration '3 minutes'",)
    ),
}


# ------------------------------------------------------------------------------------------ fixtures
def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _bad_files(files: Path) -> None:
    """Everything the table reads, each with one thing wrong in it (or right, as a baseline)."""
    squad = {"data": [{"paragraphs": [{"context": "abc", "qas": [
        {"id": "q1", "question": "x ?", "answers": [{"text": "zz", "answer_start": 50}]}]}]}]}  # fmt: skip
    contents: dict[str, str | bytes] = {
        # corpus and vocabulary files
        "corpus.txt": "the cat sat on the mat. the dog sat on the log.\n\nparis is a city. so is rome.\n" * 3,
        "texts.txt": "the movie was good\nbad plot\n",
        "empty.txt": "",
        "whitespace.txt": "\n  \n\t\n",
        "binary.txt": bytes(range(256)) * 8,
        "latin1.txt": "caf\xe9 au lait.\n".encode("latin-1"),
        "utf16.txt": "a text in UTF-16.\n".encode("utf-16"),
        "corpus.jsonl": '{"text": "one document."}\n{"text": \n',
        "broken.txt.gz": b"not gzip at all",
        # task files
        "empty.tsv": "",
        "header-only.tsv": "sentence\tlabel\n",
        "latin1.tsv": "sentence\tlabel\ncaf\xe9\t1\nbad\t0\n".encode("latin-1"),
        "short-row.tsv": "sentence\tlabel\ngood film\t1\nbad film\n",
        "headerless.tsv": "a\tb\tc\nd\te\tf\n",
        "no-label.tsv": "sentence\tstars\ngood film\t1\nbad film\t0\n",
        "one-label.tsv": "sentence\tlabel\ngood film\t1\na good plot\t1\n",
        "dev-unknown-label.tsv": "sentence\tlabel\ngood\t1\nbad\t7\n",
        "unlabelled.tsv": "sentence\ngood film\nbad film\n",
        "nan.tsv": "sentence\tscore\ngood\t4.5\nbad\tnan\n",
        "words.tsv": "sentence\tscore\ngood\t4.5\nbad\thigh\n",
        "task.jsonl": '{"text": "good", "label": 1}\n{"text": "bad", "label": \n',
        "missing-key.jsonl": '{"text": "good", "label": 1}\n{"sentence": "bad", "label": 0}\n',
        "bad.conll": "john NN O I-PER\nsmith NN O I-PER\nweird\n\nparis NN O I-LOC\n",
        "bad-tag.conll": "john NN O X-PER\n\nparis NN O I-LOC\n",
        "span.json": '{"text": "john", "label": {"PER": {"john": [[0, 9]]}}}\n',
        "not-json.json": "{not json",
        "no-data.json": json.dumps({"version": "1.1", "articles": []}, indent=2),
        "mismatch.json": json.dumps(squad),
        "swag-label.csv": "sent1,sent2,ending0,ending1,label\na cat,it,sat,ran,5\n",
        "swag-no-endings.csv": "sent1,sent2,label\na cat,it,1\n",
        # recipes
        "bad.toml": "[train\nbatch_size = 4\n",
        "latin1.toml": "# caf\xe9\n[train]\n".encode("latin-1"),
        "misspelt.toml": "[trian]\nbatch_size = 4\n",
        "unknown-key.toml": "[optim]\nlearning_rate = 1e-4\n",
        "wrong-type.toml": '[train]\nbatch_size = "four"\n',
        "bad-value.toml": "[optim]\nlr = -1.0\n",
        "bad-preset.toml": '[model]\npreset = "bert-tiniest"\n',
        # tokenizer directories
        "tok-merges/merges.txt": "#version: 0.2\na b\n",
        "tok-spiece/spiece.model": b"garbage",
        "tok-json/tokenizer.json": "{not json",
        "tok-class/tokenizer_config.json": '{"tokenizer_class": "GPT2Tokenizer"}',
        "tok-class/vocab.txt": "[PAD]\n[UNK]\n",
        "tok-no-unk/vocab.txt": "a\nb\n",
        "tok-latin1/vocab.txt": b"[PAD]\n[UNK]\ncaf\xe9\n",
    }
    for name, content in contents.items():
        _write(files / name, content)
    (files / "emptydir").mkdir()
    (files / "tok-empty").mkdir()
    write_sentiment(files / "train.tsv", 16, seed=1)


def _broken_checkpoints(files: Path, ckpt: Path) -> None:
    """Copies of the tiny checkpoint, each broken in one way."""

    def variant(name: str, config: dict | None = None, drop: tuple[str, ...] = ()) -> Path:
        target = files / f"ckpt-{name}"
        shutil.copytree(ckpt, target)
        for file_name in drop:
            (target / file_name).unlink()
        if config is not None:
            data = json.loads((target / "config.json").read_text(encoding="utf-8"))
            (target / "config.json").write_text(json.dumps({**data, **config}), encoding="utf-8")
        return target

    weights = (variant("truncated") / "model.safetensors").read_bytes()
    (files / "ckpt-truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    variant("no-config", drop=("config.json",))
    variant("no-weights", drop=("model.safetensors",))
    variant("no-vocab", drop=("vocab.txt", "tokenizer.json"))
    variant("gpt2", {"model_type": "gpt2"})
    variant("roberta", {"model_type": "roberta"})
    variant("vocab-size", {"vocab_size": 80})
    variant("heads", {"num_attention_heads": 5})
    (variant("bad-json") / "config.json").write_text("{oops", encoding="utf-8")
    big = variant("big-vocab", drop=("tokenizer.json",)) / "vocab.txt"
    big.write_text(
        big.read_text(encoding="utf-8") + "".join(f"extra{i}\n" for i in range(20)), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The placeholders of the table (all but {out}), built once: bad files, tiny checkpoints, a dataset."""
    root = tmp_path_factory.mktemp("bad-input")
    files, ckpt, classifier = root / "files", root / "ckpt", root / "classifier"
    _bad_files(files)
    write_checkpoint(ckpt)
    _broken_checkpoints(files, ckpt)
    labels = get_task("classification").config_overrides(["0", "1"])
    model = model_class_for("bert", "classification").from_pretrained(
        ckpt, ignore_mismatched_sizes=True, **labels
    )
    model.save_pretrained(classifier)
    BertTokenizer.from_pretrained(ckpt).save_pretrained(classifier)
    data, tok = make_dataset(root / "pretraining", vocab_size=120, lines=150)
    return {
        "files": str(files),
        "ckpt": str(ckpt),
        "classifier": str(classifier),
        "tok": str(tok),
        "data": str(data),
        "rows": str(len(VOCAB)),
        "big": str(len(VOCAB) + 20),
    }


# ------------------------------------------------------------------------------------------- helpers
def _state(path: Path) -> object:
    """What is at ``path``: None, a file's digest, or a directory's files with their digests."""
    if not path.exists():
        return None
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return sorted(
        (str(p.relative_to(path)), hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
        for p in path.rglob("*")
    )


def _snapshot(out: Path | None) -> object:
    # The output and its siblings' names: a staging directory or temporary file left beside it counts.
    return None if out is None else (_state(out), sorted(p.name for p in out.parent.iterdir()))


def _resolve(case: Case, places: dict[str, str], out: Path) -> tuple[list[str], list[str], Path | None]:
    values = {**places, "out": str(out)}
    argv = [part.format(**values) for part in shlex.split(case.argv)]
    expect = [fragment.format(**values) for fragment in case.expect]
    return argv, expect, Path(case.out.format(**values)) if case.out else None


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) as the console script runs it, with log records printed to stderr as in a terminal
    (pytest's own log handlers would otherwise keep warnings off stderr): (exit code, stdout, stderr)."""
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    terminal.setLevel(logging.WARNING)
    logging.getLogger().addHandler(terminal)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        logging.getLogger().removeHandler(terminal)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, expect: list[str]) -> None:
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("bertforge"), lines[0]
    for fragment in expect:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


# --------------------------------------------------------------------------------------------- tests
def test_the_catalogue_covers_every_kind_of_input() -> None:
    prefixes = ("corpus-", "dataset-", "vocab-", "task-", "conll-", "cluener-", "squad-", "swag-",
                "evaluate-", "predict-", "recipe-", "override-", "pretrain-", "checkpoint-", "tokenizer-",
                "flag-", "embed-", "export-", "fill-mask-", "serve-", "demo-")  # fmt: skip
    assert len(CASES) >= 40
    assert all(name.startswith(prefixes) for name in CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_naming_the_fault_and_the_fix_and_writes_nothing(
    name: str, places: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expect, out = _resolve(CASES[name], places, tmp_path / "out")
    before = _snapshot(out)
    code, stdout, err = run_in_process(argv, capsys)
    assert "Traceback" not in stdout
    assert_one_line_error(code, err, expect)
    assert _snapshot(out) == before


@pytest.mark.parametrize("name", ["corpus-binary", "tokenizer-vocab-without-unk"])
def test_in_a_real_process_the_terminal_sees_the_same_one_line(
    name: str, places: dict[str, str], tmp_path: Path
) -> None:
    argv, expect, out = _resolve(CASES[name], places, tmp_path / "out")
    before = _snapshot(out)
    result = subprocess.run(
        [sys.executable, "-m", "bertforge.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.stdout == ""
    assert_one_line_error(result.returncode, result.stderr, expect)
    assert _snapshot(out) == before
