"""Checkpoints: model files and trainer state, written so that a crash never leaves a half checkpoint.

A checkpoint is a directory ``OUT/checkpoint-000100/`` holding two kinds of files, kept apart
(torchtitan style):

* model files: ``config.json``, ``model.safetensors`` and the tokenizer files, i.e. a complete
  Hugging Face checkpoint that bertforge and transformers load as it is;
* ``trainer_state.pt``: optimizer, scheduler, step, data position, the RNG states of python,
  numpy and torch, elapsed time (for a time budget) and the resolved config. Only plain
  containers and tensors, so it loads with ``torch.load(weights_only=True)``.

A sharded checkpoint (``train.parallel = "fsdp"``) holds the model and optimizer state as
``torch.distributed.checkpoint`` (DCP) shards in ``dcp/`` instead (``.metadata`` and one
``__RANK_0.distcp`` per process, written by every process at once; see :mod:`.fsdp`), beside
``config.json``, the tokenizer files and a ``trainer_state.pt`` without the optimizer. DCP reshards
on load, so it resumes on any number of processes. It has no ``model.safetensors``: the final model
in ``OUT/model/`` is gathered into one.

Everything is first written to ``OUT/.checkpoint-000100.tmp/`` and renamed into place; a full
disk deletes the temporary directory and leaves the previous checkpoint untouched. Only the last
``keep_last`` are kept.

Completeness is verified, not assumed from a directory name: the last file written into the
temporary directory is ``manifest.json`` (every other file's name, size and SHA-256, the DCP shards
included; every file is fsynced first), and the rename follows it. Resuming takes the newest
checkpoint whose manifest verifies and skips, with a warning, any newer one that does not (a file
missing, truncated or altered, e.g. by a copy that stopped half-way or a disk error). A checkpoint
without ``manifest.json`` was written by a bertforge from before manifests; it is accepted,
unverified, when it holds ``trainer_state.pt``, ``config.json`` and a weights file.

A process killed while saving leaves ``.checkpoint-NNNNNN.tmp`` (or ``.NAME.old``, between the two
renames that replace a directory, or an atomic-write ``.FILE.xxxxxxxxxxxx.tmp``): the next run in
that output directory removes these, and only these, bertforge's own temporary names, before it
starts (an ``.old`` whose directory is missing is renamed back instead: it is the complete original).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import save_config
from ..errors import BertForgeError
from ..fileio import atomic_directory, atomic_write_text, fsync_path

log = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.pt"
RESOLVED_CONFIG = "resolved_config.toml"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SHARDED_STATE = "dcp"  # the DCP directory of a sharded checkpoint
DCP_METADATA = ".metadata"  # DCP writes it last, once every process's shards are written
_NAME = re.compile(r"checkpoint-(\d+)$")
# bertforge's own temporary names: write_directory_atomically's and fileio.atomic_path's.
_TEMP_DIR = re.compile(r"^\.(checkpoint-\d+|model)\.(tmp|old)$")
_TEMP_FILE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
# Test hook (benchmarks/crash_resume.py): sleep this many seconds at each stage of a checkpoint
# save, so that a kill can be aimed at a save in progress. Not for use outside tests.
PAUSE_ENV = "_BERTFORGE_TEST_SAVE_PAUSE"


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint directories in ``output_dir``, oldest first: those with a manifest, and legacy
    ones (no manifest) holding a trainer state. Temporary directories are ignored; the manifests
    are not checked here (see :func:`latest_checkpoint` and :func:`verify_checkpoint`)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if (m := _NAME.match(p.name))
        and p.is_dir()
        and ((p / MANIFEST).is_file() or (p / TRAINER_STATE).is_file())
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest checkpoint in ``output_dir`` that verifies; newer ones that do not are skipped
    with a warning (they are left in place: they may be worth a look)."""
    for path in reversed(list_checkpoints(output_dir)):
        problem = verify_checkpoint(path)
        if problem is None:
            return path
        log.warning("skipping checkpoint %s: %s", path, problem)
    return None


