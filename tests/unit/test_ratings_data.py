"""Loading the rating task's split files: RatingData in file order, one-line errors on bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from llmrecbench.data.ratings import RatingData, check_ratings, load_ratings
from llmrecbench.data.splits import ratio_split
from llmrecbench.errors import InputError
from llmrecbench.io import write_parquet


def _split_file(tmp_path, ratings, name="train.parquet", users=None, items=None, dtype=pl.Float32):
    n = len(ratings)
    df = pl.DataFrame(
        {
            "user_id": pl.Series(users if users is not None else [k // 2 for k in range(n)], dtype=pl.Int32),
            "item_id": pl.Series(items if items is not None else [k % 3 for k in range(n)], dtype=pl.Int32),
            "position": pl.Series([k % 2 for k in range(n)], dtype=pl.Int32),
            "rating": pl.Series(ratings, dtype=dtype),
            "review": [f"text {k}" for k in range(n)],
        }
    )
    path = tmp_path / name
    write_parquet(df, path)
    return path


def _one_line(exc, path) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    return msg


def test_loads_in_file_order_with_dtypes(tmp_path):
    path = _split_file(tmp_path, [5.0, 3.0, 4.0, 1.0], users=[0, 0, 2, 1], items=[2, 0, 1, 1])
    data = load_ratings(path, n_users=3, n_items=4)
    assert data.users.tolist() == [0, 0, 2, 1] and data.items.tolist() == [2, 0, 1, 1]
    assert data.ratings.tolist() == [5.0, 3.0, 4.0, 1.0]
    assert (data.users.dtype, data.items.dtype, data.ratings.dtype) == (np.int64, np.int64, np.float32)
    assert (data.n, data.n_users, data.n_items) == (4, 3, 4)
    assert data.global_mean() == pytest.approx(13 / 4)


def test_reads_the_files_ratio_split_writes(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    inter = pl.DataFrame(
        {
            "user_id": pl.Series(np.repeat(np.arange(20), 10), dtype=pl.Int32),
            "item_id": pl.Series(rng.integers(0, 15, n), dtype=pl.Int32),
            "position": pl.Series(np.tile(np.arange(10), 20), dtype=pl.Int32),
            "timestamp": pl.Series(np.arange(n), dtype=pl.Int64),
            "rating": pl.Series(rng.integers(1, 6, n).astype(np.float32), dtype=pl.Float32),
        }
    )
    parts = ratio_split(inter, seed=2022)
    loaded = []
    for name, frame in zip(("train", "valid", "test"), parts):
        write_parquet(frame, tmp_path / f"{name}.parquet")
        loaded.append(load_ratings(tmp_path / f"{name}.parquet", 20, 15))
    assert sum(d.n for d in loaded) == n
    assert loaded[0].ratings.tolist() == parts[0]["rating"].to_list()
    assert loaded[2].users.tolist() == parts[2]["user_id"].to_list()


@pytest.mark.parametrize(
    "bad, problem",
    [
        (6.0, r"row 3: rating 6 is outside \[1, 5\] \(1 such rows\)"),
        (0.0, r"row 3: rating 0 is outside \[1, 5\]"),
        (float("nan"), r"row 3: rating nan is not finite"),
        (float("inf"), r"row 3: rating inf is not finite"),
        (None, r"row 3: rating is missing \(1 such rows\)"),
    ],
)
def test_bad_rating_is_one_line_naming_the_file_and_row(tmp_path, bad, problem):
    path = _split_file(tmp_path, [4.0, 5.0, bad, 2.0])
    with pytest.raises(InputError, match=problem) as exc:
        load_ratings(path, 2, 3)
    _one_line(exc, path)


def test_non_numeric_rating_column(tmp_path):
    path = _split_file(tmp_path, ["4", "five"], dtype=pl.Utf8)
    with pytest.raises(InputError, match=r"row 2: rating 'five' is not a number") as exc:
        load_ratings(path, 1, 3)
    _one_line(exc, path)


def test_missing_rating_column_says_the_dataset_has_no_ratings(tmp_path):
    path = tmp_path / "train.parquet"
    write_parquet(pl.DataFrame({"user_id": [0], "item_id": [0], "position": [0]}), path)
    with pytest.raises(InputError, match="no rating column: the dataset provides no ratings") as exc:
        load_ratings(path, 1, 1)
    _one_line(exc, path)


def test_missing_file_and_not_parquet(tmp_path):
    with pytest.raises(InputError, match="file does not exist") as exc:
        load_ratings(tmp_path / "nope.parquet", 1, 1)
    _one_line(exc, tmp_path / "nope.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet\n")
    with pytest.raises(InputError, match="cannot read as parquet") as exc:
        load_ratings(junk, 1, 1)
    _one_line(exc, junk)


def test_ids_out_of_range(tmp_path):
    path = _split_file(tmp_path, [4.0, 5.0], users=[0, 7], items=[0, 1])
    with pytest.raises(InputError, match=r"row 2: user_id 7 is outside \[0, 2\)") as exc:
        load_ratings(path, 2, 3)
    _one_line(exc, path)
    path = _split_file(tmp_path, [4.0, 5.0], users=[0, 1], items=[-1, 1], name="valid.parquet")
    with pytest.raises(InputError, match=r"row 1: item_id -1 is outside \[0, 3\)"):
        load_ratings(path, 2, 3)


def test_check_ratings_names_the_given_positions(tmp_path):
    assert check_ratings([1, 2.5, "5"], "f.json", "line").tolist() == [1.0, 2.5, 5.0]
    with pytest.raises(InputError, match=r"^f\.json: line 12: rating 5\.5 is outside \[1, 5\] \(2 such lines\)$"):
        check_ratings(np.array([4.0, 5.5, 9.0]), "f.json", "line", positions=[3, 12, 14])
    with pytest.raises(InputError, match=r"line 4: rating \[5\] is not a number"):
        check_ratings(np.array([3, [5]], dtype=object), "f.json", "line", positions=[2, 4])
    with pytest.raises(InputError, match=r"line 1: rating True is not a number"):
        check_ratings(np.array([True, 3], dtype=object), "f.json", "line")


def test_rating_data_validates_shapes_and_ids():
    with pytest.raises(ValueError, match="one length"):
        RatingData(np.zeros(2), np.zeros(3), np.ones(2), 1, 1)
    with pytest.raises(ValueError, match="user ids"):
        RatingData(np.array([0, 3]), np.array([0, 0]), np.ones(2), 3, 1)
    with pytest.raises(ValueError, match="no ratings"):
        RatingData(np.empty(0), np.empty(0), np.empty(0), 1, 1).global_mean()
