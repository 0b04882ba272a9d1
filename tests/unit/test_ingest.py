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
    return ingest_canonical("user_sequence", {"user_sequence": d / "user_sequence.txt", "item_titles": d / "item_titles.tsv"}, k_core=5, subsample_users=None, seed=2022)


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


def test_amazon_2018_variant_copies_counted_and_dropped(mirror_dir):
    """All_Beauty repeats each review under every variant of its product: counted always, dropped on
    request; what is left has no (user, text, time) review twice, and its 5-core is empty."""
    path = mirror_dir / "amazon-2018-5core/All_Beauty_5.json.gz"
    kept = ingest("amazon_reviews_json", {"reviews": path})
    dropped = ingest("amazon_reviews_json", {"reviews": path}, drop_variant_copies=True)
    assert kept.report["variant_copies"] == dropped.report["variant_copies"] == 2813
    assert (kept.report["variant_copies_dropped"], dropped.report["variant_copies_dropped"]) == (False, True)
    assert kept.interactions.height == 4092 and dropped.interactions.height == 4092 - 2813
    key = ["user_id", "timestamp", "rating", "review", "summary"]
    assert dropped.interactions.filter(pl.col("review").is_not_null()).select(key).is_duplicated().sum() == 0
    assert (dropped.interactions["user_id"].n_unique(), dropped.interactions["item_id"].n_unique()) == (991, 63)
    ds, st = ingest_canonical("amazon_reviews_json", {"reviews": path}, k_core=1, subsample_users=None, seed=2022, drop_variant_copies=True)
    assert st["interactions"] == 1279 and st["ingest"]["variant_copies"] == 2813  # the report reaches stats.json


def test_variant_copies_fixture_keeps_the_first_in_file_order(tmp_path):
    base = {"reviewerID": "U1", "overall": 5.0, "reviewText": "Lovely scent.", "summary": "Nice", "unixReviewTime": 7}
    lines = [
        {**base, "asin": "B-LARGE"},
        {**base, "asin": "B-SMALL"},  # copy of the first under another variant
        {**base, "asin": "B-OTHER", "summary": "Nicer"},  # differs in its summary: a review of its own
        {**base, "asin": "B-EMPTY", "reviewText": None, "summary": None, "reviewerID": "U2"},
        {**base, "asin": "B-EMPTY2", "reviewText": None, "summary": None, "reviewerID": "U2"},  # no text: never a copy
    ]
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    ds = ingest("amazon_reviews_json", {"reviews": path}, drop_variant_copies=True)
    assert ds.report["variant_copies"] == 1
    assert ds.items.join(ds.interactions, on="item_id")["original_id"].sort().to_list() == ["B-EMPTY", "B-EMPTY2", "B-LARGE", "B-OTHER"]


def test_drop_variant_copies_refused_on_other_formats(mirror_dir):
    d = mirror_dir / "amazon-2014-5core/beauty"
    with pytest.raises(ConfigError, match="drop_variant_copies applies to the amazon_reviews_json format only"):
        ingest("user_sequence", {"user_sequence": d / "user_sequence.txt"}, drop_variant_copies=True)


def test_movielens_recbole_atomic(mirror_dir):
    d = mirror_dir / "movielens-100k"
    ds = ingest("recbole_atomic", {"inter": d / "ml-100k.inter", "item": d / "ml-100k.item", "user": d / "ml-100k.user"})
    st = stats.dataset_stats(ds)
    assert (st["users"], st["items"], st["interactions"]) == (943, 1682, 100000)
    assert ds.items.filter(pl.col("original_id") == "1")["title"].item() == "Toy Story"