# ------------------------------------------------------------------------------------ manifest
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(directory: Path, **info: Any) -> None:
    """fsync every file in ``directory`` and write ``manifest.json`` (names, sizes, SHA-256) last."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            fsync_path(path)
            name = path.relative_to(directory).as_posix()
            files[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {"format": MANIFEST_FORMAT, **info, "files": files}
    from ..fileio import atomic_write_json

    atomic_write_json(directory / MANIFEST, manifest)
    fsync_path(directory)


def verify_checkpoint(path: str | Path) -> str | None:
    """None when the checkpoint at ``path`` is complete, else what is wrong with it.

    With a manifest: every listed file present with its size and SHA-256 (a sharded checkpoint's
    DCP shards and their index included). Without one (written before manifests):
    ``trainer_state.pt``, ``config.json`` and a weights file present."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        weights = (path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file()
        if (path / TRAINER_STATE).is_file() and (path / "config.json").is_file() and weights:
            log.info("checkpoint %s has no %s (written before manifests); not verified", path, MANIFEST)
            return None
        return f"no {MANIFEST} and not a complete legacy checkpoint"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable {MANIFEST} ({err})"
    if TRAINER_STATE not in files:
        return f"{MANIFEST} lists no {TRAINER_STATE}"
    if manifest.get("sharded") and f"{SHARDED_STATE}/{DCP_METADATA}" not in files:
        return f"{MANIFEST} lists no {SHARDED_STATE}/{DCP_METADATA} (the index of the DCP shards)"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        size = file.stat().st_size
        if size != expected["size"]:
            return f"{name} has {size} bytes, the manifest says {expected['size']}"
        if _sha256(file) != expected["sha256"]:
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def clean_temporaries(output_dir: str | Path) -> list[str]:
    """Remove what a killed save left in ``output_dir``: bertforge's own temporary names only
    (``.checkpoint-NNNNNN.tmp``, ``.model.tmp``, their ``.old``, ``.FILE.xxxxxxxxxxxx.tmp``). An
    ``.old`` directory whose real one is missing is renamed back (it is complete: the kill fell
    between the two renames of a replacement). Returns what was done, one line each (also logged)."""
    output_dir = Path(output_dir)
    done: list[str] = []
    if not output_dir.is_dir():
        return done
    for entry in sorted(output_dir.iterdir()):
        if (m := _TEMP_DIR.match(entry.name)) and entry.is_dir() and not entry.is_symlink():
            final = output_dir / m.group(1)
            if m.group(2) == "old" and not final.exists():
                os.replace(entry, final)
                done.append(f"restored {final} from {entry.name}")
            else:
                shutil.rmtree(entry, ignore_errors=True)
                done.append(f"removed {entry}")
        elif _TEMP_FILE.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            done.append(f"removed {entry}")
    for line in done:
        log.warning("cleaning up after an interrupted save: %s", line)
    return done


def _test_pause() -> None:
    pause = os.environ.get(PAUSE_ENV)
    if pause:
        time.sleep(float(pause))


def no_space_error(final: Path) -> BertForgeError:
    """What to tell the user when the disk filled up while ``final`` was being written."""
    previous = latest_checkpoint(final.parent)
    kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
    return BertForgeError(
        f"no space left on device while writing {final}; {kept}. Free disk space (or lower "
        "train.keep_last) and continue with --resume"
    )


def write_directory_atomically(
    final: Path,
    write: Callable[[Path], None],
    *,
    manifest: dict[str, Any] | None = None,
    started: bool = False,
) -> Path:
    """Run ``write(tmp_dir)`` and rename ``tmp_dir`` to ``final`` (replacing an older ``final``).
    With ``manifest`` (extra fields for it), ``manifest.json`` is written last, before the rename.
    ``started``: the temporary directory already holds files other processes wrote into it (the
    shards of a sharded checkpoint, after :func:`start_temporary_directory`); keep them.

    On any failure the temporary directory is removed and ``final`` is left as it was; a full
    disk becomes a :class:`BertForgeError` that says so.
    """

    def write_all(tmp: Path) -> None:
        write(tmp)
        if manifest is not None:
            write_manifest(tmp, **manifest)
            _test_pause()

    try:
        return atomic_directory(final, write_all, started=started)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise no_space_error(final) from err
        raise


