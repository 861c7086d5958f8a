"""What a checkpoint can do, as batch runners: one function per route that takes the batch's
inputs (every queued request's, concatenated) and returns one JSON-able result per input.

Each runner calls the library's own pipeline (:class:`bertforge.embed.Embedder`,
:func:`bertforge.pipelines.classify` / :func:`ner` / :func:`answer_questions` / :func:`fill_mask`)
with the checkpoint's inference settings (:meth:`InferenceSettings.for_checkpoint`, the windows
``bertforge predict`` uses), so an answer equals the Python pipeline's for the same input.

Routes follow the checkpoint (config.json ``architectures``, :func:`bertforge.auto.checkpoint_head_kind`):
every checkpoint embeds (its encoder, with sentence-transformers' pooling and normalisation when
the directory has them); a sequence-classification head adds ``/classify``, a token-classification
head ``/ner``, a question-answering head ``/qa``, a masked-LM or pretraining head ``/fill-mask``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..auto import AutoConfig, checkpoint_head_kind, checkpoint_model_type
from ..embed import POOLINGS, Embedder
from ..errors import BertForgeError
from ..inference import convert_for_inference
from .settings import ServeSettings

logger = logging.getLogger(__name__)

TASK_HEADS = ("sequence-classification", "token-classification", "question-answering", "multiple-choice")
MLM_HEADS = ("masked-lm", "pretraining")
# Routes that go through the batcher, by the head kind that enables them (embed: every checkpoint).
HEAD_ROUTES = {
    "sequence-classification": "classify",
    "token-classification": "ner",
    "question-answering": "qa",
    "masked-lm": "fill-mask",
    "pretraining": "fill-mask",
}


def embedding_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """sentence-transformers' settings saved beside a checkpoint (max_seq_length, pooling mode,
    a Normalize module), as :class:`Embedder` keyword arguments; the same files
    :meth:`Embedder.from_pretrained` reads, read here so the server builds its Embedder on the model
    it already loaded (one copy of the weights) or on an ONNX model."""
    path = Path(path)
    settings: dict[str, Any] = {}
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        length = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        if length is not None:
            settings["max_length"] = int(length)
    pooling_config = path / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        modes = json.loads(pooling_config.read_text(encoding="utf-8"))
        for mode in POOLINGS:
            if modes.get(f"pooling_mode_{mode}_tokens") or modes.get(f"pooling_mode_{mode}_token"):
                settings["pooling"] = mode
                break
    modules = path / "modules.json"
    if modules.is_file():
        kinds = [m.get("type", "") for m in json.loads(modules.read_text(encoding="utf-8"))]
        settings["normalize"] = any(k.endswith("Normalize") for k in kinds)
    return settings


def _load_onnx(path: Path) -> Any:
    try:
        from ..export.onnx import OnnxModel  # type: ignore[import-not-found,unused-ignore]
    except ImportError as error:
        raise BertForgeError(
            f"--backend onnx needs bertforge's ONNX runtime support and onnxruntime ({error}); "
            "install them with pip install 'bertforge[onnx]', or use --backend torch"
        ) from None
    return OnnxModel.from_pretrained(path)


def _load_torch(path: Path, kind: str | None) -> tuple[Any, str | None]:
    from ..auto import AutoModel
    from ..pipelines import load_masked_lm, load_task_model

    if kind in TASK_HEADS:
        return load_task_model(path)
    if kind in MLM_HEADS:
        return load_masked_lm(path), None
    return AutoModel.from_pretrained(path), None


@dataclass
class ModelService:
    """A loaded checkpoint and the runners of its routes."""

    path: Path
    name: str
    model_type: str
    head_kind: str | None
    task: str | None
    model: Any
    tokenizer: Any
    embedder: Embedder
    inference: Any  # InferenceSettings of the task (windows), None without a task head
    settings: ServeSettings
    runners: dict[str, Callable[[list[Any]], list[Any]]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str] | None:
        if self.task not in ("classification", "ner", "multiple-choice"):
            return None
        id2label = self.model.config.id2label
        return [id2label[i] for i in sorted(id2label)]

    # -------------------------------------------------------------------------------- the runners
    def run_embed(self, texts: list[str]) -> list[list[float]]:
        return self.embedder(texts).tolist()  # type: ignore[no-any-return]

    def run_classify(self, items: list[tuple[str, str | None]]) -> list[list[dict[str, Any]]]:
        from ..pipelines import classify

        texts = [text for text, _ in items]
        pairs = [pair for _, pair in items]
        results = classify(self.model, self.tokenizer, texts, pairs, top_k=None, settings=self.inference)
        return [[dataclasses.asdict(s) for s in row] for row in results]  # type: ignore[union-attr]

    def run_ner(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        from ..pipelines import ner

        results = ner(self.model, self.tokenizer, texts, settings=self.inference)
        return [[dataclasses.asdict(e) for e in row] for row in results]  # type: ignore[union-attr]

    def run_qa(self, items: list[tuple[str, str]]) -> list[dict[str, Any]]:
        from ..pipelines import answer_questions

        questions = [q for q, _ in items]
        contexts = [c for _, c in items]
        predictions = answer_questions(self.model, self.tokenizer, questions, contexts, self.inference)
        return [dataclasses.asdict(p) for p in predictions]

    def run_fill_mask(self, items: list[tuple[str, int]]) -> list[list[list[dict[str, Any]]]]:
        """fill_mask takes one text: the batch's texts run one after another (in this thread)."""
        from ..pipelines import fill_mask

        return [
            [
                [dataclasses.asdict(c) for c in mask]
                for mask in fill_mask(self.model, self.tokenizer, text, top_k)
            ]
            for text, top_k in items
        ]

    # ------------------------------------------------------------------------------- token counts
    def count_tokens(self, kind: str, items: Sequence[Any]) -> int:
        """The tokens a request puts in a batch, specials included: truncated to the embedding
        window for /embed, the whole text for the windowed tasks (its windows cover it)."""
        if kind == "embed":
            texts, cap = list(items), self.embedder.max_length
        elif kind == "fill-mask":
            texts, cap = [text for text, _ in items], self.embedder.max_length
        elif kind in ("classify", "qa"):
            texts, cap = [" ".join(t for t in item if t) for item in items], None
        else:
            texts, cap = list(items), None
        return sum(min(n, cap) if cap else n for n in self.token_lengths(texts))

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Each text's token count with [CLS] and [SEP] (or <s> and </s>)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return [len(self.tokenizer(t)["input_ids"]) for t in texts]
        return [len(e.ids) + 2 for e in backend.encode_batch(texts, add_special_tokens=False)]

    @property
    def routes(self) -> list[str]:
        return list(self.runners)


