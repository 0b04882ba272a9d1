"""Item numbering for ID-based LLM recommenders, and the probe for P5's indexing leak.

Indices are 1-based as in P5. Schemes:

- ``sequential_train_only`` (leak-free): items numbered in order of first appearance walking
  users' *training* sequences (user order, then position); items first seen in validation,
  then test, get the following numbers.
- ``p5_sequential``: P5's original, first appearance along users' *full* sequences including the
  held-out items — consecutive items of a sequence get consecutive numbers, so the test item's
  number is often "last history number + 1" (the leak described by Hua et al. 2023).
- ``random``: a seeded permutation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from llmrecbench.errors import ConfigError

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
