"""A pretraining run as one typed config tree, read from a TOML recipe and ``--section.key value`` flags.

The groups follow Cramming: *what model* (``[model]``), *what data* (``[data]``), *how to optimise*
(``[optim]``, ``[schedule]``) and *how to run* (``[train]``), plus the output directory. The
defaults are a small sanity run. Every key is checked against the dataclass fields, so a typo is
an error that lists the valid keys instead of a silently ignored setting, and every value is
coerced to the field's declared type (CLI values arrive as strings).

The resolved config is written back as TOML (:func:`dump_toml`), which is itself a valid recipe:
``bertforge pretrain --config OUT/resolved_config.toml`` reruns the same thing.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published before it joined the standard library
    import tomli as tomllib

from ..config import BertConfig
from ..errors import BertForgeError
from ..fileio import read_text_file
from .optim import OptimConfig, ScheduleConfig

DTYPES = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")
PARALLEL = ("ddp", "fsdp")
OBJECTIVES = ("mlm+nsp", "mlm+sop", "mlm")


@dataclass
class ModelSection:
    """The architecture: a preset, a ``config.json`` (file or checkpoint directory), or a checkpoint to
    continue pretraining from, plus overrides.

    The family (``model_type``: bert, roberta, albert, distilbert) comes from the config file or
    checkpoint when one is given, else from the preset's name (``roberta-tiny`` is a RoBERTa), else
    from ``model_type``. ``vocab_size`` is never set here: it comes from the dataset, so model and
    data cannot disagree.
    """

    preset: str = "bert-mini"
    model_type: str | None = None
    config: str | None = None  # path to config.json or a directory holding one; wins over preset
    init_from: str | None = None  # checkpoint whose weights (and architecture) start the run
    hidden_size: int | None = None
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    intermediate_size: int | None = None
    max_position_embeddings: int | None = None
    hidden_act: str | None = None
    hidden_dropout_prob: float | None = None
    attention_probs_dropout_prob: float | None = None

    def __post_init__(self) -> None:
        if self.config is None and self.init_from is None:
            self.model_config(vocab_size=128)  # validates family, preset name and overrides early

    def overrides(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("preset", "model_type", "config", "init_from")
            and getattr(self, f.name) is not None
        }

    def family(self) -> str:
        """The model_type this section builds."""
        from ..auto import FAMILIES, checkpoint_model_type

        source = self.init_from or self.config
        if source is not None:
            return checkpoint_model_type(source)
        if self.model_type is not None:
            return self.model_type
        # "albert-base" -> albert; "bert-mini" -> bert. Longest name first: "distilbert" before "bert".
        for model_type in sorted(FAMILIES, key=len, reverse=True):
            if self.preset.startswith(f"{model_type}-"):
                return model_type
        return "bert"

    def model_config(self, vocab_size: int, pad_token_id: int | None = None) -> Any:
        """The family's config for a dataset with ``vocab_size`` tokens."""
        from ..auto import config_class_for

        overrides = {**self.overrides(), "vocab_size": vocab_size}
        if pad_token_id is not None:
            overrides["pad_token_id"] = pad_token_id
        config_class = config_class_for(self.family())
        source = self.init_from or self.config
        if source is not None:
            return config_class.from_pretrained(source, **overrides)
        from_preset = getattr(config_class, "from_preset", None)
        if from_preset is None:
            raise BertForgeError(f"the {self.family()} family has no presets; pass --model.config DIR")
        return from_preset(self.preset, **overrides)

    def bert_config(self, vocab_size: int, pad_token_id: int = 0) -> BertConfig:
        """The BERT config of a BERT section (kept for callers that predate the other families)."""
        config = self.model_config(vocab_size, pad_token_id)
        if not isinstance(config, BertConfig):
            raise BertForgeError(f"model section builds a {config.model_type}, not a BERT")
        return config


