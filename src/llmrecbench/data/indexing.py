"""Item numbering: the ids every seqrec model and ID-token prompt sees, and the probe for P5's leak.

Canonical item ids (``results/{dataset}/data``) follow first appearance in the raw files, which for
the P5 datasets is P5's own leaky order; no model sees them. The split writes every scheme's
numbering to ``item_index.parquet`` (one 1-based column per scheme), and each seqrec row
renumbers its data through the scheme it names (:class:`ItemNumbering`; the split's configured
``splits.indexing`` unless the row's block sets ``indexing:``). Indices are 1-based as in P5
(model ids are index - 1). Schemes:

- ``sequential_train_only`` (no held-out information): items numbered in order of first
  appearance walking users' *training* sequences (user order, then position); items first seen
  in validation, then test, get the following numbers. Every training item's number is a
  function of the training sequences alone: changing any held-out item changes none of them
  (tested). Its leakage probe on Beauty is 0.42%, not the 0.0045% of random numbering, because
  consecutive numbers go to items some *training* user bought one after the other: number
  adjacency carries training co-occurrence, a legitimate training signal, not the test item.
- ``p5_sequential``: P5's original, first appearance along users' *full* sequences including the
  held-out items — consecutive items of a sequence get consecutive numbers, so the test item's
  number is often "last history number + 1" (the leak described by Hua et al. 2023).
- ``random``: a seeded permutation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmrecbench.errors import ConfigError, InputError

if TYPE_CHECKING:
    from llmrecbench.data.sequences import LeaveOneOutSequences

SCHEMES = ("random", "sequential_train_only", "p5_sequential")


def _first_appearance(*frames: pl.DataFrame) -> pl.Series:
    ordered = pl.concat([f.sort(["user_id", "position"]).select("item_id") for f in frames])
    return ordered.unique(maintain_order=True)["item_id"]


def item_index(train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, scheme: str, seed: int = 0) -> pl.DataFrame:
    """item_id -> index (1-based) under ``scheme``, one row per item in any split, sorted by item_id."""
    if scheme == "sequential_train_only":
        order = _first_appearance(train, valid, test)
    elif scheme == "p5_sequential":
        order = _first_appearance(pl.concat([train, valid, test]))
    elif scheme == "random":
        items = np.sort(_first_appearance(train, valid, test).to_numpy())
        order = pl.Series("item_id", np.random.default_rng(seed).permutation(items))
    else:
        raise ConfigError(f"unknown indexing scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    return (
        pl.DataFrame({"item_id": order.cast(pl.Int32)})
        .with_row_index("index", offset=1)
        .select(pl.col("item_id"), pl.col("index").cast(pl.Int32))
        .sort("item_id")
    )


def leakage_probe(train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, index: pl.DataFrame) -> dict:
    """Share of test targets whose index is exactly one more than the largest index in the
    user's history (train + valid items):

        share = (1/|U|) * sum_u 1[ idx(test_u) = max_{i in history_u} idx(i) + 1 ]

    Under ``p5_sequential`` this is large (the test item is often the next number handed out);
    under a leak-free scheme it is close to chance.
    """
    history = pl.concat([train.select("user_id", "item_id"), valid.select("user_id", "item_id")])
    hist_max = history.join(index, on="item_id").group_by("user_id").agg(pl.col("index").max().alias("hist_max"))
    t = test.select("user_id", "item_id").join(index, on="item_id").join(hist_max, on="user_id")
    hits = int((t["index"] == t["hist_max"] + 1).sum())
    return {"share_next_index": hits / t.height if t.height else 0.0, "n_users": int(t.height)}


def index_table(train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """item_id and one 1-based index column per scheme (``item_index.parquet``), sorted by item_id."""
    out = None
    for scheme in SCHEMES:
        col = item_index(train, valid, test, scheme, seed).rename({"index": scheme})
        out = col if out is None else out.join(col, on="item_id", how="full", coalesce=True)
    return out.sort("item_id")


@dataclass(frozen=True)
class ItemNumbering:
    """The ids a model sees: ``to_model[c]`` is the model id (index - 1) of canonical item c."""

    scheme: str
    to_model: np.ndarray  # [n_items] int64, a permutation of 0..n_items-1

    @classmethod
    def read(cls, path: str | Path, scheme: str, n_items: int) -> "ItemNumbering":
        """The ``scheme`` column of an ``item_index.parquet``; it must number items 0..n_items-1 once each."""
        frame = pl.read_parquet(path)
        if scheme not in SCHEMES:
            raise ConfigError(f"unknown indexing scheme {scheme!r}; known: {', '.join(SCHEMES)}")
        if scheme not in frame.columns or "item_id" not in frame.columns:
            raise InputError(path, f"no item_id / {scheme} columns (found {', '.join(frame.columns)}); re-run the split")
        frame = frame.sort("item_id")
        ids, index = frame["item_id"].to_numpy(), frame[scheme].to_numpy()
        if not np.array_equal(ids, np.arange(n_items)) or not np.array_equal(np.sort(index), np.arange(1, n_items + 1)):
            raise InputError(path, f"{scheme} does not number the {n_items} items 1..{n_items} once each")
        return cls(scheme, (index - 1).astype(np.int64))

    @property
    def to_canonical(self) -> np.ndarray:
        inverse = np.empty_like(self.to_model)
        inverse[self.to_model] = np.arange(self.to_model.size)
        return inverse

    def items(self, ids: np.ndarray) -> np.ndarray:
        """Canonical ids -> model ids (negative entries, "no item" markers, kept)."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.where(ids >= 0, self.to_model[np.maximum(ids, 0)], ids)

    def canonical(self, ids: np.ndarray) -> np.ndarray:
        """Model ids -> canonical ids (negative entries kept)."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.where(ids >= 0, self.to_canonical[np.maximum(ids, 0)], ids)

    def rows(self, per_item: np.ndarray) -> np.ndarray:
        """A per-item array (row c = canonical item c) reordered so that row m = model id m."""
        return np.asarray(per_item)[self.to_canonical]

    def sequences(self, data: "LeaveOneOutSequences") -> "LeaveOneOutSequences":
        """The same users' sequences and targets in model ids."""
        from llmrecbench.data.sequences import LeaveOneOutSequences

        return LeaveOneOutSequences(
            user_ids=data.user_ids,
            train=[self.to_model[h] for h in data.train],
            valid_target=self.to_model[data.valid_target],
            test_target=self.to_model[data.test_target],
            n_items=data.n_items,
        )