# Records in the exact layout of the raw 2014 dumps (McAuley et al.): reviews_Beauty_5.json.gz is
# one JSON object per line; meta_Beauty.json.gz one Python dict literal per line (single quotes,
# so not JSON), with nested related/salesRank and categories as a list of category paths.
BEAUTY_2014_REVIEWS = [
    {"reviewerID": "A1YJEY40YUW4SE", "asin": "7806397051", "reviewerName": "Andrea", "helpful": [3, 4],
     "reviewText": "Very oily and creamy. Not at all what I expected...", "overall": 1.0,
     "summary": "Don't waste your money", "unixReviewTime": 1391040000, "reviewTime": "01 30, 2014"},
    {"reviewerID": "A1YJEY40YUW4SE", "asin": "B00004TMFE", "reviewerName": "Andrea", "helpful": [0, 0],
     "reviewText": "Works as described.", "overall": 4.0, "summary": "Good brush", "unixReviewTime": 1388534400,
     "reviewTime": "01 1, 2014"},
    {"reviewerID": "A60XNB876KYML", "asin": "7806397051", "reviewerName": "Jessica H.", "helpful": [1, 1],
     "reviewText": "This palette was a decent price and I was looking for a few different shades.", "overall": 3.0,
     "summary": "Ok Palette!", "unixReviewTime": 1397779200, "reviewTime": "04 18, 2014"},
    {"reviewerID": "A60XNB876KYML", "asin": "9759091062", "helpful": [0, 0],  # no reviewerName (as in the dump)
     "reviewText": "", "overall": 5.0, "summary": "Love it", "unixReviewTime": 1397779200, "reviewTime": "04 18, 2014"},
]
BEAUTY_2014_META = [
    # repr() double-quotes a title holding an apostrophe
    (
        "{'asin': '7806397051', 'title': \"Rose 'n' Oil\", 'price': 5.99, 'imUrl': "
        "'http://ecx.images-amazon.com/images/I/41Y1DI3hq5L._SY300_.jpg', 'related': {'also_bought': ['B0072Z5QAA'], "
        "'also_viewed': ['B00BG1S5IW', 'B00AQ0F9BU'], 'bought_together': ['B003O57LSU']}, 'salesRank': {'Beauty': 231904}, "
        "'brand': 'Rimmel', 'categories': [['Beauty', 'Makeup', 'Face', 'Concealers & Neutralizers'], ['Beauty', 'Skin']]}"
    ),
    (
        "{'asin': 'B00004TMFE', 'title': \"Men's Brush\", 'price': 12.5, 'imUrl': "
        "'http://ecx.images-amazon.com/images/I/31V5MZ9VB8L._SY300_.jpg', 'salesRank': {'Beauty': 402}, "
        "'categories': [['Beauty', 'Tools & Accessories']]}"
    ),
    "{'asin': 'B000UNUSED', 'title': 'Not reviewed', 'categories': [['Beauty']]}",
]


def test_amazon_2014_raw_reviews_and_python_literal_meta(tmp_path):
    reviews = tmp_path / "reviews_Beauty_5.json.gz"
    with gzip.open(reviews, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in BEAUTY_2014_REVIEWS) + "\n")
    meta = tmp_path / "meta_Beauty.json.gz"
    with gzip.open(meta, "wt") as fh:
        fh.write("\n".join(BEAUTY_2014_META) + "\n")
    ds = ingest("amazon_reviews_json", {"reviews": reviews, "meta": meta})
    assert ds.report == {
        "reviews_read": 4, "duplicate_rows_dropped": 0, "user_item_pairs_with_duplicates": 0,
        "variant_copies": 0, "variant_copies_dropped": False,
    }
    # ids by first appearance in the file; the unreviewed metadata item is not an item
    assert ds.users["original_id"].to_list() == ["A1YJEY40YUW4SE", "A60XNB876KYML"]
    assert ds.items["original_id"].to_list() == ["7806397051", "B00004TMFE", "9759091062"]
    titles = dict(zip(ds.items["original_id"].to_list(), ds.items["title"].to_list()))
    assert titles == {"7806397051": "Rose 'n' Oil", "B00004TMFE": "Men's Brush", "9759091062": None}
    first = ds.items.row(0, named=True)
    assert first["brand"] == "Rimmel" and first["categories"] == "Beauty, Makeup, Face, Concealers & Neutralizers | Beauty, Skin"
    # chronological within a user (unixReviewTime), with rating, review text and summary kept
    inter = ds.interactions.sort(["user_id", "position"])
    assert inter.schema["rating"] == pl.Float32 and inter.schema["timestamp"] == pl.Int64
    rows = inter.select("user_id", "item_id", "timestamp", "rating", "summary").rows()
    assert rows == [
        (0, 1, 1388534400, 4.0, "Good brush"),
        (0, 0, 1391040000, 1.0, "Don't waste your money"),
        (1, 0, 1397779200, 3.0, "Ok Palette!"),
        (1, 2, 1397779200, 5.0, "Love it"),
    ]
    assert inter["review"].to_list()[1] == "Very oily and creamy. Not at all what I expected..."
    u0 = ds.interactions.filter(pl.col("user_id") == 0).sort("position")
    assert [titles[ds.items["original_id"][i]] for i in u0["item_id"].to_list()] == ["Men's Brush", "Rose 'n' Oil"]


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


