"""P5-protocol splits.

- Leave-one-out (sequential/direct tasks): per user, the last interaction is the test target,
  the second-to-last the validation target, all earlier ones are training.
- 8:1:1 random (rating/explanation/review tasks), seeded, such that every user and every item
  keeps at least one training interaction.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from llmrecbench.errors import BenchError

SplitFrames = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]


class SplitError(BenchError):
    """The interactions cannot be split under the requested protocol."""


def leave_one_out(interactions: pl.DataFrame) -> SplitFrames:
    """train = positions 0..n_u-3, valid = position n_u-2, test = position n_u-1 (per user u)."""
    last = pl.col("position").max().over("user_id")
    short = interactions.group_by("user_id").len().filter(pl.col("len") < 3)
    if short.height:
        raise SplitError(f"leave-one-out needs >= 3 interactions per user; {short.height} users have fewer")
    df = interactions.sort(["user_id", "position"])
    test = df.filter(pl.col("position") == last)
    valid = df.filter(pl.col("position") == last - 1)
    train = df.filter(pl.col("position") < last - 1)
    return train, valid, test


def ratio_split(interactions: pl.DataFrame, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 2022) -> SplitFrames:
    """Seeded random split at ``ratios`` with every user and item present in training.

    1. Shuffle all interactions with ``numpy.random.default_rng(seed)``.
    2. Force into train the first (in shuffled order) interaction of every user and of every item.
    3. Fill train up to round(r_train * N) with the next unforced interactions in shuffled
       order, then valid with round(r_valid * N), the rest is test.
    Each output is sorted by (user_id, position), so equal seeds give byte-identical files.
    """
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) < 0:
        raise SplitError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    n = interactions.height
    shuffle = np.random.default_rng(seed).permutation(n)
    df = interactions.sort(["user_id", "position"]).with_columns(pl.Series("shuffle", shuffle))
    forced = (pl.col("shuffle") == pl.col("shuffle").min().over("user_id")) | (
        pl.col("shuffle") == pl.col("shuffle").min().over("item_id")
    )
    df = df.with_columns(forced.alias("forced"))
    n_train = round(ratios[0] * n)
    n_valid = round(ratios[1] * n)
    n_forced = int(df["forced"].sum())
    extra_train = max(0, n_train - n_forced)
    rest = df.filter(~pl.col("forced")).sort("shuffle").with_row_index("order")
    rest = rest.with_columns(
        pl.when(pl.col("order") < extra_train)
        .then(pl.lit("train"))
        .when(pl.col("order") < extra_train + n_valid)
        .then(pl.lit("valid"))
        .otherwise(pl.lit("test"))
        .alias("part")
    ).drop("order")
    df = pl.concat([df.filter(pl.col("forced")).with_columns(pl.lit("train").alias("part")), rest])
    cols = interactions.columns
    out = [df.filter(pl.col("part") == p).select(cols).sort(["user_id", "position"]) for p in ("train", "valid", "test")]
    return out[0], out[1], out[2]
