"""Item indexing schemes and the P5 leakage probe: hand-made cases and real Beauty."""

from __future__ import annotations

import json

import polars as pl
import pytest

from llmrecbench.data import indexing, splits
from llmrecbench.errors import ConfigError


def _frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "item_id": pl.Int32, "position": pl.Int32}, orient="row")


@pytest.fixture()
def tiny():
    # user 0: 5 6 7 | 8 | 9 ; user 1: 6 2 | 3 | 4 ; item 9 only in test, 8 and 3 only in valid
    seq = _frame([(0, 5, 0), (0, 6, 1), (0, 7, 2), (0, 8, 3), (0, 9, 4), (1, 6, 0), (1, 2, 1), (1, 3, 2), (1, 4, 3)])
    return splits.leave_one_out(seq)


def _as_dict(index: pl.DataFrame) -> dict[int, int]:
    assert index.schema == pl.Schema({"item_id": pl.Int32, "index": pl.Int32})
    return dict(index.iter_rows())


def test_sequential_train_only_numbers_training_first(tiny):
    idx = _as_dict(indexing.item_index(*tiny, "sequential_train_only", seed=0))
    # train walk: 5 6 7 (user 0), 6 2 (user 1); then valid 8, 3; then test 9, 4
    assert idx == {5: 1, 6: 2, 7: 3, 2: 4, 8: 5, 3: 6, 9: 7, 4: 8}


def test_p5_sequential_walks_full_sequences(tiny):
    idx = _as_dict(indexing.item_index(*tiny, "p5_sequential", seed=0))
    assert idx == {5: 1, 6: 2, 7: 3, 8: 4, 9: 5, 2: 6, 3: 7, 4: 8}


def test_random_is_a_seeded_permutation(tiny):
    a = indexing.item_index(*tiny, "random", seed=1)
    assert sorted(a["index"].to_list()) == list(range(1, 9))
    assert a.equals(indexing.item_index(*tiny, "random", seed=1))
    assert any(not indexing.item_index(*tiny, "random", seed=s).equals(a) for s in range(2, 6))


def test_unknown_scheme(tiny):
    with pytest.raises(ConfigError, match="unknown indexing scheme 'alphabetical'"):
        indexing.item_index(*tiny, "alphabetical", seed=0)


def test_leakage_probe_by_hand(tiny):
    train, valid, test = tiny
    # p5: user 0 history {1,2,3,4} -> test 5 = 4+1 (hit); user 1 history {2,6,7} -> test 8 = 7+1 (hit)
    p5 = indexing.leakage_probe(train, valid, test, indexing.item_index(*tiny, "p5_sequential", seed=0))
    assert p5 == {"share_next_index": 1.0, "n_users": 2}
    # train-only: user 0 history {1,2,3,5} -> test 7 (miss); user 1 history {2,4,6} -> test 8 (miss)
    clean = indexing.leakage_probe(train, valid, test, indexing.item_index(*tiny, "sequential_train_only", seed=0))
    assert clean == {"share_next_index": 0.0, "n_users": 2}


@pytest.fixture(scope="module")
def beauty_loo(beauty_canonical):
    return splits.leave_one_out(beauty_canonical[0].interactions)


def test_p5_indexing_reproduces_p5_datamaps(beauty_loo, beauty_canonical, mirror_dir):
    """Our p5_sequential numbering = the numbering in the mirror's own P5 files."""
    ds = beauty_canonical[0]
    p5 = indexing.item_index(*beauty_loo, "p5_sequential", seed=0)
    assert p5.height == 12101 and sorted(p5["index"].to_list()) == list(range(1, 12102))
    maps = json.loads((mirror_dir / "amazon-2014-5core/beauty/p5_datamaps.json").read_text())
    p5_number = pl.DataFrame({"original_id": list(maps["id2item"].values()), "p5": [int(k) for k in maps["id2item"]]})
    joined = p5.join(ds.items.select("item_id", "original_id"), on="item_id").join(p5_number, on="original_id")
    assert joined.height == 12101
    assert (joined["index"] == joined["p5"]).all()