@dataclass
class DataSection:
    """The dataset (built by ``bertforge data build``), how instances are cut and how tokens are masked."""

    dataset: str | None = None  # dataset directory; required to train
    tokenizer: str | None = None  # default: DATASET/tokenizer, else the dataset directory itself
    objective: str = "mlm+nsp"  # "mlm+nsp" | "mlm+sop" | "mlm"
    max_seq_length: int = 128  # used when [[train.phases]] is empty
    short_seq_prob: float = 0.1
    masking: str = "token"  # "token" | "whole-word" | "span" | "ngram" | "phrase" | "entity" (ERNIE)
    mlm_probability: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    max_predictions_per_seq: int = 20
    span_geometric_p: float = 0.2
    max_span_length: int = 10
    max_ngram: int = 3
    dynamic: bool = True  # False = static masks: dupe_factor fixed copies per instance
    dupe_factor: int = 10
    # SpanBERT: emit span boundaries and train the span-boundary objective (masking "span", objective "mlm")
    span_boundary: bool = False
    # MacBERT MLM as correction (masking "whole-word" or "ngram"): similar word / random / keep, no [MASK]
    correction: bool = False
    similar_words: str | None = None  # file: `word<TAB>sim1 sim2 ...` lines or JSON {word: [...]}; wins
    similar_from: str | None = None  # else: nearest neighbours in this checkpoint's input embeddings
    similar_top_k: int = 10  # neighbours kept per word (similar_from)
    entity_lexicon: str | None = None  # ERNIE entity masking: one entity per line

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise BertForgeError(
                f"unknown data.objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}"
            )
        self.masking_config()  # the data package validates strategy and probabilities
        self.instance_config(self.max_seq_length)
        if self.span_boundary and self.objective != "mlm":
            raise BertForgeError(
                f"data.span_boundary (SpanBERT) trains without a sentence objective; data.objective "
                f'is {self.objective!r}: use "mlm"'
            )
        if self.correction and self.similar_words is None and self.similar_from is None:
            raise BertForgeError(
                "data.correction (MacBERT) needs similar words: set data.similar_words FILE or "
                "data.similar_from CHECKPOINT (nearest neighbours in its word embeddings)"
            )
        if self.similar_top_k < 1:
            raise BertForgeError(f"data.similar_top_k must be >= 1, got {self.similar_top_k}")

    def check_strategy(self, strategy: str, where: str = "data.masking") -> None:
        """Errors for a masking strategy this section cannot run (a phase's or its own)."""
        try:
            self.masking_config(strategy=strategy)
        except BertForgeError as err:
            raise BertForgeError(f"{where}: {err}") from None
        if strategy == "entity" and self.entity_lexicon is None:
            raise BertForgeError(f'{where} "entity" needs data.entity_lexicon FILE (one entity per line)')

    def instance_config(self, max_seq_length: int) -> Any:
        from ..data.instances import InstanceConfig

        return InstanceConfig(
            objective=self.objective, max_seq_length=max_seq_length, short_seq_prob=self.short_seq_prob
        )

    def masking_config(self, max_predictions_per_seq: int | None = None, strategy: str | None = None) -> Any:
        """The masking of a phase: ``strategy`` (a phase's ``masking``) overrides data.masking."""
        from ..data.masking import MaskingConfig

        return MaskingConfig(
            strategy=strategy or self.masking,
            mlm_probability=self.mlm_probability,
            mask_token_prob=self.mask_token_prob,
            random_token_prob=self.random_token_prob,
            max_predictions_per_seq=max_predictions_per_seq or self.max_predictions_per_seq,
            span_geometric_p=self.span_geometric_p,
            max_span_length=self.max_span_length,
            max_ngram=self.max_ngram,
            dynamic=self.dynamic,
            dupe_factor=self.dupe_factor,
            span_boundary=self.span_boundary,
            correction=self.correction,
        )

    def masking_tables(self, tokenizer: Any, strategies: list[str]) -> Any:
        """The similar-word table, entity lexicon and vocabulary classes ``strategies`` need (built
        once per process; None when none is needed). Nearest neighbours (data.similar_from) also
        rank the frequent multi-token words of the training split."""
        from ..data.masking import build_masking_tables

        dataset = None
        if self.correction and self.similar_words is None and self.dataset is not None:
            from ..data.dataset import TokenDataset

            dataset = TokenDataset.open(self.dataset, split="train")
        return build_masking_tables(
            tokenizer,
            strategies=strategies,
            correction=self.correction,
            similar_words=self.similar_words,
            similar_from=self.similar_from,
            similar_top_k=self.similar_top_k,
            entity_lexicon=self.entity_lexicon,
            dataset=dataset,
        )


