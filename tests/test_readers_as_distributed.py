"""Task files as they are distributed, unchanged: STS-benchmark's sts-train.csv (tab-separated despite
its name, no header, extra trailing fields on some rows), MRPC's msr_paraphrase_train.txt (BOM, CRLF),
GLUE SST-2 / QQP TSVs, CLUE JSON lines, SWAG's CSV; the delimiter comes from the content; and error
messages name CLI flags in the CLI and Python arguments in Python."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from _task_data import FAST, single_thread, workspace  # noqa: F401
from bertforge.cli import main
from bertforge.errors import BertForgeError
from bertforge.tasks.arguments import argument, cli_arguments, flags_of
from bertforge.tasks.readers import read_choice_examples, read_text_examples
from bertforge.tasks.readers_table import detect_delimiter


def write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# STS-benchmark's sts-train.csv: genre, filename, year, id, score, sentence1, sentence2 -- tabs, no
# header, quotes that are text, and some rows with two extra trailing fields (their sources).
STS_TRAIN = (
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.\n"
    "main-captions\tMSRvid\t2012test\t0004\t3.800\tA man is playing a large flute.\tA man is playing a flute.\n"
    "main-forums\tdeft-forum\t2014\t0005\t0.200\t\"That's not what I said, she replied.\tHe didn't, say it.\n"
    "main-news\theadlines\t2015\t0007\t2.400\tStocks rise, bonds fall.\tBonds fall as stocks rise.\t"
    "2015-headlines\tsrc-0007\n"
    "main-news\theadlines\t2015\t0008\t1.000\tRain in Paris.\tSun in London.\t2015-headlines\tsrc-0008\n"
)


def test_sts_train_csv_as_distributed_reads_with_column_indices(tmp_path):
    path = write(tmp_path, "sts-train.csv", STS_TRAIN)
    assert detect_delimiter(path.read_text()) == "\t"  # the content says tab, whatever the name says
    result = read_text_examples(path, text_column=5, pair_column=6, label_column=4, regression=True)
    assert [e.label for e in result.examples] == [5.0, 3.8, 0.2, 2.4, 1.0]
    assert result.examples[2].text == "\"That's not what I said, she replied."  # the quote is text
    assert result.examples[3].text_pair == "Bonds fall as stocks rise."
    assert result.extra_fields == 2 and result.skipped == []


def test_sts_without_columns_names_the_flag_or_the_argument(tmp_path):
    path = write(tmp_path, "sts-train.csv", STS_TRAIN)
    with pytest.raises(BertForgeError, match=r"pass text_column= \(and pair_column=, label_column=\)"):
        read_text_examples(path, regression=True)
    flags = {"text_column": ("--text-column", True), "pair_column": ("--pair-column", True)}
    with cli_arguments(flags), pytest.raises(BertForgeError, match=r"pass --text-column \(and --pair-column, label_column=\)"):  # fmt: skip
        read_text_examples(path, regression=True)


def test_sts_train_csv_fine_tunes_from_the_cli_with_only_column_flags(tmp_path, capsys):
    lines = STS_TRAIN.splitlines()
    write(tmp_path, "sts-train.csv", "\n".join(lines * 4) + "\n")
    write(tmp_path, "sts-dev.csv", "\n".join(lines) + "\n")
    code = main([
        "finetune", "--task", "regression", "--model", str(workspace() / "tiny"),
        "--train", str(tmp_path / "sts-train.csv"), "--dev", str(tmp_path / "sts-dev.csv"),
        "--text-column", "5", "--pair-column", "6", "--label-column", "4",
        "--out", str(tmp_path / "out"), "--epochs", "1", "--batch-size", "8", "--max-seq-length", "32",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["main_metric"] == "pearson" and (tmp_path / "out" / "model.safetensors").is_file()


# ------------------------------------------------------------------------------------ delimiters
@pytest.mark.parametrize(
    ("name", "text", "delimiter"),
    [
        ("semicolon.csv", "text;label\ngood, really good;1\nbad, bad;0\nfine;1\n", ";"),
        ("pipe.txt", "text|label\ngood, really good|1\nbad; bad|0\nfine|1\n", "|"),
        ("comma-named.tsv", 'text,label\n"good\tfilm",1\nbad,0\nfine,1\n', ","),
        ("tab-named.csv", "text\tlabel\ngood, really, good\t1\nbad, bad\t0\nfine\t1\n", "\t"),
        ("no-extension", "text\tlabel\ngood\t1\nbad\t0\n", "\t"),
    ],
)
def test_delimiter_comes_from_the_content_not_the_name(tmp_path, name, text, delimiter):
    path = write(tmp_path, name, text)
    assert detect_delimiter(text) == delimiter
    result = read_text_examples(path)
    assert [e.label for e in result.examples] == ["1", "0", "1"][: len(result.examples)]
    assert result.examples[1].text.startswith("bad")


def test_delimiter_detection_is_deterministic_when_sniffer_gives_up_or_disagrees(monkeypatch):
    text = "sentence\tlabel\nit was good , very good\t1\na , b , c\t0\nfine\t1\n"

    def give_up(self, sample, delimiters=None):
        raise csv.Error("Could not determine delimiter")

    monkeypatch.setattr(csv.Sniffer, "sniff", give_up)
    assert detect_delimiter(text) == "\t"  # tab splits every row in two; commas vary

    class Comma:
        delimiter = ","

    monkeypatch.setattr(csv.Sniffer, "sniff", lambda self, sample, delimiters=None: Comma)
    assert detect_delimiter(text) == "\t"  # Sniffer's answer stands only when it is among the best
    assert detect_delimiter("only one column\nand another row\n") == "\t"  # nothing splits it


def test_explicit_format_forces_the_delimiter(tmp_path):
    path = write(tmp_path, "odd.txt", "text,label\na;b,1\nc;d,0\n")
    assert [e.text for e in read_text_examples(path, format="csv").examples] == ["a;b", "c;d"]


# ---------------------------------------------------------------------------- files as distributed
def test_mrpc_msr_paraphrase_txt_with_bom_and_crlf(tmp_path):
    text = (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        '1\t702876\t702977\tAmrozi accused his brother , whom he called " the witness " , of distorting .'
        '\tReferring to him as only " the witness " , Amrozi accused his brother .\n'
        "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain .\tYucaipa bought Dominick 's .\n"
    )
    path = write(tmp_path, "msr_paraphrase_train.txt", text, newline="\r\n")
    result = read_text_examples(path)
    first = result.examples[0]
    assert first.text.endswith("of distorting .") and first.text_pair.endswith("his brother .")
    assert '" the witness "' in first.text and not first.text_pair.endswith("\r")
    assert [e.label for e in result.examples] == ["1", "0"]


def test_glue_qqp_tsv_with_a_short_row_skipped(tmp_path):
    text = (
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "133273\t213221\t213222\tHow is the life of a math student? Could you describe your own experiences?"
        "\tWhich level of prepration is enough for the exam jlpt5?\t0\n"
        '402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your "horniness?\t1\n'
        "201841\t303951\t174364\tWhat can one do after MBBS?\n"  # QQP has a few rows like this
    )
    path = write(tmp_path, "train.tsv", text)
    with pytest.raises(BertForgeError, match=r"train.tsv:4: 4 fields, expected 6 \(pass on_error='skip'"):
        read_text_examples(path)
    result = read_text_examples(path, on_error="skip")
    assert [(e.text_pair[-6:], e.label) for e in result.examples] == [("jlpt5?", "0"), ("iness?", "1")]
    assert len(result.skipped) == 1


def test_glue_sst2_test_split_has_an_index_and_no_label(tmp_path):
    path = write(
        tmp_path,
        "test.tsv",
        "index\tsentence\n0\tuneasy mishmash of styles and genres .\n1\tit 's a \"film\n",
    )
    result = read_text_examples(path)
    assert [(e.text, e.label) for e in result.examples] == [
        ("uneasy mishmash of styles and genres .", None),
        ("it 's a \"film", None),
    ]


def test_clue_json_lines_tnews_afqmc_and_a_test_split(tmp_path):
    tnews = [
        {
            "label": "102",
            "label_desc": "news_entertainment",
            "sentence": "江疏影甜甜圈自拍，迷之角度竟这么好看",
            "keywords": "江疏影,甜甜圈",
        },  # noqa: E501
        {"label": "110", "label_desc": "news_military", "sentence": "以色列大规模空袭开始！", "keywords": ""},
    ]
    path = write(tmp_path, "train.json", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tnews))
    result = read_text_examples(path)
    assert [(e.text[:3], e.label) for e in result.examples] == [("江疏影", "102"), ("以色列", "110")]
    afqmc = {"sentence1": "双十一花呗提额在哪", "sentence2": "里可以提花呗额度", "label": "0"}
    pairs = read_text_examples(write(tmp_path, "afqmc.json", json.dumps(afqmc, ensure_ascii=False) + "\n"))
    assert (pairs.examples[0].text_pair, pairs.examples[0].label) == ("里可以提花呗额度", "0")
    test = {"id": 0, "sentence1": "花呗", "sentence2": "借呗"}
    unlabelled = read_text_examples(write(tmp_path, "test.json", json.dumps(test, ensure_ascii=False) + "\n"))
    assert unlabelled.examples[0].label is None


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_swag_train_csv_as_distributed(tmp_path, newline):
    text = (
        ",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"
        "0,anetv_jkn6uvmqwh4,3416,Members of the procession walk down the street. A drum line,"
        "Members of the procession walk down the street.,A drum line,gold,"
        '"passes by walking down the street, playing.",has heard approaching them.,'
        '"arrives and they\'re outside dancing.",turns the lead singer watches.,0\n'
        '1,lsmdc3001,46,"He opens the door, and sees her. She","He opens the door, and sees her.",She,gen,'
        "smiles.,frowns.,leaves.,waits.,2\n"
    )
    result = read_choice_examples(write(tmp_path, "train.csv", text, newline=newline))
    first, second = result.examples
    assert (
        first.context == "Members of the procession walk down the street." and first.question == "A drum line"
    )
    assert first.endings[0] == "passes by walking down the street, playing." and first.label == 0
    assert second.context == "He opens the door, and sees her." and second.label == 2
    assert not second.endings[-1].endswith("\r")


# --------------------------------------------------------------------------------------- messages
def test_argument_names_python_arguments_by_default_and_flags_in_the_cli():
    import argparse

    assert argument("on_error", "skip") == "on_error='skip'" and argument("text_column") == "text_column="
    parser = argparse.ArgumentParser()
    parser.add_argument("--on-error")
    parser.add_argument("--keep-all", action="store_true")
    with cli_arguments(flags_of(parser)):
        assert argument("on_error", "skip") == "--on-error skip"
        assert argument("keep_all", True) == "--keep-all"
        assert argument("format", cli="a .csv name") == "a .csv name"  # no flag: the CLI alternative
        assert argument("has_header", False) == "has_header=False"  # no flag, no alternative
    assert argument("on_error", "skip") == "on_error='skip'"  # the context ends with the block


def test_malformed_row_message_names_on_error_in_python_and_the_flag_in_the_cli(tmp_path, capsys):
    path = write(tmp_path, "bad.tsv", "sentence\tlabel\ngood\t1\nno label here\n")
    with pytest.raises(BertForgeError, match=r"bad.tsv:3: .*\(pass on_error='skip' to skip malformed rows\)"):
        read_text_examples(path)
    code = main([
        "finetune", "--task", "classification", "--model", str(tmp_path / "no-model"),
        "--train", str(path), "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "(pass --on-error skip to skip malformed rows)" in err and "on_error=" not in err
    write(tmp_path, "unguessable.tsv", "a\tb\tc\nx\ty\tz\n")
    code = main(
        [
            "evaluate",
            str(tmp_path / "no-model"),
            str(tmp_path / "unguessable.tsv"),
            "--task",
            "classification",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "pass --text-column (and --pair-column, --label-column)" in err, err


def test_config_errors_name_flags_in_the_cli(tmp_path, capsys):
    from bertforge.train.finetune_config import FinetuneConfig

    with pytest.raises(BertForgeError, match=r"lr=-1.0 must be positive"):
        FinetuneConfig(task="classification", model="m", train="t", out="o", lr=-1.0)
    code = main(
        ["finetune", "--task", "classification", "--model", "m", "--train", "t", "--out", "o", "--lr", "-1"]
    )
    assert code == 2 and "--lr -1.0 must be positive" in capsys.readouterr().err
