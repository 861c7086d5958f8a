"""Chinese word starts exactly where ``jieba.cut`` puts them, about 15 times faster.

Whole-word masking needs to know which characters of a Chinese sentence begin a jieba word. jieba
itself reads about 0.25 MB of Chinese per second on one core, slower than everything else in
``bertforge data build`` together. Its algorithm has two halves, and this module takes each from
where it is both fast and exact:

1. The dictionary route (a DAG of dictionary words, the most probable path through it): from
   jieba-rs (``rjieba``), which ships jieba's dictionary and computes the same float64 sums with the
   same tie-break; asked without its HMM, it returns jieba's route word for word (checked on 9 MB of
   novels, and in tests/test_segment.py on text and random strings). Its only other difference
   from jieba, a wider set of characters it counts as Han, is avoided by handing those sentences
   (rare CJK extensions) to jieba itself.
2. jieba's HMM, which re-cuts each run of single-character route words that is not a dictionary
   word: jieba-rs's own HMM breaks near-ties differently (about one sentence in 70,000), so it is
   replayed here in numpy for all runs of a chunk at once, with jieba's own probability tables,
   the same order of float64 additions and the same tie-break (``max`` over ``(value, state)``).

Without ``rjieba`` installed every sentence goes to ``jieba.cut`` (correct, just slow).

The result is a flat bool array over the sentences joined by one separator slot each:
``flags[base[i] + c]`` says whether a jieba word starts at character ``c`` of sentence ``i``, where
``base[i] = sum(len(s) + 1 for s in sentences[:i])``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# jieba's blocks: runs of these are segmented, every other character is a word of its own.
_JIEBA_HAN = "\u4e00-\u9fd5a-zA-Z0-9+#&._%\\-"
_JIEBA_HAN_PUNCT = np.array([ord(c) for c in "+#&._%-"], dtype=np.uint32)
# Characters jieba-rs counts as Han and jieba does not (a superset: CJK extensions and
# compatibility ideographs), and line breaks ("\r\n" is one jieba word): such sentences go to jieba.
_NOT_FOR_RJIEBA = re.compile("[\u3400-\u4dbf\u9fd6-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\r\n]")
_HMM_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")  # jieba.finalseg's re_skip, for the rest
_FIRST_HAN, _LAST_HAN = 0x4E00, 0x9FD5
B, M, E, S = range(4)  # HMM states, in jieba's 'BMES' order


def _ragged_positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The flat indices of the slices ``[starts[i], starts[i] + counts[i])``, one after another."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of every maximal run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    return starts, np.flatnonzero(edges == -1) - starts


class _JiebaHMM:
    """jieba.finalseg's Viterbi, for many observation sequences at once, float for float."""

    def __init__(self) -> None:
        from jieba import finalseg  # type: ignore[import-untyped]

        self.force_split = finalseg.Force_Split_Words  # words the HMM must never return (empty by default)
        min_float = finalseg.MIN_FLOAT
        chars = [chr(c) for c in range(_FIRST_HAN, _LAST_HAN + 1)]
        self.emit = np.array([[finalseg.emit_P[s].get(c, min_float) for c in chars] for s in "BMES"])
        self.start = np.array([finalseg.start_P[s] for s in "BMES"])
        # For each state: its two possible predecessors and the transition log-probabilities;
        # jieba's max() over (value, state) tuples prefers the later letter on a tie.
        self.prev: list[tuple[int, int, float, float]] = []
        for y, letter in enumerate("BMES"):
            low, high = sorted(finalseg.PrevStatus[letter])
            self.prev.append(
                (
                    "BMES".index(low),
                    "BMES".index(high),
                    finalseg.trans_P[low].get(letter, min_float),
                    finalseg.trans_P[high].get(letter, min_float),
                )
            )
            assert y == "BMES".index(letter)

    def word_starts(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """bool [N]: where the HMM starts a word, for sequences of han code points (0x4E00..0x9FD5)
        concatenated in ``codes`` with ``lengths``."""
        n = len(lengths)
        if n == 0:
            return np.zeros(0, dtype=np.bool_)
        order = np.argsort(-lengths, kind="stable")  # longest first: the live rows are a prefix
        sorted_lengths = lengths[order]
        longest = int(sorted_lengths[0])
        firsts = (np.cumsum(lengths) - lengths)[order]
        emit = self.emit[:, codes - _FIRST_HAN]  # (4, N)
        live = np.searchsorted(-sorted_lengths, -np.arange(longest), side="left")  # rows with len > t
        value = self.start[:, None] + emit[:, firsts]  # (4, n): V[0][y] = start_p[y] + emit_p[y][obs[0]]
        final = np.zeros((4, n))
        back = np.zeros((longest, 4, n), dtype=np.int8)
        for t in range(longest):
            k = int(live[t])
            if t:
                em = emit[:, firsts[:k] + t]
                new = np.empty((4, k))
                for y, (low, high, trans_low, trans_high) in enumerate(self.prev):
                    from_low = value[low, :k] + trans_low + em[y]
                    from_high = value[high, :k] + trans_high + em[y]
                    take_low = from_low > from_high
                    new[y] = np.where(take_low, from_low, from_high)
                    back[t, y, :k] = np.where(take_low, low, high)
                value = new
            done = slice(int(live[t + 1]) if t + 1 < longest else 0, k)
            final[:, done] = value[:, done]
        state = np.where(final[S] >= final[E], S, E).astype(np.int8)  # max over (V, y) for y in 'ES'
        states = np.zeros((longest, n), dtype=np.int8)
        ends = sorted_lengths - 1
        current = np.zeros(n, dtype=np.int8)
        for t in range(longest - 1, -1, -1):
            k = int(live[t])
            ending = ends[:k] == t
            current[:k][ending] = state[:k][ending]
            states[t, :k] = current[:k]
            if t:
                current[:k] = back[t, current[:k], np.arange(k)]
        # jieba.finalseg.__cut yields a word at every B or S, and the path is a valid chain after
        # its first state, so a word starts at 0 and right after every E or S.
        starts = np.zeros(len(codes), dtype=np.bool_)
        row_of = np.repeat(np.arange(n), sorted_lengths)
        position = _ragged_positions(np.zeros(n, dtype=np.int64), sorted_lengths)
        previous = states[np.maximum(position - 1, 0), row_of]
        flags = (position == 0) | (previous == E) | (previous == S)
        starts[_ragged_positions(firsts, sorted_lengths)] = flags
        return starts


class JiebaSegmenter:
    """Word-start flags of sentences, identical to segmenting each with ``jieba.cut`` (module docstring)."""

    def __init__(self) -> None:
        self._rjieba: Any = None
        try:
            import rjieba

            self._rjieba = rjieba
        except ImportError:
            logger.warning(
                "rjieba is not installed: Chinese word boundaries come from jieba alone, about 15 times "
                "slower (pip install rjieba)"
            )
        self._jieba: Any = None
        self._hmm: _JiebaHMM | None = None

    def _jieba_cut(self, sentence: str) -> Any:
        if self._jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            self._jieba = jieba
        return self._jieba.cut(sentence)

    def word_start_flags(self, sentences: list[str]) -> np.ndarray:
        """bool [sum(len(s) + 1)]: the word starts of every sentence (layout in the module docstring)."""
        lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
        bases = np.cumsum(lengths + 1) - lengths - 1
        if self._rjieba is None:
            flags = np.zeros(int((lengths + 1).sum()), dtype=np.bool_)
            by_jieba = list(range(len(sentences)))
        else:
            if self._hmm is None:
                self._hmm = _JiebaHMM()
            by_jieba = [i for i, s in enumerate(sentences) if _NOT_FOR_RJIEBA.search(s)]
            if self._hmm.force_split:
                by_jieba = list(range(len(sentences)))
            texts = list(sentences)
            for i in by_jieba:  # kept in place as spaces (each its own word), overwritten below
                texts[i] = " " * len(texts[i])
            flags = self._route_and_hmm("\n".join(texts) + "\n")
            flags[bases + lengths] = False  # the separators
        for i in by_jieba:
            position, base, end = 0, int(bases[i]), int(bases[i] + lengths[i])
            flags[base : end + 1] = False
            for word in self._jieba_cut(sentences[i]):
                if position <= lengths[i]:
                    flags[base + position] = True
                position += len(word)
        return flags

    def _route_and_hmm(self, text: str) -> np.ndarray:
        """Word starts of ``text`` (sentences joined by newlines, each its own jieba word)."""
        assert self._hmm is not None
        words = self._rjieba.cut(text, False)  # jieba's route, runs of 1-char alnum words merged
        word_lengths = np.fromiter(map(len, words), np.int64, len(words))
        word_starts = np.cumsum(word_lengths) - word_lengths
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        alnum = ((codes >= 48) & (codes <= 57)) | (((codes | 32) >= 97) & ((codes | 32) <= 122))
        han = (codes >= _FIRST_HAN) & (codes <= _LAST_HAN)
        in_blocks = han | alnum | np.isin(codes, _JIEBA_HAN_PUNCT)
        starts = np.zeros(len(codes) + 1, dtype=np.bool_)
        starts[word_starts] = True
        starts[-1] = True
        # Un-merge: jieba's dictionary has no all-alphanumeric word, so an alphanumeric word of 2+
        # characters is a run of 1-character route words that the no-HMM mode glued together.
        alnum_before = np.concatenate([[0], np.cumsum(alnum)])
        glued = (word_lengths >= 2) & (
            alnum_before[word_starts + word_lengths] - alnum_before[word_starts] == word_lengths
        )
        starts[_ragged_positions(word_starts[glued], word_lengths[glued])] = True
        # jieba's __cut_DAG: a run of 2+ single-character route words inside a block that is not a
        # dictionary word is re-cut by the HMM (finalseg.cut); other runs stay one word per character.
        single = starts[:-1] & starts[1:] & in_blocks
        run_starts, run_lengths = _runs(single)
        long_runs = run_lengths >= 2
        hmm_starts, hmm_lengths = [], []
        has_word = self._rjieba.has_word
        for a, n in zip(run_starts[long_runs].tolist(), run_lengths[long_runs].tolist(), strict=True):
            if not has_word(text[a : a + n]):
                hmm_starts.append(a)
                hmm_lengths.append(n)
        self._hmm_cut(text, codes, han, starts, hmm_starts, hmm_lengths)
        return starts[:-1]

    def _hmm_cut(
        self,
        text: str,
        codes: np.ndarray,
        han: np.ndarray,
        starts: np.ndarray,
        run_starts: list[int],
        run_lengths: list[int],
    ) -> None:
        """Overwrite ``starts`` inside each run with jieba.finalseg.cut's words: Viterbi on its han
        stretches, ``re_skip`` on the rest (digits, Latin letters, ``+#&._%-``)."""
        assert self._hmm is not None
        if not run_starts:
            return
        firsts = np.asarray(run_starts, dtype=np.int64)
        counts = np.asarray(run_lengths, dtype=np.int64)
        inside = _ragged_positions(firsts, counts)
        starts[inside] = False
        # Runs never touch (each is maximal), so a stretch of han, or of anything else, lies in one run.
        mask = np.zeros(len(codes), dtype=np.bool_)
        mask[inside] = han[inside]
        han_firsts, han_lengths = _runs(mask)
        han_positions = _ragged_positions(han_firsts, han_lengths)
        starts[han_positions] = self._hmm.word_starts(codes[han_positions], han_lengths)
        mask[inside] = ~han[inside]
        for a, n in zip(*(x.tolist() for x in _runs(mask)), strict=True):
            position = a
            for part in _HMM_SKIP.split(text[a : a + n]):
                if part:
                    starts[position] = True
                    position += len(part)
