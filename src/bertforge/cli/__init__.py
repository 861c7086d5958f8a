"""The ``bertforge`` command line: subcommands that parse arguments, call the library, print results.

User mistakes (a missing file, a bad value) print one line, ``bertforge: error: ...`` naming the
problem and the fix, and exit with code 2 and no traceback. Everything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .common import EXIT_USAGE, Parser, output_file, positive_int
from .compress import add_compress_commands
from .demo import add_demo_command
from .distill import add_distill_command
from .export import add_export_command
from .pretrain import add_data_commands, add_pretrain_command
from .serve import add_serve_command
from .tasks import add_task_commands
from .viz import add_viz_command


# ----------------------------------------------------------------------------------- tokenize
def cmd_tokenize(args: argparse.Namespace) -> None:
    from ..tokenization import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    kwargs: dict[str, Any] = {"return_offsets_mapping": True, "return_token_type_ids": True}
    if args.max_length:
        kwargs.update(truncation=True, max_length=args.max_length)
    encoding = tokenizer(args.text, args.pair, **kwargs)
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    rows = list(
        zip(
            tokens, encoding["input_ids"], encoding["token_type_ids"], encoding["offset_mapping"], strict=True
        )
    )
    if args.json:
        print(
            json.dumps(
                {
                    "tokens": tokens,
                    "input_ids": encoding["input_ids"],
                    "token_type_ids": encoding["token_type_ids"],
                    "offsets": [list(o) for o in encoding["offset_mapping"]],
                },
                ensure_ascii=False,
            )
        )
        return
    width = max(len(t) for t in tokens)
    print(f"{'token':<{width}}  {'id':>6}  type  offsets")
    for token, token_id, type_id, (start, end) in rows:
        print(f"{token:<{width}}  {token_id:>6}  {type_id:>4}  {start}-{end}")
    print(f"{len(tokens)} tokens")


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    import time

    from ..tokenization import AlbertTokenizer, BertTokenizer, RobertaTokenizer

    start = time.perf_counter()
    progress = sys.stderr.isatty()
    if args.type == "wordpiece":
        tokenizer: Any = BertTokenizer.train(
            [str(p) for p in args.files],
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            lowercase=not args.cased,
            tokenize_chinese_chars=not args.no_chinese_chars,
            limit_alphabet=args.limit_alphabet,
            show_progress=progress,
            save_to=args.out,
        )
        files = "vocab.txt"
    elif args.type == "bpe":
        tokenizer = RobertaTokenizer.train(
            args.files,
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            show_progress=progress,
            save_to=args.out,
        )
        files = "vocab.json, merges.txt"
    else:
        tokenizer = AlbertTokenizer.train(
            args.files,
            vocab_size=args.vocab_size,
            lowercase=not args.cased,
            show_progress=progress,
            save_to=args.out,
        )
        files = "spiece.model"
    kind = {"wordpiece": "WordPiece", "bpe": "byte-level BPE", "unigram": "Unigram"}[args.type]
    print(f"trained a {tokenizer.vocab_size}-token {kind} vocabulary in {time.perf_counter() - start:.1f}s")
    print(f"saved {files}, tokenizer.json, tokenizer_config.json, special_tokens_map.json to {args.out}")


# --------------------------------------------------------------------------------------- info
# Head modules by their transformers names (every family), and what to call them; a head module not
# listed is named after the checkpoint's head kind.
_HEAD_NAMES = {
    "cls.predictions.": "masked-LM head",  # BERT
    "lm_head.": "masked-LM head",  # RoBERTa
    "predictions.": "masked-LM head",  # ALBERT
    "vocab_transform.": "masked-LM head",  # DistilBERT
    "vocab_layer_norm.": "masked-LM head",
    "vocab_projector.": "masked-LM head",
    "cls.seq_relationship.": "next-sentence head",
    "sop_classifier.": "sentence-order head",
    "classifier.": "task head",
    "pre_classifier.": "task head",  # DistilBERT
    "qa_outputs.": "task head",
}
_KIND_HEADS = {
    "masked-lm": "masked-LM head",
    "pretraining": "pretraining head",
    "next-sentence": "next-sentence head",
}


def parameter_groups(
    keys_and_sizes: dict[str, int],
    prefix: str = "bert",
    base_modules: Sequence[str] = ("embeddings", "encoder", "pooler"),
    kind: str | None = None,
) -> dict[str, int]:
    """Parameter counts by part of the model, from normalised tensor names: the base model's modules
    (``embeddings``, the layer stack as ``encoder`` whatever the family calls it, ``pooler``), then
    the heads. ``prefix`` and ``base_modules`` are the model class's (``base_model_prefix``)."""
    groups: dict[str, int] = defaultdict(int)
    for key, size in keys_and_sizes.items():
        bare = key.removeprefix(f"{prefix}.") if prefix else key
        module = bare.partition(".")[0]
        if module in base_modules:
            groups[module if module in ("embeddings", "pooler") else "encoder"] += size
            continue
        head = next((name for start, name in _HEAD_NAMES.items() if key.startswith(start)), None)
        groups[head or _KIND_HEADS.get(kind or "", "task head" if kind else "other")] += size
    return dict(groups)


