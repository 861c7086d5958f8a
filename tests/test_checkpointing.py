"""Checkpoint completeness: manifests written last, verified on resume; partial, corrupt and
legacy checkpoints; cleanup of what a killed save leaves behind."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from bertforge import BertForgeError
from bertforge.train import checkpointing as ckpt


class _Files:
    """Stands in for a model / tokenizer: save_pretrained writes a file or two."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data = name, data

    def save_pretrained(self, directory: Path) -> None:
        (Path(directory) / self.name).write_bytes(self.data)


def _save(out: Path, step: int, keep_last: int = 5) -> Path:
    return ckpt.save_checkpoint(
        out,
        step,
        model=_Files("model.safetensors", os.urandom(1000) + b"weights"),
        tokenizer=_Files("vocab.txt", b"[PAD]\n[UNK]\n"),
        trainer_state={"step": step},
        keep_last=keep_last,
    )


def _config(path: Path) -> None:
    (path / "config.json").write_text("{}")


def test_manifest_lists_every_file_and_is_written_last(tmp_path: Path) -> None:
    path = _save(tmp_path, 3)
    manifest = json.loads((path / ckpt.MANIFEST).read_text())
    assert manifest["format"] == 1 and manifest["step"] == 3
    assert set(manifest["files"]) == {"model.safetensors", "vocab.txt", ckpt.TRAINER_STATE}
    assert manifest["files"]["vocab.txt"]["size"] == 12
    assert ckpt.verify_checkpoint(path) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda p: os.truncate(p / "model.safetensors", 10), "has 10 bytes, the manifest says 1007"),
        (lambda p: (p / "vocab.txt").write_bytes(b"[PAD]\n[XXX]\n"), "vocab.txt does not match its SHA-256"),
        (lambda p: (p / ckpt.MANIFEST).write_text('{"files": '), "unreadable manifest.json"),
        (lambda p: (p / ckpt.MANIFEST).unlink(), "no manifest.json and not a complete legacy checkpoint"),
    ],
)
def test_resume_skips_a_partial_or_corrupt_newest_checkpoint(
    tmp_path: Path, damage, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    _save(tmp_path, 2)
    newest = _save(tmp_path, 4)
    damage(newest)
    assert ckpt.verify_checkpoint(newest) is not None and problem in ckpt.verify_checkpoint(newest)
    with caplog.at_level(logging.WARNING):
        assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "checkpoint-000002"
        assert ckpt.resolve_resume(True, tmp_path) == tmp_path / "checkpoint-000002"
    assert f"skipping checkpoint {newest}: " in caplog.text and problem in caplog.text
    # Naming the damaged checkpoint itself is an error that says what is wrong.
    if (newest / ckpt.MANIFEST).is_file():
        with pytest.raises(BertForgeError, match="checkpoint-000004 is incomplete or corrupt"):
            ckpt.resolve_resume(newest, tmp_path)


def test_legacy_checkpoint_without_manifest_is_loadable_when_its_files_are_there(tmp_path: Path) -> None:
    legacy = tmp_path / "checkpoint-000007"
    legacy.mkdir()
    torch.save({"step": 7}, legacy / ckpt.TRAINER_STATE)
    (legacy / "model.safetensors").write_bytes(b"x")
    _config(legacy)
    assert ckpt.verify_checkpoint(legacy) is None
    assert ckpt.resolve_resume(True, tmp_path) == legacy
    assert ckpt.resolve_resume(legacy, tmp_path) == legacy
    (legacy / "config.json").unlink()  # a legacy directory missing a file is not complete
    assert ckpt.latest_checkpoint(tmp_path) is None


def test_no_complete_checkpoint_starts_from_scratch(tmp_path: Path) -> None:
    damaged = _save(tmp_path, 1)
    (damaged / ckpt.TRAINER_STATE).unlink()
    assert ckpt.resolve_resume(True, tmp_path) is None


def test_clean_temporaries_removes_only_bertforges_own_temporary_names(tmp_path: Path) -> None:
    done = _save(tmp_path, 2)
    for name in (".checkpoint-000004.tmp", ".model.tmp", ".checkpoint-000002.old"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x").write_text("x")
    (tmp_path / ".metrics.jsonl.0123456789ab.tmp").write_text("x")
    keep = [".hidden", ".notes.tmp", "mine.tmp", ".checkpoint-abc.tmp", "user"]
    for name in keep:
        (tmp_path / name).mkdir()
    # An .old whose directory is missing is the complete original of an interrupted replacement.
    os.replace(_save(tmp_path, 6), tmp_path / ".checkpoint-000006.old")
    log = ckpt.clean_temporaries(tmp_path)
    assert len(log) == 5 and f"restored {tmp_path / 'checkpoint-000006'} from .checkpoint-000006.old" in log
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == sorted([*keep, done.name, "checkpoint-000006"])
    assert ckpt.verify_checkpoint(tmp_path / "checkpoint-000006") is None


def test_a_save_killed_at_any_stage_leaves_the_previous_checkpoint_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(tmp_path, 2)
    stages: list[int] = []
    target = [0]

    def crash() -> None:  # the test hook's place in the save: after model files, state, manifest
        stages.append(len(stages))
        if len(stages) == target[0]:
            raise KeyboardInterrupt  # stands in for the kill (the tmp dir is removed by the handler,
            # which a SIGKILL would not run; clean_temporaries covers that, tested above)

    monkeypatch.setattr(ckpt, "_test_pause", crash)
    for stage in (1, 2, 3):
        stages.clear()
        target[0] = stage
        with pytest.raises(KeyboardInterrupt):
            _save(tmp_path, 4)
        assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "checkpoint-000002"
        assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-000002"]
