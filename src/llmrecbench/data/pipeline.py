"""The two data stages of the DAG as single calls: canonical ingest, and split + indexing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llmrecbench.data import filtering, ingest, splits, stats
from llmrecbench.data import indexing as item_indexing
from llmrecbench.errors import ConfigError

SPLIT_KINDS = ("loo", "ratio_8_1_1")
INDEXING_SCHEMES = ("random", "sequential_train_only", "p5_sequential")


def ingest_canonical(
    fmt: str,
    files: dict[str, Path],
    k_core: int,
    subsample_users: int | None,
    seed: int,
    drop_variant_copies: bool = False,
) -> tuple["ingest.CanonicalDataset", dict]:
    """Raw files -> canonical dataset and its stats (defaults: the config schema's).

    Order: parse (duplicate reviews and, with ``drop_variant_copies``, variant copies removed;
    see :mod:`llmrecbench.data.ingest`) -> iterative k-core (reported, and flagged when it removed nothing) ->
    optional seeded user subsample (keeps whole user sequences; the slice is then no longer
    k-core on items, which the stats say) -> contiguous ids.
    """
    ds = ingest.ingest(fmt, files, drop_variant_copies=drop_variant_copies)
    filtered, core_report = filtering.k_core(ds.interactions, k_core)
    ds = filtering.compact_ids(ingest.CanonicalDataset(filtered, ds.items, ds.users, ds.report))
    report: dict = {"k_core": core_report, "format": fmt}
    if subsample_users is not None:
        n_before = ds.interactions["user_id"].n_unique()
        ds = filtering.subsample_users(ds, subsample_users, seed)
        report["subsample"] = {"users_before": n_before, "users_kept": subsample_users, "seed": seed}
    report.update(stats.dataset_stats(ds))
    return ds, report


@dataclass
class SplitResult:
    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    item_index: pl.DataFrame
    stats: dict


def make_split(interactions: pl.DataFrame, kind: str, seed: int, indexing: str) -> SplitResult:
    """Split interactions (``loo`` or ``ratio_8_1_1``), number items by every scheme, probe each.

    ``item_index.parquet`` holds all three numberings (a row picks one without a second split);
    ``indexing`` is the configured default, recorded in the stats. The leakage probe is reported
    for all three schemes so the P5 leak is visible beside the others.
    """
    if kind == "loo":
        train, valid, test = splits.leave_one_out(interactions)
    elif kind == "ratio_8_1_1":
        train, valid, test = splits.ratio_split(interactions, ratios=(0.8, 0.1, 0.1), seed=seed)
    else:
        raise ConfigError(f"unknown split {kind!r}; known: {', '.join(SPLIT_KINDS)}")
    if indexing not in INDEXING_SCHEMES:
        raise ConfigError(f"unknown indexing {indexing!r}; known: {', '.join(INDEXING_SCHEMES)}")
    table = item_indexing.index_table(train, valid, test, seed)
    probes = {
        scheme: item_indexing.leakage_probe(train, valid, test, table.select("item_id", pl.col(scheme).alias("index")))
        if kind == "loo" else None
        for scheme in INDEXING_SCHEMES
    }
    report = {
        "split": kind,
        "seed": seed if kind != "loo" else None,
        "indexing": indexing,
        "rows": {"train": train.height, "valid": valid.height, "test": test.height},
        "users": {n: int(df["user_id"].n_unique()) for n, df in (("train", train), ("valid", valid), ("test", test))},
        "items": {n: int(df["item_id"].n_unique()) for n, df in (("train", train), ("valid", valid), ("test", test))},
        "leakage_probe": probes,
    }
    return SplitResult(train, valid, test, table, report)
