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


def leave_one_out(interactions: pl.DataFrame, *, drop_short: bool = False) -> SplitFrames:
    """Per user u with n_u interactions ranked by ``position`` (r = 1..n_u):
    test = rank n_u, valid = rank n_u - 1, train = ranks 1..n_u - 2.

    Ranks, not raw positions, are used, so gaps in ``position`` (e.g. after filtering without
    re-numbering) cannot misplace a row. Every column is kept; each frame is sorted by
    (user_id, position).

    Short-user policy: a user with fewer than 3 interactions cannot give train, valid and
    test. By default that raises SplitError (the 5-core sources have none); with
    ``drop_short=True`` such users are left out of all three frames (their number is
    ``interactions users - test users``).
    """
    n_u = pl.len().over("user_id")
    short = interactions.group_by("user_id").len().filter(pl.col("len") < 3)
    if short.height and not drop_short:
        raise SplitError(
            f"leave-one-out needs >= 3 interactions per user; {short.height} users have fewer "
            f"(e.g. user_id {short.sort('user_id')['user_id'][0]}); filter with k_core >= 3 or pass drop_short=True"
        )
    df = interactions.sort(["user_id", "position"])
    if short.height:
        df = df.filter(n_u >= 3)
    rank = pl.int_range(1, pl.len() + 1).over("user_id")  # 1-based rank within the user
    df = df.with_columns(rank.alias("_rank"), n_u.alias("_n"))
    test = df.filter(pl.col("_rank") == pl.col("_n")).drop("_rank", "_n")
    valid = df.filter(pl.col("_rank") == pl.col("_n") - 1).drop("_rank", "_n")
    train = df.filter(pl.col("_rank") < pl.col("_n") - 1).drop("_rank", "_n")
    return train, valid, test


def ratio_split(interactions: pl.DataFrame, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 2022) -> SplitFrames:
    """Seeded random split at ``ratios`` with every user and item present in training.

    With N interactions sorted by (user_id, position):
    1. shuffle key s = numpy.random.default_rng(seed).permutation(N) (row i gets s[i]);
    2. forcing: the row with the smallest s of every user, and of every item, goes to train
       (F rows, F <= |U| + |I|), so every user and every item has a training interaction;
    3. the other rows, in increasing s, fill train up to max(0, round(r_train N) - F) more rows,
       then valid with round(r_valid N) rows; the rest is test.
    Hence |valid| = min(round(r_valid N), N - |train|), |train| = max(F, round(r_train N)) and
    |test| = N - |train| - |valid| (exact ratios whenever F <= round(r_train N); Beauty:
    F ~ 0.15 N). Every column is kept; each frame is sorted by (user_id, position), so equal
    seeds give identical frames and, through ``io.write_parquet``, byte-identical files.
    """
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) < 0:
        raise SplitError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    n = interactions.height
    if n == 0:
        raise SplitError("ratio split of an empty interaction frame")
    shuffle = np.random.default_rng(seed).permutation(n)
    df = interactions.sort(["user_id", "position"]).with_columns(pl.Series("shuffle", shuffle))
    forced = (pl.col("shuffle") == pl.col("shuffle").min().over("user_id")) | (
        pl.col("shuffle") == pl.col("shuffle").min().over("item_id")
    )
    df = df.with_columns(forced.alias("forced"))
    n_forced = int(df["forced"].sum())
    extra_train = max(0, round(ratios[0] * n) - n_forced)
    n_valid = min(round(ratios[1] * n), n - n_forced - extra_train)
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
