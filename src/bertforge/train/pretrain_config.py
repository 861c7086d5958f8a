"""The typed config tree of a pretraining run: ``[model]``, ``[data]``, ``[optim]``, ``[schedule]``,
``[train]`` (with its phases) and ``[distill]``, each section checking its own values.

:mod:`.recipe` reads it from a TOML recipe and ``--section.key value`` flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..config import BertConfig
from ..errors import BertForgeError
from .durations import parse_duration
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
        from ..data.masking_config import MaskingConfig

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
        from ..data.masking_tables import build_masking_tables

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