@dataclass
class Phase:
    """One stage of a multi-length run (BERT: 90% of steps at 128 tokens, then 10% at 512)."""

    fraction: float  # of the steps (or of the time budget)
    max_seq_length: int
    batch_size: int | None = None  # default: train.batch_size
    max_predictions_per_seq: int | None = (
        None  # default: data.max_predictions_per_seq (BERT: 20 at 128, 80 at 512)
    )
    masking: str | None = None  # default: data.masking (ERNIE: "token", then "phrase", then "entity")

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise BertForgeError(f"train.phases fraction must be in (0, 1], got {self.fraction}")
        if self.max_seq_length < 8:
            raise BertForgeError(f"train.phases max_seq_length must be >= 8, got {self.max_seq_length}")
        if self.batch_size is not None and self.batch_size < 1:
            raise BertForgeError(f"train.phases batch_size must be >= 1, got {self.batch_size}")


@dataclass
class TrainSection:
    batch_size: int = 32  # sequences per micro-batch per process
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int | None = None  # optimizer steps; unset = `epochs` epochs, or until the budget is spent
    epochs: float = 1.0  # used when max_steps and budget are unset; counted in the first phase's instances
    seed: int = 0
    dtype: str = "auto"  # "bf16" | "fp32" | "auto" (bf16 on CUDA with bf16 and on CPUs with AMX)
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # How processes under torchrun share the work: "ddp" replicates the model, "fsdp" shards
    # parameters, gradients and optimizer state (FSDP2) and writes sharded (DCP) checkpoints.
    parallel: str = "ddp"
    eval_every: int = 0  # steps between evaluations; 0 = only at the end
    eval_batches: int = 10
    save_every: int = 0  # steps between checkpoints; 0 = only at the end (and on a signal)
    keep_last: int = 2  # checkpoints kept on disk
    log_every: int = 10
    budget: str | None = None  # wall-clock budget, e.g. "2h", "90m", "1h30m", "30s"; stretches the schedule
    tensorboard: bool = False
    phases: list[Phase] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "eval_batches", "keep_last", "log_every"):
            if getattr(self, name) < 1:
                raise BertForgeError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise BertForgeError(
                    f"train.{name} must be >= 0 (0 = only at the end), got {getattr(self, name)}"
                )
        if self.max_steps is not None and self.max_steps < 1:
            raise BertForgeError(f"train.max_steps must be >= 1, got {self.max_steps}")
        if not self.epochs > 0:
            raise BertForgeError(f"train.epochs must be > 0, got {self.epochs}")
        if self.dtype not in DTYPES:
            raise BertForgeError(f"unknown train.dtype {self.dtype!r}; choose from {', '.join(DTYPES)}")
        if self.device not in DEVICES:
            raise BertForgeError(f"unknown train.device {self.device!r}; choose from {', '.join(DEVICES)}")
        if self.parallel not in PARALLEL:
            raise BertForgeError(
                f"unknown train.parallel {self.parallel!r}; choose from {', '.join(PARALLEL)}"
            )
        if self.budget is not None:
            parse_duration(self.budget)
        if self.phases:
            total = sum(p.fraction for p in self.phases)
            if abs(total - 1.0) > 1e-6:
                raise BertForgeError(
                    f"train.phases fractions must add up to 1, got {' + '.join(f'{p.fraction:g}' for p in self.phases)} = {total:g}"
                )

    @property
    def budget_seconds(self) -> float | None:
        return None if self.budget is None else parse_duration(self.budget)


