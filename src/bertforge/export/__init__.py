"""Export to inference runtimes: ONNX (``bertforge export CHECKPOINT --format onnx --out DIR``).

* :func:`bertforge.export.onnx.export_onnx` — a checkpoint of any family and head to ``model.onnx``
  with dynamic batch and sequence axes, checked against PyTorch with onnxruntime, optionally
  quantised to ``model.int8.onnx`` (onnxruntime dynamic int8).
* :class:`bertforge.export.onnx.OnnxModel` — an exported directory, run by onnxruntime behind the
  PyTorch model's interface, so the pipelines, :class:`bertforge.embed.Embedder` and the server run
  on it unchanged.

Needs the ``onnx`` extra (``pip install bertforge[onnx]``); importing this package does not.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OnnxModel", "export_onnx"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import onnx

        return getattr(onnx, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
