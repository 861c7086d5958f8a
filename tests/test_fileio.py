"""Atomic writes: the target is either the old file or the complete new one, never a torn file."""

from __future__ import annotations

import os

import pytest

from bertforge.errors import BertForgeError
from bertforge.fileio import atomic_open, atomic_path, atomic_write_json, atomic_write_text, read_text_file


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_written_file_has_the_permissions_of_any_new_file(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_json(target, {"a": 1})
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert target.read_text(encoding="utf-8") == '{\n  "a": 1\n}\n'


def test_failure_inside_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "vocab.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as handle:
        handle.write("half of the new cont")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.txt"]


def test_atomic_path_renames_only_on_success_and_creates_parent_directories(tmp_path):
    target = tmp_path / "deep" / "er" / "weights.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"\x00\x01")
        assert not target.exists()
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["weights.bin"]


def test_only_write_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="'a'"), atomic_open(tmp_path / "x", "a"):
        pass


def test_writing_over_a_directory_is_an_error_naming_it_and_leaves_it_alone(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(BertForgeError, match=f"{target} is a directory; pass a file path"):
        atomic_write_text(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any(target.iterdir())


def test_read_text_file_names_the_file_that_is_missing_a_directory_or_not_utf8(tmp_path):
    with pytest.raises(BertForgeError, match=f"recipe {tmp_path / 'nope.toml'} not found; see recipes/"):
        read_text_file(tmp_path / "nope.toml", "recipe", "see recipes/")
    with pytest.raises(BertForgeError, match=f"recipe {tmp_path} is a directory"):
        read_text_file(tmp_path, "recipe")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"\xef\xbb\xbfcaf\xe9\n")  # a byte-order mark, then Latin-1
    with pytest.raises(BertForgeError, match=r"input file .*latin.txt is not UTF-8 text \(.* at byte 6\)"):
        read_text_file(latin, "input file")
    latin.write_bytes(b"\xef\xbb\xbfcafe\n")
    assert read_text_file(latin) == "cafe\n"
