"""An in-memory stand-in for :class:`bertforge.data.dataset.TokenDataset`, for instance/masking tests.

Special ids follow the layout of vocabularies trained by bertforge: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3
[MASK]=4. With ``traceable=True`` every token of the corpus gets its own id (5 + its position in the
corpus), so a test can tell exactly which document, sentence and offset each instance token came from.
"""

from __future__ import annotations

import numpy as np

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_IDS = (PAD, UNK, CLS, SEP, MASK)
FIRST_ID = 5


class FakeTokenDataset:
    """Documents as lists of int64 sentence arrays, with the TokenDataset reading methods."""

    def __init__(
        self, documents: list[list[np.ndarray]], word_starts: list[list[np.ndarray]], vocab_size: int
    ) -> None:
        self.documents = documents
        self.word_starts = word_starts
        self.vocab_size = vocab_size
        # as written by bertforge.data.build
        self.manifest = {"special_token_ids": {"pad": PAD, "unk": UNK, "cls": CLS, "sep": SEP, "mask": MASK}}
        # token id -> (document, sentence, offset), for traceable corpora
        self.origin: dict[int, tuple[int, int, int]] = {}
        for d, doc in enumerate(documents):
            for s, sentence in enumerate(doc):
                for o, token in enumerate(sentence.tolist()):
                    self.origin.setdefault(token, (d, s, o))

    def __len__(self) -> int:
        return len(self.documents)

    def document(self, index: int) -> list[np.ndarray]:
        return self.documents[index]

    def document_word_starts(self, index: int) -> list[np.ndarray]:
        return self.word_starts[index]

    def sentence_lengths(self, index: int) -> np.ndarray:
        return np.array([len(s) for s in self.documents[index]], dtype=np.int64)


def make_corpus(
    sentence_counts: list[int],
    *,
    min_len: int = 3,
    max_len: int = 20,
    seed: int = 0,
    traceable: bool = True,
    vocab_size: int = 99,
    continuation_prob: float = 0.3,
) -> FakeTokenDataset:
    """A fake corpus with ``sentence_counts[d]`` sentences in document d, random lengths.

    Word starts are random (a token continues the previous word with ``continuation_prob``); the
    first token of a sentence always starts a word.
    """
    rng = np.random.default_rng(seed)
    documents, starts = [], []
    next_id = FIRST_ID
    for count in sentence_counts:
        doc, flags = [], []
        for _ in range(count):
            n = int(rng.integers(min_len, max_len + 1))
            if traceable:
                ids = np.arange(next_id, next_id + n, dtype=np.int64)
                next_id += n
            else:
                ids = rng.integers(FIRST_ID, vocab_size, size=n).astype(np.int64)
            ws = rng.random(n) >= continuation_prob
            ws[0] = True
            doc.append(ids)
            flags.append(ws)
        documents.append(doc)
        starts.append(flags)
    return FakeTokenDataset(documents, starts, next_id if traceable else vocab_size)