@dataclass
class DistillSection:
    """Distillation from a teacher (DistilBERT, Sanh et al. 2019); off while ``teacher`` is unset.

    The loss is ``alpha_ce`` * KL(teacher || student) on temperature-softened vocabulary
    distributions at the masked positions (times temperature^2) + ``alpha_mlm`` * the student's own
    MLM cross-entropy + ``alpha_cos`` * (1 - cosine) between the student's and the teacher's last
    hidden states at the non-padded positions (skipped, with a log line, when their widths differ).
    With ``init_from_teacher`` a fresh student starts from the teacher's embeddings and the layers
    ``teacher_layers`` (default: spread evenly, first and last included; DistilBERT took
    [0, 2, 4, 7, 9, 11] of BERT-base's 12).
    """

    teacher: str | None = None  # checkpoint directory of the teacher (any family with a masked-LM head)
    temperature: float = 2.0
    alpha_ce: float = 5.0
    alpha_mlm: float = 2.0
    alpha_cos: float = 1.0
    init_from_teacher: bool = True
    teacher_layers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise BertForgeError(f"distill.temperature must be > 0, got {self.temperature}")
        for name in ("alpha_ce", "alpha_mlm", "alpha_cos"):
            if getattr(self, name) < 0:
                raise BertForgeError(f"distill.{name} must be >= 0, got {getattr(self, name)}")
        if self.alpha_ce == self.alpha_mlm == self.alpha_cos == 0:
            raise BertForgeError("distill.alpha_ce, alpha_mlm and alpha_cos are all 0; give one a weight")
        layers = self.teacher_layers
        if any(i < 0 for i in layers) or len(set(layers)) != len(layers):
            raise BertForgeError(
                f"distill.teacher_layers must be distinct layer indices >= 0, got {self.teacher_layers}"
            )

    @property
    def enabled(self) -> bool:
        return self.teacher is not None


