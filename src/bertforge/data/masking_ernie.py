"""ERNIE 1.0's knowledge masking units: phrases, and the entities of a lexicon.

Both return units as (first word, number of words); :func:`.masking.mask_instance` takes them
whole while they fit in the budget.
"""

from __future__ import annotations

import numpy as np

from .masking_tables import MaskingTables


def phrase_units(
    word_len: np.ndarray,
    word_pos: np.ndarray,
    first_ids: np.ndarray,
    tables: MaskingTables | None,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """ERNIE phrases as (first word, number of words): a Chinese (jieba) word or a punctuation
    token is a unit alone; a run of other adjacent words is cut into chunks of 2-4 words (uniform),
    a one-word remainder staying alone. ``first_ids``: the token id each word starts with."""
    n_words = len(word_len)
    breaks = np.zeros(n_words, dtype=np.bool_)
    if tables is not None:
        for table in (tables.punctuation, tables.cjk):
            if table is not None:
                breaks |= table[first_ids]
    adjacent = np.zeros(n_words, dtype=np.bool_)  # word w continues the text of word w-1
    adjacent[1:] = word_pos[1:] == word_pos[:-1] + word_len[:-1]
    sizes = rng.integers(2, 5, size=n_words).tolist()
    units: list[tuple[int, int]] = []
    w = 0
    while w < n_words:
        run = 1
        if not breaks[w]:
            while w + run < n_words and adjacent[w + run] and not breaks[w + run]:
                run += 1
        while run > 0:  # cut the run into chunks
            n = min(sizes[w], run)
            units.append((w, n))
            w += n
            run -= n
    return units


def entity_units(
    input_ids: np.ndarray,
    candidates: np.ndarray,
    starts: np.ndarray,
    word_of: np.ndarray,
    entities: dict[int, list[tuple[int, ...]]],
) -> list[tuple[int, int]]:
    """Lexicon matches as (first word, number of words), left to right, longest match first; a match
    starts and ends on word boundaries and stays inside contiguous maskable text."""
    units: list[tuple[int, int]] = []
    n = len(candidates)
    ids = input_ids[candidates].tolist()
    i = 0
    while i < n:
        found = 0
        if starts[i]:
            for entity in entities.get(ids[i], ()):
                e = i + len(entity)
                if (
                    e <= n
                    and candidates[e - 1] - candidates[i] == e - 1 - i
                    and (e == n or starts[e])
                    and tuple(ids[i:e]) == entity
                ):
                    found = e - i
                    break
        if found:
            units.append((int(word_of[i]), int(word_of[i + found - 1] - word_of[i]) + 1))
            i += found
        else:
            i += 1
    return units
