"""Fuzz every bertforge tokenizer family against transformers' fast tokenizer, and time both.

Strings are drawn (seeded) from: code points of all 17 Unicode planes (no lone surrogates, which
UTF-8 cannot carry), stacked combining marks, C0/C1 control characters, zero-width and format
characters, whitespace runs (ASCII and Unicode spaces, line and paragraph separators), words of
several scripts (the bundled English and Chinese corpus, Cyrillic, Greek, Arabic, Hebrew,
Devanagari, Thai, Hangul, kana, emoji with modifiers and ZWJ sequences), very long words (up to
3,000 characters), digits and punctuation, and special-token literals.

For each family (BERT and DistilBERT WordPiece, RoBERTa byte-level BPE, ALBERT Unigram; each with a
vocabulary trained from the bundled corpus) every string is compared with transformers' fast
tokenizer loaded from our ``tokenizer.json`` and with the one transformers builds from the
vocabulary files alone (its converter): input ids, token type ids, attention mask, offsets,
special-tokens mask, word ids; decode with and without special tokens; and, for every fifth
string, a pair (each side cut to 300 characters, see fuzz()) under a random truncation strategy
and length. A mismatching string is shrunk (greedy deletion) to
a minimal example, and a few are printed.

Throughput: the strings encoded as one batch and one by one, ours against transformers' fast
tokenizer (loaded from the same tokenizer.json).

    python benchmarks/tokenizer_fuzz.py                  # 100,000 strings
    python benchmarks/tokenizer_fuzz.py --count 20000 --json fuzz.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import transformers

import bertforge.resources
from bertforge.errors import BertForgeError
from bertforge.tokenization import AlbertTokenizer, BertTokenizer, DistilBertTokenizer, RobertaTokenizer

CORPUS = Path(bertforge.resources.__file__).parent / "corpus"
FLAGS = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_token_type_ids": True}
STRATEGIES = ("longest_first", "only_first", "only_second")
PAIR_CHARS = 300  # characters of each side of a pair (see fuzz())

# ----------------------------------------------------------------------------- random strings
SCRIPTS = {
    "cyrillic": (0x0400, 0x04FF),
    "greek": (0x0370, 0x03FF),
    "arabic": (0x0600, 0x06FF),
    "hebrew": (0x0590, 0x05FF),
    "devanagari": (0x0900, 0x097F),
    "thai": (0x0E00, 0x0E7F),
    "hangul": (0xAC00, 0xD7A3),
    "kana": (0x3040, 0x30FF),
    "cjk": (0x4E00, 0x9FFF),
    "cjk_ext_b": (0x20000, 0x2A6DF),
    "emoji": (0x1F300, 0x1FAFF),
    "math_alnum": (0x1D400, 0x1D7FF),
}
COMBINING = [(0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F)]
CONTROL = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2061", "\u2063", "\ufeff",
              "\u00ad", "\u180e", "\u034f", "\u202e", "\u2066", "\ufe0f", "\U000e0001", "\U000e0041"]  # fmt: skip
SPACES = [" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u00a0", "\u1680", "\u2000", "\u2003", "\u2009",
          "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u0085"]  # fmt: skip
SPECIALS = [
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "[PAD]",
    "[UNK]",
    "<s>",
    "</s>",
    "<mask>",
    "<pad>",
    "<unk>",
    "▁",
    "Ġ",
    "##",
]
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~0123456789") + [
    "…",
    "—",
    "«",
    "»",
    "¿",
    "。",
    "，",
    "！",
    "「",
    "」",
]


def any_code_point(rng: random.Random) -> str:
    """A code point from any of the 17 planes (plane 0 most often), never a surrogate."""
    plane = rng.choice([0, 0, 0, 0, 1, 1, 2, 3, 14, 15, 16, rng.randrange(17)])
    while True:
        c = plane * 0x10000 + rng.randrange(0x10000)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words: set[str] = set()
        for path in sorted(CORPUS.glob("*.txt")):
            text = path.read_text(encoding="utf-8")[:20000]
            words.update(text.split())
        self.words = sorted(words)

    def word(self) -> str:
        return self.rng.choice(self.words)

    def script_word(self) -> str:
        low, high = SCRIPTS[self.rng.choice(sorted(SCRIPTS))]
        return "".join(chr(self.rng.randint(low, high)) for _ in range(self.rng.randint(1, 8)))

    def piece(self) -> str:
        rng = self.rng
        kind = rng.randrange(12)
        if kind == 0:
            return "".join(any_code_point(rng) for _ in range(rng.randint(1, 6)))
        if kind == 1:  # a base letter with stacked combining marks ("zalgo")
            base = rng.choice([self.word(), rng.choice("aeiouAEIOUnñ"), self.script_word()])
            marks = "".join(chr(rng.randint(*rng.choice(COMBINING))) for _ in range(rng.randint(1, 12)))
            cut = rng.randint(0, len(base))
            return base[:cut] + marks + base[cut:]
        if kind == 2:
            return "".join(rng.choice(CONTROL) for _ in range(rng.randint(1, 3)))
        if kind == 3:  # zero-width / format characters inside or between words
            word = self.word()
            cut = rng.randint(0, len(word))
            return word[:cut] + rng.choice(ZERO_WIDTH) + word[cut:]
        if kind == 4:
            return "".join(rng.choice(SPACES) for _ in range(rng.randint(1, 12)))
        if kind == 5:
            return self.script_word()
        if kind == 6:  # a very long word
            length = rng.choice([50, 99, 100, 101, 200, 500, 1000, 3000])
            source = rng.choice([self.word(), self.script_word(), "ab", "x"])
            return (source * (length // max(len(source), 1) + 1))[:length]
        if kind == 7:
            return rng.choice(SPECIALS)
        if kind == 8:
            return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 5)))
        if kind == 9:  # emoji with skin tone / ZWJ sequences / flags
            return rng.choice(["👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇫🇷", "🏳️‍🌈", "❤️", "1️⃣", "🧑🏿‍🚀"])
        return self.word()

    def string(self) -> str:
        rng = self.rng
        pieces = [self.piece() for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 12, 20]))]
        glue = rng.choice(["", " ", " ", " ", "\n"])
        return glue.join(pieces)


# ---------------------------------------------------------------------------------- tokenizers
def train_families(root: Path) -> dict[str, tuple[Any, Any, Any]]:
    """family -> (ours, transformers from our tokenizer.json, transformers from vocabulary files only)."""
    texts = [p.read_text(encoding="utf-8")[:6000] for p in sorted(CORPUS.glob("*.txt"))]
    wordpiece = BertTokenizer.train_from_iterator(texts, vocab_size=2000, save_to=root / "bert")
    DistilBertTokenizer(wordpiece.get_vocab()).save_pretrained(root / "distilbert")
    RobertaTokenizer.train_from_iterator(texts, vocab_size=1000, save_to=root / "roberta")
    AlbertTokenizer.train_from_iterator(texts, vocab_size=3000, save_to=root / "albert")
    ours = {"bert": BertTokenizer, "distilbert": DistilBertTokenizer, "roberta": RobertaTokenizer,
            "albert": AlbertTokenizer}  # fmt: skip
    theirs = {"bert": "BertTokenizerFast", "distilbert": "DistilBertTokenizerFast",
              "roberta": "RobertaTokenizerFast", "albert": "AlbertTokenizerFast"}  # fmt: skip
    found = {}
    for family in ours:
        files_only = root / f"{family}-files"
        shutil.copytree(root / family, files_only)
        (files_only / "tokenizer.json").unlink()
        hf_class = getattr(transformers, theirs[family])
        found[family] = (
            ours[family].from_pretrained(root / family),
            hf_class.from_pretrained(str(root / family)),
            hf_class.from_pretrained(str(files_only)),
        )
    return found


# ---------------------------------------------------------------------------------- comparison
def single_view(encoding: Any, row: int) -> dict[str, Any]:
    view = {key: encoding[key][row] for key in encoding if key != "length"}
    view["word_ids"] = encoding.word_ids(row)
    return view


def differences(ours: Any, hf: Any, text: str) -> list[str]:
    """Which aspects differ for one string (single text, decode)."""
    found = []
    try:
        mine = ours([text], **FLAGS)
    except Exception as err:  # noqa: BLE001 - a crash is a mismatch too
        return [f"ours raised {type(err).__name__}: {err}"]
    theirs = hf([text], **FLAGS)
    a, b = single_view(mine, 0), single_view(theirs, 0)
    found += [key for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    ids = theirs["input_ids"][0]
    for skip in (False, True):
        if ours.decode(ids, skip_special_tokens=skip) != hf.decode(ids, skip_special_tokens=skip):
            found.append(f"decode(skip_special_tokens={skip})")
    return found


def pair_differences(
    ours: Any, hf: Any, first: str, second: str, strategy: str, max_length: int
) -> list[str]:
    kwargs = {"truncation": strategy, "max_length": max_length, **FLAGS}
    try:
        theirs = hf(first, second, **kwargs)
    except Exception:  # noqa: BLE001 - the Rust library refuses; we must refuse as a BertForgeError
        try:
            ours(first, second, **kwargs)
        except BertForgeError:
            return []
        return [f"pair {strategy}/{max_length}: transformers refused, ours did not"]
    try:
        mine = ours(first, second, **kwargs)
    except Exception as err:  # noqa: BLE001
        return [f"pair {strategy}/{max_length}: ours raised {type(err).__name__}: {err}"]
    diff = [f"pair {strategy}/{max_length} {k}" for k in theirs if mine[k] != theirs[k]]
    if mine.word_ids() != theirs.word_ids() or mine.sequence_ids() != theirs.sequence_ids():
        diff.append(f"pair {strategy}/{max_length} word/sequence ids")
    return diff


def shrink(text: str, still_fails: Any, budget: float = 5.0) -> str:
    """Greedy deletion (chunks, then single characters) while the mismatch remains."""
    end = time.monotonic() + budget
    chunk = max(len(text) // 2, 1)
    while chunk >= 1 and time.monotonic() < end:
        i, changed = 0, False
        while i < len(text) and time.monotonic() < end:
            candidate = text[:i] + text[i + chunk :]
            if candidate != text and still_fails(candidate):
                text, changed = candidate, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return text


def batch_suspects(ours: Any, hf: Any, texts: list[str]) -> list[int]:
    """Rows of one batch where anything differs (compared in bulk; the rows found are re-checked
    one by one with :func:`differences`, which names the aspects)."""
    try:
        mine = ours(texts, **FLAGS)
    except Exception:  # noqa: BLE001 - find the row that breaks us one by one
        return list(range(len(texts)))
    theirs = hf(texts, **FLAGS)
    rows = set()
    for key in theirs:
        rows.update(i for i, (a, b) in enumerate(zip(mine[key], theirs[key], strict=True)) if a != b)
    rows.update(i for i in range(len(texts)) if mine.word_ids(i) != theirs.word_ids(i))
    ids = theirs["input_ids"]
    for skip in (False, True):
        a = ours.batch_decode(ids, skip_special_tokens=skip)
        b = hf.batch_decode(ids, skip_special_tokens=skip)
        rows.update(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    return sorted(rows)


def fuzz(
    families: dict[str, tuple[Any, Any, Any]], strings: list[str], examples: int, batch: int = 256
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for family, (ours, hf_json, hf_files) in families.items():
        rng = random.Random(1)
        counts: Counter[str] = Counter()
        bad: set[int] = set()
        found_examples: list[dict[str, Any]] = []
        pairs = 0
        start = time.monotonic()
        for lo in range(0, len(strings), batch):
            texts = strings[lo : lo + batch]
            for tag, hf in (("json", hf_json), ("files", hf_files)):
                for row in batch_suspects(ours, hf, texts):
                    diff = [f"[{tag}] {d}" for d in differences(ours, hf, texts[row])]
                    if not diff:
                        continue
                    bad.add(lo + row)
                    counts.update(diff)
                    if len(found_examples) < examples:
                        minimal = shrink(texts[row], lambda t, o=ours, h=hf: bool(differences(o, h, t)))
                        found_examples.append(
                            {"text": texts[row][:200], "minimal": minimal, "aspects": sorted(set(diff))}
                        )
            # Every fifth string as the first of a pair, under a random strategy and length.
            # Each side cut to PAIR_CHARS: `tokenizers` (<= 0.23 at least) builds every combination
            # of the two sides' overflow windows when it truncates a pair, so two long sides under a
            # small max_length take seconds and gigabytes, in transformers as in bertforge
            # (huggingface/tokenizers#2035); uncut, a 20,000-string run was killed for memory.
            for index in range(lo, min(lo + batch, len(strings)), 5):
                first = strings[index][:PAIR_CHARS]
                second = strings[(index * 7 + 3) % len(strings)][:PAIR_CHARS]
                strategy, max_length = rng.choice(STRATEGIES), rng.randint(4, 48)
                pairs += 1
                diff = pair_differences(ours, hf_json, first, second, strategy, max_length)
                if diff:
                    bad.add(index)
                    counts.update(f"[json] {d}" for d in diff)
                    if len(found_examples) < examples:
                        found_examples.append({"text": first[:200], "pair": second[:200],
                                               "minimal": first, "aspects": diff})  # fmt: skip
        report[family] = {
            "strings": len(strings),
            "pairs": pairs,
            "mismatched_strings": len(bad),
            "by_aspect": dict(counts.most_common()),
            "examples": found_examples,
            "seconds": round(time.monotonic() - start, 1),
        }
        print(
            f"  {family:<11} {len(bad):>6} mismatching strings of {len(strings):,} "
            f"(and {pairs:,} pairs), {time.monotonic() - start:.0f} s",
            flush=True,
        )
    return report


def throughput(families: dict[str, tuple[Any, Any, Any]], strings: list[str], singles: int) -> dict[str, Any]:
    chars = sum(len(s) for s in strings)
    result = {}
    for family, (ours, hf_json, _) in families.items():
        row = {}
        for name, tokenizer in (("bertforge", ours), ("transformers", hf_json)):
            tokenizer(strings[:200])  # warm-up
            start = time.perf_counter()
            tokenizer(strings)
            batch = time.perf_counter() - start
            start = time.perf_counter()
            for text in strings[:singles]:
                tokenizer(text)
            single = time.perf_counter() - start
            row[name] = {
                "batch_strings_per_s": round(len(strings) / batch),
                "batch_mchars_per_s": round(chars / batch / 1e6, 2),
                "single_calls_per_s": round(singles / single),
            }
        row["batch_speedup"] = round(
            row["bertforge"]["batch_strings_per_s"] / row["transformers"]["batch_strings_per_s"], 2
        )
        row["single_speedup"] = round(
            row["bertforge"]["single_calls_per_s"] / row["transformers"]["single_calls_per_s"], 2
        )
        result[family] = row
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="random strings (default 100,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=3, help="minimal examples printed per family")
    parser.add_argument("--singles", type=int, default=5000, help="strings timed one call each")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    logging.getLogger("bertforge").setLevel(logging.ERROR)  # "longer than model_max_length" warnings
    transformers.logging.set_verbosity_error()

    generator = Generator(args.seed)
    strings = [generator.string() for _ in range(args.count)]
    kinds = {"empty": sum(not s for s in strings), "longest": max(map(len, strings)),
             "chars": sum(map(len, strings)),
             "astral (plane >= 1) chars": sum(ord(c) > 0xFFFF for s in strings for c in s)}  # fmt: skip
    print(f"{args.count:,} strings (seed {args.seed}): {kinds}; transformers {transformers.__version__}")
    root = Path(tempfile.mkdtemp(prefix="bertforge-fuzz-"))
    try:
        families = train_families(root)
        print(
            "mismatches (ours vs transformers from our tokenizer.json [json] and from the vocabulary files [files]):"
        )
        report = fuzz(families, strings, args.examples)
        for family, item in report.items():
            if item["mismatched_strings"]:
                print(f"\n{family}: {item['by_aspect']}")
                for example in item["examples"]:
                    print(
                        f"  minimal {example['minimal']!r} (from {example['text'][:60]!r}): {example['aspects']}"
                    )
        speed = throughput(families, strings, min(args.singles, len(strings)))
        print("\nthroughput (strings/s; batch = one call on all strings, single = one call per string):")
        print(
            f"  {'family':<11} {'ours batch':>12} {'hf batch':>12} {'x':>6} {'ours single':>12} {'hf single':>12} {'x':>6}"
        )
        for family, row in speed.items():
            ours, theirs = row["bertforge"], row["transformers"]
            print(
                f"  {family:<11} {ours['batch_strings_per_s']:>12,} {theirs['batch_strings_per_s']:>12,} "
                f"{row['batch_speedup']:>6} {ours['single_calls_per_s']:>12,} {theirs['single_calls_per_s']:>12,} "
                f"{row['single_speedup']:>6}"
            )
        total = sum(item["mismatched_strings"] for item in report.values())
        print(f"\ntotal mismatching strings: {total}")
        if args.json:
            args.json.write_text(json.dumps({"count": args.count, "seed": args.seed, "strings": kinds,
                                             "mismatches": report, "throughput": speed}, indent=2,
                                            ensure_ascii=False) + "\n")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