def cmd_info(args: argparse.Namespace) -> None:
    from ..auto import AutoConfig, checkpoint_head_kind, checkpoint_model_type, model_class_for
    from ..checkpoint import normalize_state_dict, read_state_dict

    path = Path(args.checkpoint)
    model_type = checkpoint_model_type(path)  # an unsupported family: one line naming the supported
    config = AutoConfig.from_pretrained(path)
    kind = checkpoint_head_kind(path)
    layout = model_class_for(model_type, kind or "base")  # its prefix, base modules, ties
    prefix = layout.base_model_prefix
    state = normalize_state_dict(read_state_dict(path), prefix=prefix, layout=layout)
    # A tied tensor counts once, whether stored under both its names (old .bin files) or the tied one.
    for tied, owner in layout.weight_ties(config).items():
        if tied in state:
            state.setdefault(owner, state.pop(tied))
    sizes = {k: v.numel() for k, v in state.items()}
    groups = parameter_groups(sizes, prefix, layout.base_modules, kind)
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state.values()})
    tokenizer_files = [
        n for n in ("vocab.txt", "tokenizer.json", "vocab.json", "spiece.model") if (path / n).is_file()
    ]
    # Field names differ by family (DistilBERT: hidden_dim, activation).
    intermediate = getattr(config, "intermediate_size", getattr(config, "hidden_dim", None))
    activation = getattr(config, "hidden_act", getattr(config, "activation", None))
    layers = config.num_hidden_layers
    info = {
        "path": str(path),
        "model_type": model_type,
        "architectures": config.extra.get("architectures", []),
        "layers": layers,
        "hidden_size": config.hidden_size,
        "attention_heads": config.num_attention_heads,
        "pruned_heads": {str(k): v for k, v in config.pruned_heads.items()},
        "intermediate_size": intermediate,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "hidden_act": activation,
        "weights_dtype": dtypes,
        "parameters": {**groups, "total": sum(groups.values())},
        "per_layer": groups.get("encoder", 0) // layers,
        "labels": config.id2label if groups.get("task head") else None,
        "tokenizer": tokenizer_files or None,
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return
    print(f"checkpoint      {path}")
    print(f"architecture    {', '.join(info['architectures']) or 'unknown'} ({model_type})")
    print(
        f"shape           {layers} layers, hidden {config.hidden_size}, "
        f"{config.num_attention_heads} heads, feed-forward {intermediate}, {activation}"
    )
    print(
        f"vocabulary      {config.vocab_size} tokens, {config.max_position_embeddings} positions, "
        f"{getattr(config, 'type_vocab_size', 0)} segment types"
    )
    if config.pruned_heads:
        pruned = sum(len(h) for h in config.pruned_heads.values())
        print(f"pruned heads    {pruned} of {layers * config.num_attention_heads}: {config.pruned_heads}")
    print(f"weights         {', '.join(dtypes)}")
    print("parameters")
    for name, count in groups.items():
        extra = f"  ({info['per_layer']:,} per layer)" if name == "encoder" else ""
        print(f"  {name:<20} {count:>14,}{extra}")
    print(f"  {'total':<20} {sum(groups.values()):>14,}")
    if info["labels"]:
        print(f"labels          {info['labels']}")
    print(f"tokenizer       {', '.join(tokenizer_files) if tokenizer_files else 'none in this directory'}")


# ---------------------------------------------------------------------------------- fill-mask
def cmd_fill_mask(args: argparse.Namespace) -> None:
    from ..pipelines import fill_mask, load_masked_lm
    from ..pipelines.common import check_vocabulary, load_tokenizer

    model = load_masked_lm(args.checkpoint)  # first: an unsupported family is the error to show
    tokenizer = load_tokenizer(args.tokenizer or args.checkpoint)
    check_vocabulary(tokenizer, model.config, args.tokenizer or args.checkpoint)
    predictions = fill_mask(model, tokenizer, args.text, top_k=args.top_k)
    if args.json:
        print(json.dumps([[vars(p) for p in mask] for mask in predictions], ensure_ascii=False))
        return
    for index, candidates in enumerate(predictions):
        if len(predictions) > 1:
            print(f"{tokenizer.mask_token} #{index + 1}")
        for candidate in candidates:
            print(f"  {candidate.score:7.4f}  {candidate.token:<15} {candidate.sequence}")


# -------------------------------------------------------------------------------------- embed
def cmd_embed(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from ..embed import Embedder
    from ..fileio import atomic_open, read_text_file

    if args.input == "-":
        texts = sys.stdin.read().splitlines()
    else:
        texts = read_text_file(
            args.input, "input file", "pass a text file with one text per line, or - for stdin"
        ).splitlines()
    output = Path(args.output) if args.output else None
    fmt = args.format or (
        output.suffix.lstrip(".") if output and output.suffix in (".npy", ".jsonl") else "jsonl"
    )
    if fmt == "npy" and output is None:
        raise BertForgeError(
            "--format npy needs --output FILE.npy (binary output is not written to the terminal)"
        )
    overrides: dict[str, Any] = {"batch_size": args.batch_size}
    for name in ("pooling", "max_length"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.normalize is not None:
        overrides["normalize"] = args.normalize
    if args.dtype != "float32":
        overrides["dtype"] = getattr(torch, args.dtype)
    embedder = Embedder.from_pretrained(args.checkpoint, **overrides)
    vectors = embedder(texts, show_progress=sys.stderr.isatty()).numpy()
    if fmt == "npy":
        with atomic_open(output, "wb") as handle:  # type: ignore[arg-type]
            np.save(handle, vectors)
    else:
        lines = (
            json.dumps({"index": i, "text": t, "embedding": v.tolist()}, ensure_ascii=False) + "\n"
            for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
        )
        if output is None:
            sys.stdout.writelines(lines)
        else:
            with atomic_open(output, "w") as handle:
                handle.writelines(lines)
    if output is not None:
        print(f"wrote {len(texts)} embeddings of size {vectors.shape[1]} to {output}", file=sys.stderr)


# ------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(prog="bertforge", description="A complete, fast, hackable BERT.")
    parser.add_argument("--version", action="version", version=f"bertforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    p = sub.add_parser(
        "tokenize",
        help="show the tokens and ids of a text or a pair",
        description="Show the tokens, ids, segment ids and character offsets of a text or pair "
        "(any supported tokenizer: WordPiece, BPE, Unigram).",
    )
    p.add_argument(
        "tokenizer",
        help="tokenizer or checkpoint directory (vocab.txt, vocab.json + merges.txt, spiece.model or "
        "tokenizer.json), or a vocab.txt",
    )
    p.add_argument("text")
    p.add_argument("pair", nargs="?", default=None, help="optional second segment")
    p.add_argument(
        "--max-length", type=positive_int, help="truncate the encoding (longest_first) to this length"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser(
        "train-tokenizer",
        help="learn a WordPiece, BPE or Unigram vocabulary from text files",
        description="Learn a vocabulary from raw text files (English, Chinese, ...): BERT WordPiece "
        "(default), RoBERTa byte-level BPE or ALBERT Unigram.",
    )
    p.add_argument("files", nargs="+", type=Path, help="plain-text files (.gz allowed)")
    p.add_argument(
        "--type",
        choices=("wordpiece", "bpe", "unigram"),
        default="wordpiece",
        help="wordpiece (BERT, DistilBERT), bpe (RoBERTa) or unigram (ALBERT); default wordpiece",
    )
    p.add_argument("--out", required=True, type=Path, help="directory to write the tokenizer into")
    p.add_argument("--vocab-size", type=positive_int, default=30522)
    p.add_argument("--min-frequency", type=positive_int, default=2)
    p.add_argument("--limit-alphabet", type=positive_int, default=1000)
    p.add_argument(
        "--cased", action="store_true", help="keep case and accents (default: lower-case, strip accents)"
    )
    p.add_argument(
        "--no-chinese-chars", action="store_true", help="do not split CJK characters into single tokens"
    )
    p.set_defaults(func=cmd_train_tokenizer)

    p = sub.add_parser(
        "info",
        help="describe a checkpoint: config and parameter counts by part",
        description="Describe a checkpoint directory: architecture, shape and parameter counts by part.",
    )
    p.add_argument("checkpoint", help="directory with config.json and model.safetensors / pytorch_model.bin")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "fill-mask",
        help="predict the tokens behind [MASK] / <mask>",
        description="Predict the most likely tokens for every mask token ([MASK] or <mask>, any family's) "
        "in a text.",
    )
    p.add_argument(
        "checkpoint",
        help="checkpoint with a masked-LM head (a MaskedLM or PreTraining model of any family)",
    )
    p.add_argument(
        "text", help='text with one or more [MASK] (or <mask>), e.g. "Paris is the [MASK] of France."'
    )
    p.add_argument("--top-k", type=positive_int, default=5)
    p.add_argument("--tokenizer", help="tokenizer directory, if not the checkpoint directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fill_mask)

    p = sub.add_parser(
        "embed",
        help="embed texts (one per line) into vectors",
        description="Embed texts, one per line, from a file or stdin; write .npy or JSONL. "
        "sentence-transformers settings in the checkpoint (max length, pooling, normalisation) are honoured.",
    )
    p.add_argument("checkpoint")
    p.add_argument("--input", default="-", help="text file, one text per line (default: stdin)")
    p.add_argument(
        "--output", type=output_file, help="output file, .npy or .jsonl (default: JSONL on stdout)"
    )
    p.add_argument(
        "--format", choices=("npy", "jsonl"), help="output format (default: from --output's suffix)"
    )
    p.add_argument("--pooling", choices=("mean", "cls", "max"), help="default: the checkpoint's, else mean")
    p.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None, help="unit-length vectors"
    )
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--max-length", type=positive_int, help="truncate texts to this many tokens")
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="run the encoder in this dtype (bfloat16 is several times faster on AMX CPUs and GPUs)",
    )
    p.set_defaults(func=cmd_embed)

    add_demo_command(sub)
    add_task_commands(sub)
    add_distill_command(sub)
    add_data_commands(sub)
    add_pretrain_command(sub)
    add_export_command(sub)
    add_compress_commands(sub)
    add_serve_command(sub)
    add_viz_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # `pretrain` takes free-form recipe overrides (--optim.lr 1e-4); other commands reject extras.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        args.func(args)
    except BertForgeError as err:
        print(f"bertforge: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as err:
        print(f"bertforge: error: {err.strerror}: {err.filename}; check the path", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as err:
        print(
            f"bertforge: error: input is not UTF-8 text ({err.reason} at byte {err.start}); convert it to UTF-8",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except OSError as err:
        if err.errno == 28:  # ENOSPC
            print(
                f"bertforge: error: no space left on device writing {err.filename or 'output'}; "
                "free space and rerun (files already written are intact)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        print("bertforge: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