def load_service(checkpoint: str | os.PathLike[str], settings: ServeSettings) -> ModelService:
    """Load a checkpoint (any family; torch or an ONNX export) and its runners."""
    from ..pipelines import InferenceSettings, detect_task
    from ..pipelines.common import check_vocabulary, load_tokenizer, torch_device

    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise BertForgeError(
            f"{path} is not a checkpoint directory (no config.json); pass a directory saved by "
            "save_pretrained, bertforge finetune or bertforge export"
        )
    model_type = checkpoint_model_type(path)
    kind = checkpoint_head_kind(path)
    dtype = torch.bfloat16 if settings.bf16 else None
    tokenizer = load_tokenizer(path)
    check_vocabulary(tokenizer, AutoConfig.from_pretrained(path), path)  # before loading warns
    if settings.backend == "onnx":
        model = _load_onnx(path)
        task = detect_task(path) if kind in TASK_HEADS else None
    else:
        from ..export.runtime import is_onnx_export

        if is_onnx_export(path):
            raise BertForgeError(
                f"{path} is an ONNX model (bertforge export or bertforge quantize); serve it with --backend onnx"
            )
        device = torch_device(settings.device)
        model, task = _load_torch(path, kind)
        # bf16: the model's own linear weights converted once, shared by the embedder and every
        # route (bertforge.inference); no autocast, no second copy.
        model = convert_for_inference(model.to(device), dtype)
    embedder = Embedder(
        model, tokenizer, batch_size=settings.batch_size, dtype=dtype, **embedding_settings(path)
    )
    inference = (
        InferenceSettings.for_checkpoint(path, task, batch_size=settings.batch_size, dtype=dtype)
        if task is not None
        else None
    )
    service = ModelService(
        path=path,
        name=settings.model_name or path.resolve().name,
        model_type=model_type,
        head_kind=kind,
        task=task,
        model=model,
        tokenizer=tokenizer,
        embedder=embedder,
        inference=inference,
        settings=settings,
    )
    service.runners["embed"] = service.run_embed
    route = HEAD_ROUTES.get(kind or "")
    if route == "classify" and task in ("classification", "regression"):
        service.runners["classify"] = service.run_classify
    elif route == "ner":
        service.runners["ner"] = service.run_ner
    elif route == "qa":
        service.runners["qa"] = service.run_qa
    elif route == "fill-mask":
        service.runners["fill-mask"] = service.run_fill_mask
    logger.info(
        "serving %s (%s, %s head, task %s): %s", path, model_type, kind, task, ", ".join(service.runners)
    )
    return service
