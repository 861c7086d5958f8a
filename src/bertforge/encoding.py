"""``BatchEncoding``: what a tokenizer call returns (transformers' name and behaviour)."""

from __future__ import annotations

from typing import Any

import numpy as np
from tokenizers import Encoding

from .errors import BertForgeError


class BatchEncoding(dict):
    """The tokenizer's output: a dict of model inputs with attribute access and the Rust encodings."""

    def __init__(self, data: dict[str, Any], encodings: list[Encoding] | None = None) -> None:
        super().__init__(data)
        self._encodings = encodings

    def __getattr__(self, name: str) -> Any:
        # Only consulted when normal lookup fails, so methods and _encodings always win over keys.
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {name!r}") from None

    def __getstate__(self) -> dict[str, Any]:
        return {"data": dict(self), "encodings": self._encodings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.update(state["data"])
        self._encodings = state["encodings"]

    @property
    def data(self) -> dict[str, Any]:
        """The plain dict of outputs (transformers' ``BatchEncoding.data``)."""
        return dict(self)

    @property
    def encodings(self) -> list[Encoding] | None:
        """One ``tokenizers.Encoding`` per output row (overflow rows included)."""
        return self._encodings

    def _encoding(self, batch_index: int) -> Encoding:
        if not self._encodings:
            raise BertForgeError("this BatchEncoding has no encodings; it was not built by a tokenizer call")
        if not 0 <= batch_index < len(self._encodings):
            raise BertForgeError(f"batch_index {batch_index} out of range for {len(self._encodings)} rows")
        return self._encodings[batch_index]

    def tokens(self, batch_index: int = 0) -> list[str]:
        """Token strings of one row, specials and padding included."""
        return self._encoding(batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of one row, the index of the word it came from (None for specials and padding)."""
        return self._encoding(batch_index).word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of one row, 0 or 1 for the sequence it came from (None for specials/padding)."""
        return self._encoding(batch_index).sequence_ids

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor value to ``device`` (in place, like transformers); returns self."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


def as_array(key: str, rows: list[Any], kind: str) -> Any:
    """Rows of ids as one int64 array (``kind="np"``) or tensor (``"pt"``); ragged rows are an error."""
    lengths = {len(row) for row in rows} if rows and isinstance(rows[0], list) else set()
    if len(lengths) > 1:
        raise BertForgeError(
            f"return_tensors={kind!r} needs sequences of equal length, but {key} has lengths "
            f"{min(lengths)}..{max(lengths)}; pass padding=True (or padding='max_length') to pad them"
        )
    array = np.asarray(rows, dtype=np.int64)
    if kind == "np":
        return array
    import torch  # deferred: plain tokenisation should not pay for importing torch

    return torch.from_numpy(array)
