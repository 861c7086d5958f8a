"""What a training run reports: ``metrics.jsonl``, optional TensorBoard, a progress bar, a PNG of the curves.

Generic on purpose (pretraining and fine-tuning both use it): a record is any flat dict with a
``step`` and an ``event`` ("train", "eval", ...); numbers become TensorBoard scalars under
``event/key``, and the plot draws every ``*loss`` key in one panel, every ``*accuracy`` key in
another and ``lr`` in a third.

``metrics.jsonl`` is appended one line per event and flushed, so a crash loses nothing already
logged. On resume from step k the lines after step k are dropped first: they belong to steps that
will be trained again, and keeping them would leave two different losses for the same step.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import IO, Any

from ..fileio import atomic_write_text

log = logging.getLogger(__name__)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep it visible rather than invalid
    if hasattr(value, "item"):  # 0-dim tensors and numpy scalars
        return _jsonable(value.item())
    return value


class MetricsLogger:
    """Writes records to ``metrics.jsonl`` (and TensorBoard when asked). ``enabled=False`` (non-zero
    ranks) makes every call a no-op, so callers need no rank checks."""

    def __init__(
        self,
        path: str | Path,
        *,
        resume_step: int | None = None,
        tensorboard_dir: str | Path | None = None,
        enabled: bool = True,
    ) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._handle: IO[str] | None = None
        self._writer: Any = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            atomic_write_text(self.path, "")
        else:
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._handle = self.path.open("a", encoding="utf-8")
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning(
                    "tensorboard is not installed (pip install tensorboard); TensorBoard logging skipped"
                )
            else:
                self._writer = SummaryWriter(str(tensorboard_dir))

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled or self._handle is None:
            return
        record = {k: _jsonable(v) for k, v in record.items() if v is not None}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        if self._writer is not None:
            event = record.get("event", "train")
            for key, value in record.items():
                if (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and key not in ("step", "event")
                ):
                    self._writer.add_scalar(f"{event}/{key}", value, record.get("step", 0))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plot_metrics(records: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path | None:
    """Draw loss, accuracy and learning-rate curves against the step into a PNG.

    Returns the path, or None when matplotlib is not installed (an optional extra) or there is
    nothing to draw.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed (pip install matplotlib); skipped the training plot")
        return None
    panels = {
        "loss": lambda k: k.endswith("loss"),
        "accuracy": lambda k: k.endswith("accuracy"),
        "learning rate": lambda k: k == "lr",
    }
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {name: {} for name in panels}
    for record in records:
        step = record.get("step")
        if step is None:
            continue
        for key, value in record.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            for name, wanted in panels.items():
                if wanted(key):
                    xs, ys = series[name].setdefault(key, ([], []))
                    xs.append(step)
                    ys.append(value)
    used = [name for name in panels if series[name]]
    if not used:
        return None
    fig, axes = plt.subplots(1, len(used), figsize=(5 * len(used), 3.6), squeeze=False)
    for ax, name in zip(axes[0], used, strict=True):
        for key, (xs, ys) in sorted(series[name].items()):
            ax.plot(xs, ys, label=key, marker="o" if len(xs) < 20 else None, markersize=3)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def progress_bar(total: int | None, *, initial: int = 0, enabled: bool = True, desc: str = "train") -> Any:
    """A tqdm bar on stderr (disabled bars cost nothing); ``set_postfix`` it with loss and tokens/s."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, unit="step")
