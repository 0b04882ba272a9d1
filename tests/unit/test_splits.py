"""Split and indexing invariants on real Beauty: no leakage, exact LOO, 8:1:1 coverage, determinism."""

from __future__ import annotations

import json

import polars as pl
import pytest

from llmrecbench.data import indexing, splits
from llmrecbench.data.pipeline import ingest_canonical
from llmrecbench.io import write_parquet

KEY = ["user_id", "item_id", "position"]


@pytest.fixture(scope="module")
def interactions(mirror_dir):
    d = mirror_dir / "amazon-2014-5core/beauty"
    ds, _ = ingest_canonical("user_sequence", {"user_sequence": d / "user_sequence.txt"}, k_core=5, subsample_users=None, seed=2022)
    return ds.interactions


def test_leave_one_out_takes_exactly_the_last_two(interactions):
    train, valid, test = splits.leave_one_out(interactions)
    n_users = interactions["user_id"].n_unique()
    assert valid.height == test.height == n_users
    assert valid["user_id"].n_unique() == test["user_id"].n_unique() == n_users
    last = interactions.group_by("user_id").agg(pl.col("position").max().alias("last"))
    t = test.join(last, on="user_id")
    v = valid.join(last, on="user_id")
    assert (t["position"] == t["last"]).all() and (v["position"] == v["last"] - 1).all()
    assert train.join(last, on="user_id").filter(pl.col("position") >= pl.col("last") - 1).height == 0
    assert train.height + valid.height + test.height == interactions.height
    for held in (valid, test):
        assert held.select(KEY).join(train.select(KEY), on=KEY).height == 0


def test_ratio_split_covers_users_and_items_and_is_disjoint(interactions):
    train, valid, test = splits.ratio_split(interactions, (0.8, 0.1, 0.1), seed=2022)
    n = interactions.height
    assert train.height + valid.height + test.height == n
    for part, share in ((train, 0.8), (valid, 0.1), (test, 0.1)):
        assert abs(part.height / n - share) < 0.01
    assert train["user_id"].n_unique() == interactions["user_id"].n_unique()
    assert train["item_id"].n_unique() == interactions["item_id"].n_unique()
    parts = [p.select(KEY) for p in (train, valid, test)]
    assert parts[0].join(parts[1], on=KEY).height == 0
    assert parts[0].join(parts[2], on=KEY).height == 0
    assert parts[1].join(parts[2], on=KEY).height == 0
    assert pl.concat(parts).sort(KEY).equals(interactions.select(KEY).sort(KEY))


def test_same_seed_same_bytes(interactions, tmp_path):
    for run in ("a", "b"):
        for name, frame in zip(("train", "valid", "test"), splits.ratio_split(interactions, seed=7)):
            write_parquet(frame, tmp_path / run / f"{name}.parquet")
    for name in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (tmp_path / "b" / f"{name}.parquet").read_bytes()
    other = splits.ratio_split(interactions, seed=8)[1]
    assert not other.equals(splits.ratio_split(interactions, seed=7)[1])


def test_p5_indexing_reproduces_p5_datamaps_and_leaks(interactions, mirror_dir):
    train, valid, test = splits.leave_one_out(interactions)
    p5 = indexing.item_index(train, valid, test, "p5_sequential")
    # P5's own numbering: datamaps item2id (the mirror's p5 files), with our ids in file order
    maps = json.loads((mirror_dir / "amazon-2014-5core/beauty/p5_datamaps.json").read_text())
    p5_ids = {asin: int(i) for i, asin in maps["id2item"].items()}
    d = mirror_dir / "amazon-2014-5core/beauty"
    ds, _ = ingest_canonical("user_sequence", {"user_sequence": d / "user_sequence.txt"}, k_core=5, subsample_users=None, seed=2022)
    ours = dict(zip(ds.items["item_id"].to_list(), ds.items["original_id"].to_list()))
    assert all(p5_ids[ours[i]] == idx for i, idx in p5.iter_rows())
    leak = indexing.leakage_probe(train, valid, test, p5)["share_next_index"]
    clean = indexing.leakage_probe(train, valid, test, indexing.item_index(train, valid, test, "sequential_train_only"))["share_next_index"]
    rand = indexing.leakage_probe(train, valid, test, indexing.item_index(train, valid, test, "random", seed=3))["share_next_index"]
    assert leak > 5 * clean and leak > 5 * rand


def test_train_only_index_numbers_training_items_first(interactions):
    train, valid, test = splits.leave_one_out(interactions)
    idx = indexing.item_index(train, valid, test, "sequential_train_only")
    n_train_items = train["item_id"].n_unique()
    in_train = idx.join(train.select("item_id").unique(), on="item_id")
    assert in_train["index"].max() == n_train_items and in_train["index"].min() == 1
    assert sorted(idx["index"].to_list()) == list(range(1, idx.height + 1))
