"""Item attributes for models that predict them (S3-Rec's associated / masked attribute prediction).

S3-Rec uses an item's categorical metadata (category, brand). The Amazon 2014 sequence files
in this project carry no such metadata, so attributes are the frequent words of the titles: an
item's attributes are the distinct lower-cased alphanumeric words of its title that are among
the ``vocab_size`` words found in the most titles (at least ``min_count`` titles, at least
``min_chars`` characters, not only digits). Ties in frequency break by the word, so the
vocabulary is deterministic. A dataset without titles yields no attributes.

Only titles are read (item text, no interactions), so building the vocabulary from every item
leaks nothing about the test targets.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from llmrecbench.config import schema_defaults
from llmrecbench.errors import ConfigError, InputError

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class ItemAttributes:
    """``ids[i]``: attribute ids of item ``i`` padded with -1 (``[n_items, max_per_item]``)."""

    ids: np.ndarray
    vocabulary: tuple[str, ...]

    @property
    def n_attributes(self) -> int:
        return len(self.vocabulary)

    def summary(self) -> dict:
        """What a cell's protocol records about them."""
        return {"n_attributes": self.n_attributes, "items_with_attributes": items_with_attributes(self.ids)}


def items_with_attributes(ids: np.ndarray) -> int:
    """Items (rows of a -1-padded attribute-id array) that have at least one attribute."""
    return int((ids >= 0).any(axis=1).sum()) if ids.size else 0


def title_words(title: str | None, min_chars: int) -> list[str]:
    """Distinct words of a title in order of appearance (lower-cased, alphanumeric runs)."""
    if not title:
        return []
    seen: dict[str, None] = {}
    for word in _WORD.findall(title.lower()):
        if len(word) >= min_chars and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)


def title_word_attributes(items: pl.DataFrame, n_items: int, options: dict | None = None, where: str = "items") -> ItemAttributes:
    """Attributes of items ``0..n_items-1`` from the ``title`` column of ``items`` (see module docstring).

    ``options``: the ``attributes:`` block of a model (schema defaults for what it omits).
    """
    opts = {**schema_defaults("attributes"), **(options or {})}
    if opts["source"] != "title_words":
        raise ConfigError(f"unknown attribute source {opts['source']!r}; known: title_words")
    if "item_id" not in items.columns:
        raise InputError(where, "no item_id column")
    ids = items["item_id"].to_numpy()
    if items.height != n_items or sorted(ids.tolist()) != list(range(n_items)):
        raise InputError(where, f"expected one row per item id 0..{n_items - 1}, got {items.height} rows")
    titles = items["title"].to_list() if "title" in items.columns else [None] * items.height
    words = {int(i): title_words(t, int(opts["min_chars"])) for i, t in zip(ids, titles)}
    counts = Counter(w for ws in words.values() for w in ws)
    ranked = sorted((w for w, c in counts.items() if c >= int(opts["min_count"])), key=lambda w: (-counts[w], w))
    vocabulary = tuple(ranked[: int(opts["vocab_size"])])
    index = {w: k for k, w in enumerate(vocabulary)}
    per_item = [[index[w] for w in words[i] if w in index] for i in range(n_items)]
    width = max((len(a) for a in per_item), default=0)
    out = np.full((n_items, width), -1, dtype=np.int64)
    for i, attrs in enumerate(per_item):
        out[i, : len(attrs)] = attrs
    return ItemAttributes(out, vocabulary)