@dataclass
class PretrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainSection = field(default_factory=TrainSection)
    distill: DistillSection = field(default_factory=DistillSection)
    output_dir: str = "runs/pretrain"

    def __post_init__(self) -> None:
        if self.distill.enabled and self.data.objective != "mlm":
            raise BertForgeError(
                f"distillation trains the masked-LM objective alone (as DistilBERT); data.objective is "
                f"{self.data.objective!r}, set --data.objective mlm"
            )
        if self.distill.enabled and self.data.span_boundary:
            raise BertForgeError(
                "distillation does not train SpanBERT's span-boundary objective; set --data.span_boundary false"
            )
        if self.train.budget is not None and self.schedule.warmup >= 1:
            raise BertForgeError(
                f"schedule.warmup {self.schedule.warmup:g} is a step count; with train.budget give a "
                "fraction of the budget instead, e.g. --schedule.warmup 0.05"
            )

        for i, phase in enumerate(self.phases()):
            self.data.check_strategy(self.phase_masking(phase), f"train.phases[{i}].masking")

    def phase_masking(self, phase: Phase) -> str:
        """The masking strategy of ``phase``: its own ``masking``, else data.masking."""
        return phase.masking or self.data.masking

    def phases(self) -> list[Phase]:
        """The phases to run; one phase at data.max_seq_length when none are configured."""
        return self.train.phases or [Phase(fraction=1.0, max_seq_length=self.data.max_seq_length)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------- durations
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_duration(text: str | float) -> float:
    """Seconds in "2h", "90m", "1h30m", "45s" or a bare number of seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        stripped = text.strip().lower()
        try:
            seconds = float(stripped)
        except ValueError:
            parts = _DURATION.findall(stripped)
            if not parts or "".join(n + u for n, u in parts) != stripped.replace(" ", ""):
                raise BertForgeError(
                    f"cannot read the duration {text!r}; write e.g. 2h, 90m, 1h30m, 45s or seconds"
                ) from None
            seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if not seconds > 0:
        raise BertForgeError(f"a time budget must be positive, got {text!r}")
    return seconds


# ---------------------------------------------------------------------------------- building
def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown_key(key: str, valid: typing.Iterable[str], where: str) -> BertForgeError:
    valid = list(valid)
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return BertForgeError(f"unknown recipe key {key!r}{hint}; valid keys in {where}: {', '.join(valid)}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` (from TOML, or a string from the command line) as type ``tp``, or a clear error."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)

    def bad(expected: str) -> BertForgeError:
        return BertForgeError(f"recipe key {key!r} must be {expected}, got {value!r}")

    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise bad("true or false")
    if tp is int:
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise bad("an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad("an integer")
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. budget = 3600
        raise bad("a string")
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text if text.startswith(("[", "{")) else f"[{text}]")
            except json.JSONDecodeError:
                raise bad("a list (e.g. 0.9,0.98 or JSON)") from None
        if not isinstance(value, list | tuple):
            raise bad("a list")
        if origin is tuple:
            if len(value) != len(args):
                raise bad(f"a list of {len(args)} values")
            return tuple(_coerce(a, v, key) for a, v in zip(args, value, strict=True))
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad("a table")
        return _build(tp, value, key)  # type: ignore[arg-type]
    raise AssertionError(f"recipe field {key} has unsupported type {tp}")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    fields = _fields(cls)
    for key in data:
        if key not in fields:
            raise _unknown_key(
                f"{where}.{key}" if where else key, fields, f"[{where}]" if where else "the recipe"
            )
    kwargs = {}
    for name, tp in fields.items():
        if name in data:
            kwargs[name] = _coerce(tp, data[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except BertForgeError as err:
        if where and where not in str(err):
            raise BertForgeError(f"[{where}] {err}") from None
        raise
    except TypeError as err:  # a required field (Phase.fraction) is missing
        raise BertForgeError(f"[{where}] is incomplete: {err}; valid keys: {', '.join(fields)}") from None


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """``["--optim.lr", "1e-4", "--train.max_steps=3"]`` -> ``{"optim.lr": "1e-4", "train.max_steps": "3"}``."""
    overrides: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise BertForgeError(
                f"unexpected argument {arg!r}; recipe overrides look like --section.key VALUE"
            )
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(argv):
            i += 1
            value = argv[i]
        else:
            raise BertForgeError(f"--{key} needs a value, e.g. --{key} VALUE")
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def _apply_override(raw: dict[str, Any], key: str, value: str) -> None:
    parts = key.split(".")
    sections = _fields(PretrainConfig)
    if parts[0] not in sections:
        raise _unknown_key(
            key, [f"{s}.KEY" if dataclasses.is_dataclass(t) else s for s, t in sections.items()], "the recipe"
        )
    if dataclasses.is_dataclass(sections[parts[0]]):
        if len(parts) != 2:
            raise BertForgeError(
                f"override {key!r} must name one key of a section, e.g. --{parts[0]}.KEY VALUE"
            )
        section = raw.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise BertForgeError(f"recipe key {parts[0]!r} must be a table")
        section[parts[1]] = value
    elif len(parts) == 1:
        raw[key] = value
    else:
        raise _unknown_key(key, sections, "the recipe")


def config_from_dict(raw: dict[str, Any]) -> PretrainConfig:
    return _build(PretrainConfig, raw, "")  # type: ignore[no-any-return]


def load_recipe(path: str | Path | None = None, overrides: dict[str, str] | None = None) -> PretrainConfig:
    """Read a TOML recipe (or start from the defaults) and apply ``section.key -> value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        text = read_text_file(path, "recipe", "pass a TOML file (see the recipes/ directory)")
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise BertForgeError(f"recipe {path} is not valid TOML: {err}") from None
    for key, value in (overrides or {}).items():
        _apply_override(raw, key, value)
    return config_from_dict(raw)


# ------------------------------------------------------------------------------------ dumping
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def _toml_table(values: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in values.items():
        if value is None:
            lines.append(f"# {key} is unset")
        elif not (isinstance(value, list) and value and isinstance(value[0], dict)):
            lines.append(f"{key} = {_toml_value(value)}")
    return lines


def dump_toml(config: PretrainConfig) -> str:
    """The config as a TOML recipe (unset optional keys become comments, TOML has no null)."""
    data = config.to_dict()
    lines = [
        "# Resolved bertforge pretraining config; reusable as a recipe.",
        *_toml_table({k: v for k, v in data.items() if not isinstance(v, dict)}),
    ]
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines += ["", f"[{section}]", *_toml_table(values)]
        for key, value in values.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                for table in value:
                    lines += ["", f"[[{section}.{key}]]", *_toml_table(table)]
    return "\n".join(lines) + "\n"
