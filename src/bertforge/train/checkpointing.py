"""Checkpoints: model files and trainer state, written so that a crash never leaves a half checkpoint.

A checkpoint is a directory ``OUT/checkpoint-000100/`` holding two kinds of files, kept apart
(torchtitan style):

* model files: ``config.json``, ``model.safetensors`` and the tokenizer files, i.e. a complete
  Hugging Face checkpoint that bertforge and transformers load as it is;
* ``trainer_state.pt``: optimizer, scheduler, step, data position, the RNG states of python,
  numpy and torch, elapsed time (for a time budget) and the resolved config. Only plain
  containers and tensors, so it loads with ``torch.load(weights_only=True)``.

Everything is first written to ``OUT/.checkpoint-000100.tmp/`` and renamed into place, so the
newest ``checkpoint-*`` directory is always complete; a full disk deletes the temporary directory
and leaves the previous checkpoint untouched. Only the last ``keep_last`` are kept.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BertForgeError
from ..fileio import atomic_write_text

log = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.pt"
RESOLVED_CONFIG = "resolved_config.toml"
_NAME = re.compile(r"checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first (temporary directories are ignored)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if (m := _NAME.match(p.name)) and (p / TRAINER_STATE).is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def write_directory_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp_dir)`` and rename ``tmp_dir`` to ``final`` (replacing an older ``final``).

    On any failure the temporary directory is removed and ``final`` is left as it was; a full
    disk becomes a :class:`BertForgeError` that says so.
    """
    final = Path(final)
    tmp = final.parent / f".{final.name}.tmp"
    old = final.parent / f".{final.name}.old"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write(tmp)
        if final.exists():
            # Two renames, so `final` is missing only between them and never half-written.
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            previous = latest_checkpoint(final.parent)
            kept = (
                f"the previous checkpoint {previous} is intact"
                if previous
                else "no earlier checkpoint exists"
            )
            raise BertForgeError(
                f"no space left on device while writing {final}; {kept}. Free disk space (or lower "
                "train.keep_last) and continue with --resume"
            ) from err
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final


def save_model_files(directory: Path, model: Any, tokenizer: Any, config_text: str | None = None) -> None:
    """config.json + model.safetensors + tokenizer files (+ the run's resolved config)."""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if config_text is not None:
        atomic_write_text(directory / RESOLVED_CONFIG, config_text)


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    model: Any,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    config_text: str | None = None,
    keep_last: int = 2,
) -> Path:
    """Write ``OUT/checkpoint-{step:06d}`` atomically, then delete all but the newest ``keep_last``."""
    output_dir = Path(output_dir)

    def write(tmp: Path) -> None:
        save_model_files(tmp, model, tokenizer, config_text)
        torch.save(trainer_state, tmp / TRAINER_STATE)

    path = write_directory_atomically(output_dir / checkpoint_name(step), write)
    for stale in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(stale, ignore_errors=True)
    log.info("saved %s", path)
    return path


def load_trainer_state(checkpoint: str | Path) -> dict[str, Any]:
    path = Path(checkpoint) / TRAINER_STATE
    if not path.is_file():
        raise BertForgeError(
            f"{checkpoint} is not a training checkpoint (no {TRAINER_STATE}); pass a checkpoint-NNNNNN "
            "directory written by `bertforge pretrain`, or its output directory"
        )
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ RNG
def rng_state() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU and CUDA) as weights-only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys).copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_resume(resume: bool | str | Path, output_dir: Path) -> Path | None:
    """The checkpoint ``--resume`` means: True = the newest in ``output_dir`` (None, with a warning,
    when there is none yet); a path = that checkpoint, or the newest one in that output directory."""
    if resume is False or resume is None:
        return None
    if resume is True:
        found = latest_checkpoint(output_dir)
        if found is None:
            log.warning("--resume: no checkpoint in %s yet; starting from scratch", output_dir)
        return found
    path = Path(resume)
    if not (path / TRAINER_STATE).is_file() and path.is_dir():
        found = latest_checkpoint(path)  # an output directory: take its newest checkpoint
        if found is not None:
            return found
    if not path.exists():
        raise BertForgeError(f"checkpoint {path} to resume from does not exist")
    return path


def check_resume_vocabulary(checkpoint: str | os.PathLike[str], dataset: Any, model_vocab: int) -> None:
    """Refuse to resume on a dataset built with another vocabulary than the checkpoint's."""
    from ..pipelines.common import load_tokenizer

    try:
        dataset.check_tokenizer(load_tokenizer(checkpoint))
    except BertForgeError as err:
        raise BertForgeError(f"cannot resume from {checkpoint}: {err}") from None
    if model_vocab != dataset.vocab_size:
        raise BertForgeError(
            f"checkpoint {checkpoint} has vocab_size {model_vocab} but dataset {dataset.path} has "
            f"{dataset.vocab_size}; resume with the dataset the run was started on"
        )
