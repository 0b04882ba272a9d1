"""k-core filtering, contiguous re-numbering and seeded user subsampling.

Filtering never re-numbers ids by itself (so reports can refer to the source ids); only
``compact_ids`` makes them contiguous again.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from llmrecbench.data.ingest import CanonicalDataset
from llmrecbench.errors import ConfigError


def k_core(interactions: pl.DataFrame, k: int | None) -> tuple[pl.DataFrame, dict]:
    """Iterative k-core: drop users and items with fewer than ``k`` interactions until stable.

    One round keeps the rows whose user and whose item both have >= k rows in the current
    frame; rounds repeat until a round removes nothing (``iterations`` counts every round,
    the final confirming one included). The result is the largest sub-frame in which every
    user and every item has >= k interactions. Positions are re-numbered 0..n_u-1 in their
    original order so they stay contiguous; ids are not touched (see ``compact_ids``).
    ``was_noop`` is True when nothing was removed (the case for the Amazon 2014 5-core
    sources). ``k`` None or <= 1 filters nothing (0 iterations).
    """
    df = interactions
    rounds = 0
    while k is not None and k > 1:
        user_ok = pl.len().over("user_id") >= k
        item_ok = pl.len().over("item_id") >= k
        kept = df.filter(user_ok & item_ok)
        rounds += 1
        if kept.height == df.height:
            break
        df = kept
    removed = interactions.height - df.height
    if removed:
        df = df.sort(["user_id", "position"]).with_columns(
            pl.int_range(pl.len()).over("user_id").cast(pl.Int32).alias("position")
        )
    report = {
        "k": k,
        "iterations": rounds,
        "removed_interactions": removed,
        "removed_users": interactions["user_id"].n_unique() - df["user_id"].n_unique(),
        "removed_items": interactions["item_id"].n_unique() - df["item_id"].n_unique(),
        "was_noop": removed == 0,
    }
    return df, report


def compact_ids(ds: CanonicalDataset) -> CanonicalDataset:
    """Re-number users and items that still occur to contiguous 0-based ids, keeping their order.

    new_id(x) = |{y occurring : y < x}|, so relative order (first appearance) is preserved;
    ``items``/``users`` keep only the rows that still occur, re-numbered alike.
    """
    inter = ds.interactions
    users = inter.select("user_id").unique().sort("user_id").with_row_index("new_user").with_columns(pl.col("new_user").cast(pl.Int32))
    items = inter.select("item_id").unique().sort("item_id").with_row_index("new_item").with_columns(pl.col("new_item").cast(pl.Int32))
    inter = (
        inter.join(users, on="user_id")
        .join(items, on="item_id")
        .drop("user_id", "item_id")
        .rename({"new_user": "user_id", "new_item": "item_id"})
        .select(inter.columns)
        .sort(["user_id", "position"])
    )
    items_out = ds.items.join(items, on="item_id").drop("item_id").rename({"new_item": "item_id"}).select(ds.items.columns).sort("item_id")
    users_out = ds.users.join(users, on="user_id").drop("user_id").rename({"new_user": "user_id"}).select(ds.users.columns).sort("user_id")
    return CanonicalDataset(inter, items_out, users_out, ds.report)


def subsample_users(ds: CanonicalDataset, n_users: int, seed: int) -> CanonicalDataset:
    """Keep a seeded uniform sample of ``n_users`` users with their whole sequences, re-numbered.

    The slice is no longer a k-core on items (rare items lose their other users); its stats
    say so. Used for small integration slices, never for reported full-data numbers.
    """
    all_users = np.sort(ds.interactions["user_id"].unique().to_numpy())
    if n_users < 1:
        raise ConfigError(f"subsample_users must be a positive number of users, got {n_users}")
    if n_users > all_users.size:
        raise ConfigError(f"subsample_users={n_users} exceeds the {all_users.size} users of the dataset")
    chosen = np.sort(np.random.default_rng(seed).choice(all_users, size=n_users, replace=False))
    inter = ds.interactions.filter(pl.col("user_id").is_in(pl.Series(chosen).cast(pl.Int32).implode()))
    return compact_ids(CanonicalDataset(inter, ds.items, ds.users, ds.report))