def test_p5_indexing_leaks_train_only_does_not(beauty_loo):
    probe = {s: indexing.leakage_probe(*beauty_loo, indexing.item_index(*beauty_loo, s, seed=3)) for s in indexing.SCHEMES}
    assert all(p["n_users"] == 22363 for p in probe.values())
    leak, clean, rand = (probe[s]["share_next_index"] for s in ("p5_sequential", "sequential_train_only", "random"))
    # measured on Beauty: p5 0.044, train-only 0.0042, random 0.00004 (1 user in 22,363)
    assert leak > 0.03  # the known leak: the test item is "the next number handed out"
    assert leak > 5 * clean and leak > 100 * rand
    assert clean < 0.01 and rand < 0.001


def test_train_only_index_on_beauty(beauty_loo):
    train, valid, test = beauty_loo
    idx = indexing.item_index(train, valid, test, "sequential_train_only", seed=0)
    n_train_items = train["item_id"].n_unique()
    in_train = idx.join(train.select("item_id").unique(), on="item_id")
    assert in_train["index"].min() == 1 and in_train["index"].max() == n_train_items
    assert sorted(idx["index"].to_list()) == list(range(1, idx.height + 1))


def test_train_only_numbers_of_training_items_ignore_every_held_out_item(beauty_loo):
    """The docstring's promise: the number of every training item is a function of the training
    sequences alone. Re-drawing all valid/test items changes none of them; under P5's scheme it
    changes many (the held-out items are walked in between)."""
    import numpy as np

    train, valid, test = beauty_loo
    rng = np.random.default_rng(0)
    items = train["item_id"].unique().to_numpy()
    other_valid = valid.with_columns(pl.Series("item_id", rng.choice(items, valid.height), dtype=pl.Int32))
    other_test = test.with_columns(pl.Series("item_id", rng.choice(items, test.height), dtype=pl.Int32))
    train_items = train.select("item_id").unique()
    for scheme, same in (("sequential_train_only", True), ("p5_sequential", False)):
        a = indexing.item_index(train, valid, test, scheme).join(train_items, on="item_id")
        b = indexing.item_index(train, other_valid, other_test, scheme).join(train_items, on="item_id")
        assert a.sort("item_id").equals(b.sort("item_id")) is same


def test_item_numbering_round_trips_and_renumbers_sequences(tiny, tmp_path):
    import numpy as np

    from llmrecbench.data.indexing import ItemNumbering, index_table
    from llmrecbench.data.sequences import LeaveOneOutSequences

    train, valid, test = tiny
    # compact the tiny split's ids 2..9 to 0..7 as ingest does
    frames = [f.with_columns(pl.col("item_id") - 2) for f in (train, valid, test)]
    table = index_table(*frames, seed=0)
    assert table.columns == ["item_id", *indexing.SCHEMES]
    path = tmp_path / "item_index.parquet"
    table.write_parquet(path)
    num = ItemNumbering.read(path, "p5_sequential", 8)
    assert num.to_model.tolist() == (table["p5_sequential"] - 1).to_list()
    assert num.canonical(num.items(np.array([3, -1, 0]))).tolist() == [3, -1, 0]
    data = LeaveOneOutSequences(np.array([0]), [np.array([3, 4])], np.array([5]), np.array([6]), 8)
    moved = num.sequences(data)
    assert moved.train[0].tolist() == num.to_model[[3, 4]].tolist() and moved.test_target[0] == num.to_model[6]
    vectors = np.arange(8)[:, None] * 10
    assert num.rows(vectors)[num.to_model[5], 0] == 50  # row of model id m holds its canonical item's vector
    with pytest.raises(Exception, match="does not number"):
        ItemNumbering.read(path, "p5_sequential", 9)


def test_index_leak_model_scores_distance_to_the_next_number():
    import numpy as np
    import torch

    from llmrecbench.models import create_model

    model = create_model("index_leak", 6)
    scores = model.score([np.array([1, 3]), np.array([5])])
    assert scores[0].tolist() == [-4.0, -3.0, -2.0, -1.0, 0.0, -1.0]  # max 3 -> 4 first
    order = torch.sort(scores[0], descending=True, stable=True).indices.tolist()
    assert order[:3] == [4, 3, 5]  # ties by the lower id
    assert scores[1].argmax().item() == 5  # the last id is as close as it gets