def save_model_files(
    directory: Path,
    model: Any,
    tokenizer: Any,
    config_text: str | None = None,
    *,
    state_dict: dict[str, torch.Tensor] | None = None,
    weights: bool = True,
) -> None:
    """config.json + model.safetensors + tokenizer files (+ the run's resolved config).

    ``state_dict``: the weights to write, when not the module's own (gathered from shards);
    ``weights=False``: no weights file (a sharded checkpoint keeps them in its DCP shards)."""
    if not weights:
        save_config(model, directory)
    elif state_dict is not None:
        model.save_pretrained(directory, state_dict=state_dict)
    else:
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
    sharded: bool = False,
) -> Path:
    """Write ``OUT/checkpoint-{step:06d}`` atomically, then delete all but the newest ``keep_last``.

    ``sharded``: every process has already written the model and optimizer shards into the
    temporary directory's ``dcp/`` (see :func:`.fsdp.save_sharded_checkpoint`); this adds the
    config, tokenizer and trainer state, the manifest over all of it, and renames."""
    output_dir = Path(output_dir)

    def write(tmp: Path) -> None:
        save_model_files(tmp, model, tokenizer, config_text, weights=not sharded)
        _test_pause()
        torch.save(trainer_state, tmp / TRAINER_STATE)
        _test_pause()

    manifest: dict[str, Any] = {"step": step, "sharded": True} if sharded else {"step": step}
    final = output_dir / checkpoint_name(step)
    path = write_directory_atomically(final, write, manifest=manifest, started=sharded)
    for stale in list_checkpoints(output_dir)[:-keep_last]:
        remove_checkpoint(stale)
    log.info("saved %s", path)
    return path


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint directory: renamed to its temporary name first (atomic), so a kill
    half-way through leaves a name that the next run's :func:`clean_temporaries` removes, never
    a half-deleted ``checkpoint-NNNNNN``."""
    doomed = path.parent / f".{path.name}.tmp"
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def is_sharded(checkpoint: str | Path) -> bool:
    """Whether ``checkpoint`` keeps its model and optimizer state in DCP shards (an FSDP run's)."""
    return (Path(checkpoint) / SHARDED_STATE).is_dir()


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
            log.warning("--resume: no complete checkpoint in %s yet; starting from scratch", output_dir)
        return found
    path = Path(resume)
    is_checkpoint = (path / TRAINER_STATE).is_file() or (path / MANIFEST).is_file()
    if not is_checkpoint and path.is_dir():
        found = latest_checkpoint(path)  # an output directory: take its newest complete checkpoint
        if found is not None:
            return found
    if not path.exists():
        raise BertForgeError(f"checkpoint {path} to resume from does not exist")
    if is_checkpoint and (problem := verify_checkpoint(path)) is not None:
        raise BertForgeError(
            f"checkpoint {path} is incomplete or corrupt ({problem}); pass an older checkpoint, or "
            "the output directory to take the newest complete one"
        )
    return path


def check_resume_vocabulary(
    checkpoint: str | os.PathLike[str], dataset: Any, start: str = "resume from"
) -> None:
    """Refuse to resume (or, ``start="start from"``, to continue pretraining) on a dataset built
    with another vocabulary than the checkpoint's. Reads only the checkpoint's tokenizer and
    config.json, so it runs before the weights load (and before their loader logs anything)."""
    from ..auto import AutoConfig
    from ..pipelines.common import load_tokenizer

    try:
        dataset.check_tokenizer(load_tokenizer(checkpoint))
    except BertForgeError as err:
        raise BertForgeError(f"cannot {start} {checkpoint}: {err}") from None
    model_vocab = AutoConfig.from_pretrained(checkpoint).vocab_size
    if model_vocab != dataset.vocab_size:
        raise BertForgeError(
            f"checkpoint {checkpoint} has vocab_size {model_vocab} but dataset {dataset.path} has "
            f"{dataset.vocab_size}; resume with the dataset the run was started on"
        )