# --- ratings: a number in [1, 5], else one line naming the file, the line/row and the value ---


def _review_lines(overall_values) -> str:
    return "\n".join(
        json.dumps({"reviewerID": f"U{k}", "asin": "A", "overall": v, "unixReviewTime": k, "reviewText": "r", "summary": "s"})
        for k, v in enumerate(overall_values)
    )


@pytest.mark.parametrize(
    "bad, problem",
    [
        (6.0, r"line 3: rating 6 is outside \[1, 5\] \(1 such lines\)"),
        (0, r"line 3: rating 0 is outside \[1, 5\]"),
        ("five", r"line 3: rating 'five' is not a number"),
        ([4], r"line 3: rating \[4\] is not a number"),
    ],
)
def test_amazon_bad_rating_names_file_line_and_value(tmp_path, bad, problem):
    path = tmp_path / "reviews.json"
    path.write_text(_review_lines([5.0, 4.0, bad, 2.0]))
    with pytest.raises(InputError, match=problem) as exc:
        ingest("amazon_reviews_json", {"reviews": path})
    _one_line(exc, "reviews.json")


def test_amazon_line_numbers_count_blank_lines_and_missing_rating_stays_null(tmp_path):
    path = tmp_path / "reviews.json.gz"
    lines = _review_lines([5.0, None, 3.0, 7.5]).split("\n")
    path.write_bytes(gzip.compress(("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])).encode()))
    with pytest.raises(InputError, match=r"line 5: rating 7.5 is outside") as exc:
        ingest("amazon_reviews_json", {"reviews": path})
    _one_line(exc, "reviews.json.gz")
    path.write_text(_review_lines([5.0, None, "3"]))  # a numeric string is accepted, as before
    ds = ingest("amazon_reviews_json", {"reviews": path})
    assert ds.interactions.sort("user_id")["rating"].to_list() == [5.0, None, 3.0]


def _atomic(tmp_path, ratings) -> Path:
    path = tmp_path / "ml.inter"
    rows = [f"{u}\t{10 + u}\t{r}\t{100 + u}" for u, r in enumerate(ratings)]
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("6", r"data row 2: rating 6 is outside \[1, 5\] \(1 such data rows\)"),
        ("0.5", r"data row 2: rating 0.5 is outside \[1, 5\]"),
        ("abc", r"data row 2: rating 'abc' is not a number \(1 such rows\)"),
        ("nan", r"data row 2: rating nan is not finite"),
    ],
)
def test_atomic_bad_rating_names_file_row_and_value(tmp_path, bad, problem):
    path = _atomic(tmp_path, ["4", bad, "3"])
    with pytest.raises(InputError, match=problem) as exc:
        ingest("recbole_atomic", {"inter": path})
    _one_line(exc, "ml.inter")


def test_atomic_good_ratings_and_empty_field_unchanged(tmp_path):
    ds = ingest("recbole_atomic", {"inter": _atomic(tmp_path, ["4", "1", "5.0"])})
    assert ds.interactions.schema["rating"] == pl.Float32
    assert ds.interactions.sort("user_id")["rating"].to_list() == [4.0, 1.0, 5.0]
    with pytest.raises(InputError, match="data row 2: empty field"):
        ingest("recbole_atomic", {"inter": _atomic(tmp_path, ["4", "", "3"])})
