"""Reading raw corpora (bertforge.data.corpus): formats, auto-detection, sources, encodings, bad files."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from bertforge.data import corpus as corpus_module
from bertforge.data import textfile
from bertforge.data.corpus import Corpus, expand_sources, iter_lines, read_corpus
from bertforge.errors import BertForgeError
from bertforge.tasks.arguments import cli_arguments

BERT_FORMAT = "The cat sat.\nIt was happy.\nThen it slept.\n\nA new document starts.\nIt ends here.\n"
GUTENBERG = (
    "CHAPTER I\r\n\r\n"
    "It is a truth universally acknowledged, that a single man in possession\r\n"
    "of a good fortune, must be in want of a wife. Mr. Bennet agreed with\r\n"
    "his wife.\r\n\r\n"
    '"My dear," said his lady to him one day, "have you heard that\r\n'
    'Netherfield Park is let at last?"\r\n\r\n'
    "CHAPTER II\r\n\r\n"
    "Mr. Bennet was among the earliest of those who waited on Mr. Bingley. He\r\n"
    "had always intended to visit him.\r\n"
)
CHINESE_NOVEL = (
    "《红楼梦》曹雪芹\r\n\r\n"
    "第一回  甄士隐梦幻识通灵\r\n\r\n"
    "    此开卷第一回也．作者自云：因曾历过一番梦幻之后。\r\n\r\n"
    "    他说：“好！”然后走了。\r\n\r\n"
    "第二回  贾夫人仙逝扬州城\r\n\r\n"
    "    诗云：一局输赢料不真。\r\n"
)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def read(path: Path | list[Path], **kwargs: object) -> tuple[list[list[str]], Corpus]:
    corpus = Corpus(path, **kwargs)  # type: ignore[arg-type]
    return list(corpus), corpus


# ------------------------------------------------------------------------------------------ formats


def test_bert_format_is_detected_and_read_line_by_line(tmp_path: Path) -> None:
    docs, corpus = read(write(tmp_path / "bert.txt", BERT_FORMAT))
    assert corpus.stats.files[0][1] == "sentences"
    assert docs == [
        ["The cat sat.", "It was happy.", "Then it slept."],
        ["A new document starts.", "It ends here."],
    ]


def test_hard_wrapped_crlf_book_is_rejoined_split_and_cut_at_chapters(tmp_path: Path) -> None:
    docs, corpus = read(write(tmp_path / "pg1342.txt", GUTENBERG))
    assert corpus.stats.files[0][1] == "book"
    assert docs == [
        [
            "CHAPTER I",
            "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
            "must be in want of a wife.",
            "Mr. Bennet agreed with his wife.",
            '"My dear," said his lady to him one day, "have you heard that Netherfield Park is let at last?"',
        ],
        [
            "CHAPTER II",
            "Mr. Bennet was among the earliest of those who waited on Mr. Bingley.",
            "He had always intended to visit him.",
        ],
    ]


def test_chinese_novel_with_a_paragraph_per_line_reads_as_book_without_inserted_spaces(
    tmp_path: Path,
) -> None:
    docs, corpus = read(write(tmp_path / "hongloumeng.txt", CHINESE_NOVEL))
    assert corpus.stats.files[0][1] == "book"
    assert docs == [
        ["《红楼梦》曹雪芹"],  # front matter before the first heading is a document of its own
        [
            "第一回 甄士隐梦幻识通灵",
            "此开卷第一回也．",
            "作者自云：因曾历过一番梦幻之后。",
            "他说：“好！”",
            "然后走了。",
        ],
        ["第二回 贾夫人仙逝扬州城", "诗云：一局输赢料不真。"],
    ]


def test_indented_paragraph_per_line_without_blank_lines_reads_as_book(tmp_path: Path) -> None:
    text = "第一回 开始\n    天下大势。分久必合。\n    合久必分。\n第二回 再见\n    结束了。\n"
    docs, corpus = read(write(tmp_path / "novel.txt", text))
    assert corpus.stats.files[0][1] == "book"
    assert docs == [["第一回 开始", "天下大势。", "分久必合。", "合久必分。"], ["第二回 再见", "结束了。"]]


def test_one_document_per_line_is_detected_and_split(tmp_path: Path) -> None:
    text = "First doc. It has two sentences.\nSecond doc here. Also two.\nThird one! Yes.\n"
    docs, corpus = read(write(tmp_path / "docs.txt", text))
    assert corpus.stats.files[0][1] == "documents"
    assert docs == [
        ["First doc.", "It has two sentences."],
        ["Second doc here.", "Also two."],
        ["Third one!", "Yes."],
    ]


def test_paragraphs_format_makes_each_block_a_document(tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", "One line\nwrapped here. Next.\n\nSecond para.\n")
    docs, _ = read(path, format="paragraphs")
    assert docs == [["One line wrapped here.", "Next."], ["Second para."]]


def test_jsonl_is_detected_by_name_and_by_content(tmp_path: Path) -> None:
    records = [
        {"text": "A first text. With two sentences.\n\nAnd a para\nwrapped.", "id": 1},
        {"text": "中文。句子！"},
    ]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n"
    for name in ("data.jsonl", "data.txt"):
        docs, corpus = read(write(tmp_path / name, body))
        assert corpus.stats.files[0][1] == "jsonl"
        assert docs == [["A first text.", "With two sentences.", "And a para wrapped."], ["中文。", "句子！"]]


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "fine."}\n{not json}\n')
    with pytest.raises(BertForgeError, match=r"bad\.jsonl:2: not valid JSON"):
        read(path)
    path = write(tmp_path / "nofield.jsonl", '{"body": "x"}\n')
    with pytest.raises(BertForgeError, match=r"nofield\.jsonl:1: .*'text' field"):
        read(path)


def test_unknown_format_and_errors_mode_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "x.\n")
    with pytest.raises(BertForgeError, match="unknown corpus format 'xml'; choose from auto"):
        Corpus(path, format="xml")
    with pytest.raises(BertForgeError, match="unknown errors mode 'ignore'"):
        Corpus(path, errors="ignore")


def test_documents_longer_than_the_cap_are_cut(tmp_path: Path) -> None:
    text = "".join(f"Sentence number {i}.\n" for i in range(10))
    docs, _ = read(write(tmp_path / "long.txt", text), format="sentences", max_document_chars=60)
    assert [len(d) for d in docs] == [4, 4, 2]  # cut once a document reaches the cap
    assert [s for d in docs for s in d] == [f"Sentence number {i}." for i in range(10)]


# ------------------------------------------------------------------------------------------ sources


def test_gz_globs_and_directories(tmp_path: Path) -> None:
    write(tmp_path / "d" / "b.txt", "B one.\nB two.\n")
    write(tmp_path / "d" / "sub" / "c.txt", "C one.\nC two.\n")
    write(tmp_path / "d" / ".hidden" / "x.txt", "hidden.\n")
    write(tmp_path / "d" / ".skip.txt", "hidden.\n")
    with gzip.open(tmp_path / "a.txt.gz", "wb") as handle:
        handle.write(b"A one.\nA two.\n")
    files = expand_sources([tmp_path / "a.txt.gz", tmp_path / "d", str(tmp_path / "d" / "*.txt")])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.txt.gz", "d/b.txt", "d/sub/c.txt"]
    docs = list(read_corpus([tmp_path / "*.gz", tmp_path / "d"]))
    assert docs == [["A one.", "A two."], ["B one.", "B two."], ["C one.", "C two."]]


def test_missing_paths_empty_directories_and_unmatched_globs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="corpus path .*nope.txt does not exist"):
        Corpus(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BertForgeError, match="holds no files"):
        Corpus(tmp_path / "empty")
    with pytest.raises(BertForgeError, match="no files match"):
        Corpus(str(tmp_path / "*.xyz"))


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "blank.txt", "\n \r\n\t\n\ufeff\n")
    with pytest.raises(BertForgeError, match="holds no text"):
        read([tmp_path / "empty.txt", tmp_path / "blank.txt"])


def test_invalid_gzip_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="not a valid gzip file"):
        read(write(tmp_path / "fake.txt.gz", b"plain text, not gzip\n"))


# ---------------------------------------------------------------------------------------- encodings


def test_crlf_cr_bom_and_control_characters_are_cleaned(tmp_path: Path) -> None:
    raw = "\ufeffFirst line.\r\nSecond\x00 line\x0c.\rThird\tline.\r\n\r\nNew doc\u200b.\n".encode()
    docs, _ = read(write(tmp_path / "messy.txt", raw.replace(b"\x00", b"")), format="sentences")
    assert docs == [["First line.", "Second line.", "Third line."], ["New doc."]]


def test_lines_survive_chunk_boundaries_inside_characters_and_crlf(tmp_path: Path, monkeypatch) -> None:
    text = "αβγ\r\n中文句子。\r\n\r\nemoji 🙂 ok.\r\nlast line without newline"
    path = write(tmp_path / "t.txt", "\ufeff" + text)
    expected = list(iter_lines(path))
    assert expected == ["αβγ", "中文句子。", "", "emoji 🙂 ok.", "last line without newline"]
    for size in (1, 2, 3, 5, 7):
        monkeypatch.setattr(textfile, "CHUNK_BYTES", size)
        assert list(iter_lines(path)) == expected


def test_undecodable_bytes_are_replaced_counted_and_reported_with_file_and_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = b"Good text here.\nBad \xff byte and \xc3\x28 another.\n" + b"More fine text.\n" * 10
    path = write(tmp_path / "latin.txt", raw)
    with caplog.at_level(logging.WARNING):
        docs, corpus = read(path, format="sentences")
    assert docs[0][1] == "Bad \ufffd byte and \ufffd( another."
    assert corpus.stats.replaced_bytes == 2
    assert corpus.stats.decode_errors == [(str(path), 20), (str(path), 31)]
    assert "latin.txt: replaced 2 undecodable bytes" in caplog.text and "first at byte 20" in caplog.text


def test_strict_mode_refuses_undecodable_bytes_naming_file_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.txt", b"Good text.\nBad \xff byte.\n" + b"ok.\n" * 10)
    with pytest.raises(BertForgeError, match=r"latin\.txt at byte 15: not UTF-8 .*errors='replace'"):
        read(path, errors="strict")
    # The command line's reader is told the flag, and only the flag.
    with cli_arguments({"errors": ("--errors", True)}), pytest.raises(BertForgeError) as raised:
        read(path, errors="strict")
    assert "--errors replace" in str(raised.value) and "errors='replace'" not in str(raised.value)


def test_offsets_in_gz_files_count_decompressed_bytes(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "x.txt.gz", "wb") as handle:
        handle.write(b"abc.\n\xfe rest.\n" + b"fine.\n" * 10)
    with pytest.raises(BertForgeError, match="at byte 5 of the decompressed data"):
        read(tmp_path / "x.txt.gz", errors="strict")


def test_binary_files_are_refused_with_their_name(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match=r"model\.bin looks like a binary file.*NUL byte at offset 4"):
        read(write(tmp_path / "model.bin", b"\x89PNG\x00\x01\x02" + b"x" * 100))
    garbage = bytes(range(128, 256)) * 20
    with pytest.raises(BertForgeError, match=r"noise\.txt looks like a binary file.*undecodable bytes"):
        read(write(tmp_path / "noise.txt", garbage))
    with pytest.raises(BertForgeError, match="UTF-16"):
        read(write(tmp_path / "u16.txt", "hello.\n".encode("utf-16")))


def test_very_long_lines_are_fine(tmp_path: Path) -> None:
    line = "word " * 200_000 + "end."
    docs, _ = read(write(tmp_path / "long.txt", line + "\n"), format="documents")
    assert docs == [[line]]


@pytest.mark.parametrize(
    ("paragraph", "heading"),
    [
        ("CHAPTER IV", True),
        ("Chapter 3.", True),
        ("BOOK ONE: 1805", True),
        ("Book the First", True),
        ("第一回  甄士隐梦幻识通灵", True),
        ("楔子 张天师祈禳瘟疫", True),
        ("Part of it was lost.", False),
        ("Act civil.", False),
        ("Chapter", False),
        (
            "第一回也．作者自云：因曾历过一番梦幻之后，故将真事隐去，而借通灵之说，撰此石头记一书也．" * 2,
            False,
        ),
    ],
)
def test_chapter_headings_are_recognised_and_prose_is_not(paragraph: str, heading: bool) -> None:
    assert corpus_module.is_heading(paragraph) is heading
