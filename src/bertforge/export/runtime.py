"""``OnnxModel``: an exported directory run by onnxruntime behind the PyTorch model's interface.

The pipelines, :class:`bertforge.embed.Embedder` and the server call a model as
``model(input_ids=..., attention_mask=..., token_type_ids=...)`` (through
:func:`bertforge.auto.forward_kwargs`), read ``.config``, ``.device``, ``.training`` and
``next(model.parameters()).device``, switch ``.eval()``/``.train()``, and embed through
``model.base_model.sequence_output(...)``. ``OnnxModel`` answers all of these with the same names and
the same output dataclass (``logits``, ``start_logits``/``end_logits``, ``last_hidden_state`` ...,
as torch tensors) as the exported class, so they run on it unchanged.
"""

from __future__ import annotations

import functools
import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..auto import AutoConfig, checkpoint_head_kind, model_class_for
from ..errors import BertForgeError
from ..outputs import ModelOutput

MODEL_FILE = "model.onnx"
QUANTIZED_FILE = "model.int8.onnx"
REPORT_FILE = "export_report.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
ONNX_EXTRA = "pip install bertforge[onnx]"


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    """True for a directory written by ``bertforge export --format onnx`` (it holds model.onnx) or by
    ``bertforge quantize`` (model.int8.onnx alone): loaders that take a checkpoint path can hand such
    a directory to :class:`OnnxModel`."""
    return (Path(path) / MODEL_FILE).is_file() or (Path(path) / QUANTIZED_FILE).is_file()


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BertForgeError(f"onnxruntime is not installed; {ONNX_EXTRA}") from None
    return onnxruntime


def make_session(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path``, ``threads`` intra-op threads (default: onnxruntime's)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def exported_kind(model_type: str, kind: str | None) -> str:
    """``kind`` (None: the base model), with "pretraining" read as "masked-lm" in a family whose
    pretraining model is its MLM model (RoBERTa, DistilBERT): one class, the plainer name."""
    from ..auto import family

    heads = family(model_type).heads
    if kind is None:
        return "base"
    if kind == "pretraining" and heads.get("pretraining") == heads.get("masked-lm"):
        return "masked-lm"
    return kind


@functools.cache
def output_class(model_type: str, kind: str) -> type[ModelOutput]:
    """The output dataclass the PyTorch class of ``kind`` returns (its ``forward`` annotation)."""
    cls = model_class_for(model_type, kind)
    return typing.get_type_hints(cls.forward)["return"]  # type: ignore[no-any-return]


class OnnxModel:
    """An exported model: ``OnnxModel.from_pretrained(dir)`` runs ``dir/model.onnx`` (``quantized=True``,
    or a ``bertforge quantize`` directory, which has no fp32 model: ``model.int8.onnx``) with
    onnxruntime on the CPU, for inference only.

    >>> model = OnnxModel.from_pretrained("exported/sst2")
    >>> classify(model, load_tokenizer("exported/sst2"), "a good film")
    """

    base_model_prefix = "onnx"
    training = False

    def __init__(self, session: Any, config: Any, kind: str, path: Path | None = None) -> None:
        self.session = session
        self.config = config
        self.kind = kind
        self.path = path
        self.input_names = tuple(i.name for i in session.get_inputs())
        self.output_names = tuple(o.name for o in session.get_outputs())
        self._output_class = output_class(config.model_type, kind)
        self._fields = {f for f in self._output_class.__dataclass_fields__}
        self._placeholder = torch.empty(0)  # what parameters() yields: the device and dtype, no weights

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], quantized: bool | None = None, threads: int | None = None
    ) -> OnnxModel:
        """Load an exported directory (config.json + model.onnx [+ model.int8.onnx]); ``quantized``
        None: model.onnx where it exists, else model.int8.onnx."""
        path = Path(path)
        if quantized is None:
            quantized = not (path / MODEL_FILE).is_file() and (path / QUANTIZED_FILE).is_file()
        file = path / (QUANTIZED_FILE if quantized else MODEL_FILE)
        if not file.is_file():
            hint = (
                "export with --quantize int8"
                if quantized and (path / MODEL_FILE).is_file()
                else "export it with `bertforge export CHECKPOINT --format onnx --out DIR`"
            )
            raise BertForgeError(f"{path} has no {file.name}; {hint}")
        config = AutoConfig.from_pretrained(path)
        kind = exported_kind(config.model_type, checkpoint_head_kind(path))
        return cls(make_session(file, threads), config, kind, path)

    # ------------------------------------------------------------------ what callers of a model read
    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def base_model(self) -> OnnxModel:
        return self

    @property
    def has_token_types(self) -> bool:
        return "token_type_ids" in self.input_names

    def parameters(self) -> Iterator[torch.Tensor]:
        yield self._placeholder

    def eval(self) -> OnnxModel:
        return self

    def train(self, mode: bool = True) -> OnnxModel:
        if mode:
            raise BertForgeError("an ONNX model runs inference only; fine-tune the PyTorch checkpoint")
        return self

    def to(self, *args: Any, **kwargs: Any) -> OnnxModel:
        """Accepted for the PyTorch interface: the model stays on the CPU in float32."""
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({self.config.model_type} {self.kind}, inputs={self.input_names}, outputs={self.output_names})"

    # ------------------------------------------------------------------------------------- running
    def _feed(
        self,
        input_ids: Any,
        attention_mask: Any | None,
        token_type_ids: Any | None,
    ) -> dict[str, np.ndarray]:
        ids = _array(input_ids)
        feed = {"input_ids": ids}
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = np.ones_like(ids) if attention_mask is None else _array(attention_mask)
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids) if token_type_ids is None else _array(token_type_ids)
        limit = int(self.config.max_sequence_length)
        if ids.shape[-1] > limit:
            raise ValueError(
                f"sequence length {ids.shape[-1]} exceeds the model's {limit} positions; "
                "truncate the input (tokenizer max_length)"
            )
        return feed

    def run(self, feed: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Raw onnxruntime call: output name -> array (all outputs unless named)."""
        names = list(outputs or self.output_names)
        return dict(zip(names, self.session.run(names, feed), strict=True))

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any | None = None,
        token_type_ids: Any | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> Any:
        """The exported class's output dataclass; ``token_type_ids`` is ignored where the family has
        none (DistilBERT), as the pipelines pass only what a forward names."""
        if output_hidden_states or output_attentions:
            raise BertForgeError(
                "an exported ONNX model returns its final outputs only; use the PyTorch checkpoint "
                "for hidden states or attentions"
            )
        names = [n for n in self.output_names if n in self._fields]
        arrays = self.run(self._feed(input_ids, attention_mask, token_type_ids), names)
        return self._output_class(**{k: torch.from_numpy(v) for k, v in arrays.items()})

    __call__ = forward

    def sequence_output(
        self,
        input_ids: Any,
        attention_mask: Any | None = None,
        token_type_ids: Any | None = None,
    ) -> torch.Tensor:
        """The encoder's last hidden state (B, T, H), as the PyTorch base model's ``sequence_output``."""
        if "last_hidden_state" not in self.output_names:
            raise BertForgeError(
                f"this {self.kind} export has no last_hidden_state output; export the base model "
                "(--head base) to embed"
            )
        feed = self._feed(input_ids, attention_mask, token_type_ids)
        return torch.from_numpy(self.run(feed, ["last_hidden_state"])["last_hidden_state"])


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value, dtype=np.int64)
