"""BertConfig: every field of BERT's ``config.json``, named presets, and Hugging Face JSON I/O.

The field names are Hugging Face's, so a ``config.json`` written by transformers loads here and the
other way round. Keys this dataclass does not model (``architectures``, ``transformers_version``,
``gradient_checkpointing`` ...) are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .errors import BertForgeError
from .fileio import atomic_write_json, read_text_file

CONFIG_NAME = "config.json"

# Activations bertforge implements; aliases map to what transformers calls the same function.
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish")


@dataclass
class PretrainedConfig:
    """What every family's config shares: task-head labels, unknown keys kept on round trip, and
    ``config.json`` I/O. A family subclasses it as a dataclass with Hugging Face's field names and
    sets ``model_type``; :func:`bertforge.auto.config_class_for` picks the subclass from the file.

    Generic code (embedding, pipelines, training) reads ``vocab_size``, ``hidden_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``max_position_embeddings``, ``pad_token_id``
    and ``type_vocab_size`` (0 or 1: the family has no segment embeddings to feed); a family whose
    config.json spells them differently (DistilBERT's ``dim``, ``n_layers``) exposes them as properties.
    """

    model_type: ClassVar[str] = ""

    # Task heads. id2label decides num_labels when both are given, as in transformers.
    num_labels: int = 2
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None
    # Attention heads removed from each layer, by their original index (``bertforge prune``);
    # transformers 4.x's key and meaning, so those versions build the same smaller shapes on load.
    pruned_heads: dict[int, list[int]] = field(default_factory=dict)
    # Unknown config.json keys, preserved on round trip.
    extra: dict[str, Any] = field(default_factory=dict)

    if TYPE_CHECKING:
        # The family-agnostic names generic code reads, declared for the type checker only: at
        # runtime they are not defined here, so they add no dataclass fields. A family defines each
        # as a dataclass field (BERT, RoBERTa, ALBERT) or a read-only property (DistilBERT).
        @property
        def vocab_size(self) -> int: ...
        @property
        def hidden_size(self) -> int: ...
        @property
        def num_hidden_layers(self) -> int: ...
        @property
        def num_attention_heads(self) -> int: ...
        @property
        def max_position_embeddings(self) -> int: ...
        @property
        def pad_token_id(self) -> int | None: ...  # ALBERT allows None
        @property
        def type_vocab_size(self) -> int: ...  # 0 or 1: no segment embeddings to feed

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
        else:
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_labels)}
        if self.label2id is None:
            self.label2id = {label: i for i, label in self.id2label.items()}
        else:
            self.label2id = {str(k): int(v) for k, v in self.label2id.items()}
        # config.json keys are strings ("0": [1, 3]); empty layers are dropped.
        self.pruned_heads = {
            int(layer): sorted({int(h) for h in heads}) for layer, heads in self.pruned_heads.items() if heads
        }
        self.validate()

    def validate(self) -> None:
        """Raise :class:`BertForgeError` naming the first invalid value and how to fix it."""
        if self.num_labels < 1:
            raise BertForgeError(f"num_labels ({self.num_labels}) must be at least 1 (1 means regression)")
        if self.problem_type not in (
            None,
            "regression",
            "single_label_classification",
            "multi_label_classification",
        ):
            raise BertForgeError(
                f"problem_type {self.problem_type!r} is not supported; choose regression, "
                "single_label_classification or multi_label_classification"
            )
        if self.pruned_heads:
            self._check_pruned_heads()

    def _check_pruned_heads(self) -> None:
        layers, heads = self.num_hidden_layers, self.num_attention_heads
        for layer, pruned in self.pruned_heads.items():
            if not 0 <= layer < layers:
                raise BertForgeError(
                    f"pruned_heads names layer {layer}, but the model has layers 0-{layers - 1}; "
                    "fix pruned_heads in config.json"
                )
            outside = [h for h in pruned if not 0 <= h < heads]
            if outside:
                raise BertForgeError(
                    f"pruned_heads of layer {layer} names head(s) {outside}, but each layer has heads "
                    f"0-{heads - 1}; fix pruned_heads in config.json"
                )
            if len(pruned) == heads:
                raise BertForgeError(
                    f"pruned_heads removes all {heads} heads of layer {layer}; bertforge keeps at least "
                    "one head per layer (prune fewer heads of it)"
                )

    def attention_heads(self, layer: int) -> int:
        """Heads layer ``layer`` keeps: num_attention_heads less its pruned heads."""
        return self.num_attention_heads - len(self.pruned_heads.get(layer, ()))

    @property
    def max_sequence_length(self) -> int:
        """The most tokens one input may hold: max_position_embeddings, less any positions a family
        reserves (RoBERTa's start at padding_idx + 1)."""
        return int(self.max_position_embeddings)

    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BertForgeError(f"{name} ({value!r}) must be a positive integer")

    def _check_probabilities(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise BertForgeError(f"{name} ({value!r}) must be in [0, 1); BERT uses 0.1")

    # ------------------------------------------------------------------- JSON
    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        # to_dict always writes model_type; keeping it out of extra makes load(save(c)) == c.
        model_type = extra.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise BertForgeError(
                f"config model_type is {model_type!r}, not {cls.model_type!r}; load it with the auto "
                "classes (bertforge.AutoModel, AutoConfig), which pick the family from config.json"
            )
        # Old configs spell num_labels only through id2label; newer ones may write both.
        if "id2label" in kwargs and kwargs["id2label"] is None:
            del kwargs["id2label"]
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model_type": self.model_type}
        data.update(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                data[f.name] = getattr(self, f.name)
        data["id2label"] = {str(k): v for k, v in (self.id2label or {}).items()}
        # Written only when a head is pruned, as transformers 4.x writes only non-default keys.
        pruned = data.pop("pruned_heads")
        if pruned:
            data["pruned_heads"] = {str(k): v for k, v in pruned.items()}
        data["model_type"] = self.model_type
        return data

    @classmethod
    def from_json_file(cls: type[ConfigT], path: str | os.PathLike[str]) -> ConfigT:
        data = read_config_json(path)
        try:
            return cls.from_dict(data)
        except BertForgeError as err:  # an impossible value: say which file holds it
            raise BertForgeError(f"{path}: {err}") from None

    def to_json_file(self, path: str | os.PathLike[str]) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_pretrained(cls: type[ConfigT], path: str | os.PathLike[str], **overrides: Any) -> ConfigT:
        """Read ``config.json`` from a checkpoint directory (or the file itself)."""
        config = cls.from_json_file(config_path(path))
        return config.replace(**overrides) if overrides else config

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory) / CONFIG_NAME
        self.to_json_file(path)
        return path

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        """A copy with some fields changed; changing num_labels alone resets the label names."""
        if "num_labels" in changes and "id2label" not in changes:
            changes["id2label"] = None
            changes.setdefault("label2id", None)
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise BertForgeError(f"unknown config field(s) {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


ConfigT = TypeVar("ConfigT", bound=PretrainedConfig)


def config_path(path: str | os.PathLike[str]) -> Path:
    """The config.json of a checkpoint directory, or ``path`` itself when it is the file."""
    path = Path(path)
    if not path.exists():
        raise BertForgeError(
            f"checkpoint {path} does not exist; pass a directory holding config.json and weights"
        )
    return path / CONFIG_NAME if path.is_dir() else path


def read_config_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object of a config file, or a :class:`BertForgeError` saying what is wrong with it."""
    path = Path(path)
    text = read_text_file(path, "config file", "a checkpoint directory needs a config.json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BertForgeError(f"{path} is not valid JSON ({err}); fix or regenerate the file") from None
    if not isinstance(data, dict):
        raise BertForgeError(f"{path} must hold a JSON object of config fields")
    return data


@dataclass
class BertConfig(PretrainedConfig):
    """Architecture of a BERT model, with Hugging Face's names and defaults (bert-base-uncased).

    ``sinusoidal_pos_embds`` (DistilBERT's key) replaces the learned positions with the fixed
    sin/cos table of the Transformer paper, frozen. The table is saved as the position-embedding
    weight, so transformers (which does not know the key for BERT and keeps it as an extra
    attribute) loads the checkpoint as a plain BertModel with the same outputs.
    """

    model_type: ClassVar[str] = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = True
    sinusoidal_pos_embds: bool = False

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`BertForgeError` naming the first invalid value and how to fix it."""
        self._check_positive(
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        )
        if self.hidden_size % self.num_attention_heads != 0:
            suggestion = max(d for d in range(1, self.num_attention_heads + 1) if self.hidden_size % d == 0)
            raise BertForgeError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); try num_attention_heads={suggestion}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise BertForgeError(
                f"hidden_act {self.hidden_act!r} is not supported; choose from {', '.join(ACTIVATIONS)}"
            )
        self._check_probabilities("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
        if self.position_embedding_type != "absolute":
            raise BertForgeError(
                f"position_embedding_type {self.position_embedding_type!r} is not supported; "
                "bertforge implements BERT's absolute positions ('absolute'; for fixed sin/cos "
                "positions set sinusoidal_pos_embds = true)"
            )
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise BertForgeError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )
        if self.layer_norm_eps <= 0:
            raise BertForgeError(f"layer_norm_eps ({self.layer_norm_eps}) must be positive; BERT uses 1e-12")
        if self.initializer_range <= 0:
            raise BertForgeError(
                f"initializer_range ({self.initializer_range}) must be positive; BERT uses 0.02"
            )
        super().validate()

    # --------------------------------------------------------------- derived
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # --------------------------------------------------------------- presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> BertConfig:
        """Build a named architecture, e.g. ``bert-tiny``, ``bert-L4-H256``, ``bert-base``."""
        canonical = PRESET_ALIASES.get(name, name)
        if canonical not in PRESETS:
            raise BertForgeError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}")
        return cls(**{**PRESETS[canonical], **overrides})


def _compact(layers: int, hidden: int) -> dict[str, Any]:
    # Google's 24 compact BERTs (Turc et al., 2019): heads = H/64, feed-forward = 4H.
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": hidden // 64,
        "intermediate_size": 4 * hidden,
    }


PRESETS: dict[str, dict[str, Any]] = {
    f"bert-L{layers}-H{hidden}": _compact(layers, hidden)
    for layers in (2, 4, 6, 8, 10, 12)
    for hidden in (128, 256, 512, 768)
}
PRESETS["bert-large"] = {
    "num_hidden_layers": 24,
    "hidden_size": 1024,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
}
PRESET_ALIASES: dict[str, str] = {
    "bert-tiny": "bert-L2-H128",
    "bert-mini": "bert-L4-H256",
    "bert-small": "bert-L4-H512",
    "bert-medium": "bert-L8-H512",
    "bert-base": "bert-L12-H768",
}


def preset_names() -> list[str]:
    """All preset names, aliases first."""
    return [*PRESET_ALIASES, "bert-large", *(n for n in PRESETS if n != "bert-large")]
