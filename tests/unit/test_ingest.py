"""Ingest of every raw format on the real mirror files, and one-line errors on bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from llmrecbench.data import filtering, stats
from llmrecbench.data.ingest import ingest
from llmrecbench.data.pipeline import ingest_canonical
from llmrecbench.errors import ConfigError, InputError

AMAZON_2014 = {"beauty": (22363, 12101, 198502), "sports": (35598, 18357, 296337), "toys": (19412, 11924, 167597)}


@pytest.fixture(scope="module")
def beauty(mirror_dir):
    d = mirror_dir / "amazon-2014-5core/beauty"
    return ingest_canonical("user_sequence", {"user_sequence": d / "user_sequence.txt", "item_titles": d / "item_titles.tsv"})


def test_beauty_matches_the_papers(beauty):
    ds, st = beauty
    assert (st["users"], st["items"], st["interactions"]) == AMAZON_2014["beauty"]
    assert round(st["actions_per_user"], 1) == 8.9
    assert round(st["actions_per_item"], 1) == 16.4
    assert round(100 * st["sparsity"], 2) == 99.93
    assert st["k_core"]["was_noop"] and st["k_core"]["removed_interactions"] == 0
    assert st["items_with_title"] == 12101 - 7  # the mirror's README: 7 empty titles
    assert ds.items.height == 12101 and ds.items["item_id"].to_list() == list(range(12101))


@pytest.mark.parametrize("name", ["sports", "toys"])
def test_sports_and_toys_counts_and_5core_noop(mirror_dir, name):
    ds = ingest("user_sequence", {"user_sequence": mirror_dir / f"amazon-2014-5core/{name}/user_sequence.txt"})
    core, report = filtering.k_core(ds.interactions, 5)
    assert report["was_noop"]
    st = stats.dataset_stats(ds)
    assert (st["users"], st["items"], st["interactions"]) == AMAZON_2014[name]


def test_canonical_order_follows_the_file(beauty, mirror_dir):
    ds, _ = beauty
    first = (mirror_dir / "amazon-2014-5core/beauty/user_sequence.txt").read_text().splitlines()[0].split()
    u0 = ds.interactions.filter(pl.col("user_id") == 0).sort("position")
    originals = dict(zip(ds.items["item_id"].to_list(), ds.items["original_id"].to_list()))
    assert [originals[i] for i in u0["item_id"].to_list()] == first[1:]
    assert ds.users.row(0, named=True)["original_id"] == first[0]


def test_p5_files_hold_the_same_sequences(beauty, mirror_dir):
    ds, _ = beauty
    d = mirror_dir / "amazon-2014-5core/beauty"
    p5 = ingest("p5_sequential", {"sequential_data": d / "p5_sequential_data.txt", "datamaps": d / "p5_datamaps.json"})

    def sequences(x):
        names = dict(zip(x.items["item_id"].to_list(), x.items["original_id"].to_list()))
        users = dict(zip(x.users["user_id"].to_list(), x.users["original_id"].to_list()))
        g = x.interactions.sort(["user_id", "position"]).group_by("user_id", maintain_order=True).agg("item_id")
        return {users[u]: [names[i] for i in items] for u, items in g.iter_rows()}

    assert sequences(p5) == sequences(ds)


def test_amazon_2018_raw_json(mirror_dir):
    path = mirror_dir / "amazon-2018-5core/All_Beauty_5.json.gz"
    ds = ingest("amazon_reviews_json", {"reviews": path})
    assert ds.report["reviews_read"] == 5269
    # 1,040 (user, item) pairs reviewed more than once; keeping the earliest drops 1,177 rows
    assert ds.report["duplicate_rows_dropped"] == 1177
    assert ds.report["user_item_pairs_with_duplicates"] == 1040
    assert ds.interactions.height == 5269 - 1177
    assert ds.interactions["user_id"].n_unique() == 991 and ds.interactions["item_id"].n_unique() == 85
    assert set(ds.interactions.columns) >= {"timestamp", "rating", "review", "summary"}
    # chronological within user
    bad = ds.interactions.sort(["user_id", "position"]).with_columns(pl.col("timestamp").diff().over("user_id").alias("d")).filter(pl.col("d") < 0)
    assert bad.height == 0


def test_movielens_recbole_atomic(mirror_dir):
    d = mirror_dir / "movielens-100k"
    ds = ingest("recbole_atomic", {"inter": d / "ml-100k.inter", "item": d / "ml-100k.item", "user": d / "ml-100k.user"})
    st = stats.dataset_stats(ds)
    assert (st["users"], st["items"], st["interactions"]) == (943, 1682, 100000)
    assert ds.items.filter(pl.col("original_id") == "1")["title"].item() == "Toy Story"


def test_2014_meta_is_python_literal(tmp_path):
    reviews = tmp_path / "reviews.json"
    reviews.write_text(
        "\n".join(
            json.dumps({"reviewerID": u, "asin": a, "overall": 5.0, "unixReviewTime": t, "reviewText": "ok", "summary": "s"})
            for u, a, t in [("U1", "A", 2), ("U1", "B", 1), ("U2", "A", 5)]
        )
    )
    meta = tmp_path / "meta.json.gz"
    with gzip.open(meta, "wt") as fh:  # single quotes: Python literal, not JSON
        fh.write("{'asin': 'A', 'title': \"Rose 'n' Oil\", 'categories': [['Beauty', 'Skin']]}\n")
        fh.write("{'asin': 'B', 'title': 'Brush', 'brand': 'X'}\n")
    ds = ingest("amazon_reviews_json", {"reviews": reviews, "meta": meta})
    titles = dict(zip(ds.items["original_id"].to_list(), ds.items["title"].to_list()))
    assert titles == {"A": "Rose 'n' Oil", "B": "Brush"}
    u1 = ds.interactions.filter(pl.col("user_id") == 0).sort("position")
    assert [titles[ds.items["original_id"][i]] for i in u1["item_id"].to_list()] == ["Brush", "Rose 'n' Oil"]


# --- bad input: one line naming the file and the problem ----------------------------------


def _one_line(exc: InputError, name: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and name in msg


def test_truncated_gzip(tmp_path, mirror_dir):
    blob = (mirror_dir / "amazon-2018-5core/All_Beauty_5.json.gz").read_bytes()
    bad = tmp_path / "All_Beauty_5.json.gz"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputError, match="truncated gzip") as exc:
        ingest("amazon_reviews_json", {"reviews": bad})
    _one_line(exc, "All_Beauty_5.json.gz")


def test_malformed_json_line_names_the_line(tmp_path, mirror_dir):
    lines = gzip.decompress((mirror_dir / "amazon-2018-5core/All_Beauty_5.json.gz").read_bytes()).decode().splitlines()
    lines[41] = lines[41][:-7]  # cut the closing of line 42
    bad = tmp_path / "reviews.json"
    bad.write_text("\n".join(lines))
    with pytest.raises(InputError, match="line 42: malformed JSON") as exc:
        ingest("amazon_reviews_json", {"reviews": bad})
    _one_line(exc, "reviews.json")


def test_empty_file(tmp_path):
    empty = tmp_path / "user_sequence.txt"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file") as exc:
        ingest("user_sequence", {"user_sequence": empty})
    _one_line(exc, "user_sequence.txt")


def test_short_sequence_line(tmp_path):
    bad = tmp_path / "user_sequence.txt"
    bad.write_text("U1 A B C\nU2\n")
    with pytest.raises(InputError, match="line 2"):
        ingest("user_sequence", {"user_sequence": bad})


def test_unknown_p5_id(tmp_path):
    data = tmp_path / "sequential_data.txt"
    data.write_text("1 1 2\n")
    maps = tmp_path / "datamaps.json"
    maps.write_text(json.dumps({"id2user": {"1": "U"}, "id2item": {"1": "A"}}))
    with pytest.raises(InputError, match="id 2 is not in datamaps.json"):
        ingest("p5_sequential", {"sequential_data": data, "datamaps": maps})


def test_unknown_format():
    with pytest.raises(ConfigError, match="unknown dataset format 'csv'"):
        ingest("csv", {})
