"""Tag schemes for token tagging: entity extraction, scheme detection and conversion.

Readers and metrics share one definition of "which tokens form an entity", so a file converted by a
reader and a prediction scored by :func:`~.metrics.entity_scores` can never disagree.

That definition is seqeval's ``get_entities`` in its default (non-strict) mode, reproduced rule for
rule, because seqeval's numbers are the ones papers report:

* ``B-X`` and ``S-X`` always start an entity; ``E-X`` and ``S-X`` always end one;
* ``I-X`` (or ``E-X``) continues the entity before it only if that entity has type X and is still
  open; otherwise it starts a new one. This is exactly how IOB1 is read (an ``I-`` starts an entity
  unless it continues the same type; ``B-`` only separates adjacent entities of one type), and it is
  the lenient reading of BIO/BIOES files whose ``I-`` has no ``B-``, so one parser serves all three
  schemes and conversion is "parse, then write in the target scheme".

Scheme names: ``IOB1``; ``BIO`` (alias ``IOB2``); ``BIOES`` (alias ``IOBES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import BertForgeError

SCHEMES = ("IOB1", "BIO", "BIOES")
_ALIASES = {"IOB1": "IOB1", "BIO": "BIO", "IOB2": "BIO", "BIOES": "BIOES", "IOBES": "BIOES"}
_PREFIXES = {"IOB1": "BI", "BIO": "BI", "BIOES": "BIES"}
# Order of prefixes within one type when listing labels: B-X, I-X, E-X, S-X.
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}

Entity = tuple[str, int, int]  # (type, first token, last token), both inclusive, as in seqeval


def normalize_scheme(scheme: str) -> str:
    """Canonical scheme name ("BIO", "IOB1", "BIOES") for a name or alias, in any case."""
    canonical = _ALIASES.get(str(scheme).upper())
    if canonical is None:
        raise BertForgeError(f"unknown tag scheme {scheme!r}; choose from IOB1, BIO (IOB2), BIOES (IOBES)")
    return canonical


def _split(tag: str) -> tuple[str, str]:
    """(prefix letter, type) the way seqeval splits a prefix-style tag: ``"O"`` has type ``"_"``."""
    prefix = tag[:1]
    type_ = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return prefix, type_


def _ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    # seqeval end_of_chunk
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    # seqeval start_of_chunk
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[Entity]:
    """Entities of one sentence as ``(type, start, end_inclusive)``, in seqeval's default mode.

    Works for IOB1, BIO and BIOES input alike (see the module docstring).
    """
    entities: list[Entity] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _split(chunk)
        if _ends(prev_tag, tag, prev_type, type_):
            entities.append((prev_type, begin, i - 1))
        if _starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return entities


def check_tags(tags: Sequence[str], scheme: str) -> str | None:
    """The first tag that does not belong to ``scheme`` (e.g. ``E-PER`` in a BIO file), or None."""
    allowed = _PREFIXES[normalize_scheme(scheme)]
    for tag in tags:
        if tag == "O":
            continue
        if len(tag) < 3 or tag[1] != "-" or tag[0] not in allowed:
            return tag
    return None


def detect_scheme(sentences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a whole file's tags.

    ``E-``/``S-`` anywhere -> BIOES. Otherwise, if some ``I-X`` starts an entity
    (it follows ``O``, another type, or the sentence start) and no ``B-X`` ever starts one, the file
    is IOB1 (as CoNLL-2003). Everything else is BIO; a BIO file with the odd headless ``I-`` reads
    the same under either name, so the guess cannot change the entities, only the output scheme.
    """
    i_starts = b_starts = False
    for tags in sentences:
        prev = "O"
        for tag in tags:
            prefix = tag[:1]
            if prefix in ("E", "S") and tag[1:2] == "-":
                return "BIOES"
            same = prev != "O" and prev[2:] == tag[2:]
            if prefix == "I" and not same:
                i_starts = True
            elif prefix == "B" and not same:
                b_starts = True
            prev = tag
    return "IOB1" if i_starts and not b_starts else "BIO"


def entities_to_tags(entities: Iterable[Entity], length: int, scheme: str) -> list[str]:
    """Write non-overlapping entities over ``length`` tokens in ``scheme``."""
    scheme = normalize_scheme(scheme)
    tags = ["O"] * length
    previous_end: dict[str, int] = {}  # type -> last token of the latest entity of that type
    for type_, start, end in sorted(entities, key=lambda e: e[1]):
        if scheme == "BIOES":
            if start == end:
                tags[start] = f"S-{type_}"
            else:
                tags[start] = f"B-{type_}"
                tags[start + 1 : end] = [f"I-{type_}"] * (end - start - 1)
                tags[end] = f"E-{type_}"
        else:
            # IOB1 spends a B- only where an entity directly follows one of the same type.
            adjacent = previous_end.get(type_) == start - 1
            first = "B" if scheme == "BIO" or adjacent else "I"
            tags[start] = f"{first}-{type_}"
            tags[start + 1 : end + 1] = [f"I-{type_}"] * (end - start)
        previous_end[type_] = end
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Rewrite one sentence's tags from scheme ``source`` to ``target`` (IOB1, BIO, BIOES).

    Raises BertForgeError for a tag that does not belong to ``source`` (``E-X`` in a BIO sentence,
    ``X`` without a prefix).
    """
    bad = check_tags(tags, source)
    if bad is not None:
        raise BertForgeError(
            f"tag {bad!r} is not a {normalize_scheme(source)} tag; tags must be O or "
            f"{'/'.join(p + '-' for p in _PREFIXES[normalize_scheme(source)])}TYPE "
            "(pass the right scheme, or scheme=None to detect it)"
        )
    if normalize_scheme(source) == normalize_scheme(target):
        return list(tags)
    return entities_to_tags(get_entities(tags), len(tags), target)


def tag_sort_key(tag: str) -> tuple[int, str, int, str]:
    """Sort key listing ``O`` first, then types alphabetically, each as B-, I-, E-, S-."""
    if tag == "O":
        return (0, "", 0, "")
    prefix, type_ = _split(tag)
    return (1, type_, _PREFIX_ORDER.get(prefix, 9), tag)
