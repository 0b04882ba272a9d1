"""Direct-recommendation candidate lists: exactness, seeding, uniformity, the file reader, real Beauty."""

from __future__ import annotations

import re
import time

import numpy as np
import polars as pl
import pytest

from llmrecbench.data import filtering
from llmrecbench.data.candidates import CandidateError, read_candidates, sample_candidates, stage_rng
from llmrecbench.data.sequences import LeaveOneOutSequences, load_leave_one_out
from llmrecbench.data.splits import leave_one_out
from llmrecbench.errors import InputError
from llmrecbench.io import write_parquet


def _synthetic(n_users: int = 80, n_items: int = 300, seed: int = 0, user_ids: np.ndarray | None = None) -> LeaveOneOutSequences:
    """Random sequences of 3..25 items (repeats allowed, as a sequence may revisit an item)."""
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, n_items, size=rng.integers(3, 26)) for _ in range(n_users)]
    return LeaveOneOutSequences(
        user_ids=np.arange(n_users, dtype=np.int64) if user_ids is None else user_ids,
        train=[s[:-2] for s in seqs],
        valid_target=np.array([s[-2] for s in seqs], dtype=np.int64),
        test_target=np.array([s[-1] for s in seqs], dtype=np.int64),
        n_items=n_items,
    )


def _lists(df: pl.DataFrame) -> np.ndarray:
    return np.asarray(df["candidates"].to_list(), dtype=np.int64)


def _check(df: pl.DataFrame, data: LeaveOneOutSequences, stage: str, n_negatives: int) -> None:
    """Every protocol property of one stage's candidate frame (vectorised; also used on full Beauty)."""
    assert df.schema == pl.Schema({"user_id": pl.Int32, "target_item_id": pl.Int32, "candidates": pl.List(pl.Int32)})
    assert df.height == data.n_users
    assert np.array_equal(df["user_id"].to_numpy(), data.user_ids)
    assert np.array_equal(df["target_item_id"].to_numpy(), data.targets(stage))
    assert (df["candidates"].list.len() == n_negatives + 1).all()
    cands = _lists(df)
    assert cands.min() >= 0 and cands.max() < data.n_items
    targets = data.targets(stage)
    assert ((cands == targets[:, None]).sum(1) == 1).all(), "target exactly once per list"
    srt = np.sort(cands, axis=1)
    assert (srt[:, 1:] != srt[:, :-1]).all(), "distinct items per list"
    # no negative is an item of the user's whole sequence (train + valid + test)
    n = data.n_items
    lengths = np.array([len(t) for t in data.train])
    rows = np.arange(data.n_users)
    seq_keys = np.unique(np.concatenate([
        np.repeat(rows, lengths) * n + np.concatenate(data.train),
        rows * n + data.valid_target,
        rows * n + data.test_target,
    ]))
    neg_mask = cands != targets[:, None]
    neg_keys = (rows[:, None] * n + cands)[neg_mask]
    assert not np.isin(neg_keys, seq_keys).any(), "a negative is in the user's sequence"
    # the target's position says nothing: spread over all positions
    pos = (cands == targets[:, None]).argmax(1)
    if data.n_users >= 400:
        assert np.unique(pos).size > (n_negatives + 1) // 2


@pytest.mark.parametrize("n_items", [300, 5000])  # 300: exact per-row draws; 5000: rejection rounds
@pytest.mark.parametrize("stage", ["valid", "test"])
def test_lists_follow_the_protocol(stage, n_items):
    data = _synthetic(n_users=500, n_items=n_items)
    _check(sample_candidates(data, stage, 99, seed=7), data, stage, 99)


def test_same_seed_same_bytes_other_seed_other_lists(tmp_path):
    data = _synthetic(n_items=2000)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(sample_candidates(data, "test", seed=2022), a)
    write_parquet(sample_candidates(data, "test", seed=2022), b)
    assert a.read_bytes() == b.read_bytes()
    other = sample_candidates(data, "test", seed=2023)
    same = sample_candidates(data, "test", seed=2022)
    assert (_lists(other) != _lists(same)).any(axis=1).all(), "another seed changes every user's list"
    assert other["target_item_id"].equals(same["target_item_id"])


def test_valid_and_test_negatives_are_independent():
    """Overlap of the two negative sets per user is what independent uniform draws give:
    E|N_v ∩ N_t| = k^2 / F_u for F_u free items (k = 99)."""
    data = _synthetic(n_users=600, n_items=3000)
    v, t = sample_candidates(data, "valid"), sample_candidates(data, "test")
    vl, tl = _lists(v), _lists(t)
    overlap, expected = [], []
    for r in range(data.n_users):
        seq = set(data.train[r].tolist()) | {int(data.valid_target[r]), int(data.test_target[r])}
        nv = set(vl[r].tolist()) - {int(data.valid_target[r])}
        nt = set(tl[r].tolist()) - {int(data.test_target[r])}
        overlap.append(len(nv & nt))
        expected.append(99 * 99 / (data.n_items - len(seq)))
    overlap, expected = np.array(overlap), np.array(expected)
    # a sum of near-Poisson counts: mean ~3.3 per user, sd of the mean ~0.07
    assert abs(overlap.mean() - expected.mean()) < 0.35
    assert not np.array_equal(vl, tl)
    # the two stages use independent streams of one seed
    assert stage_rng(2022, "valid").integers(1 << 62) != stage_rng(2022, "test").integers(1 << 62)


@pytest.mark.parametrize("n_negatives", [20, 40])  # 20: rejection rounds; 40: exact per-row draws (138 < 4 * 40)
def test_negatives_are_uniform_over_never_interacted_items(n_negatives):
    """2,000 users with one sequence (items 0..11) over 150 items: every one of the 138 free items
    is drawn, with chi-square(137) counts (mean 137, sd 16.6); never an item of the sequence."""
    n_users, n_items = 2000, 150
    seq = np.arange(12)
    data = LeaveOneOutSequences(
        user_ids=np.arange(n_users), train=[seq[:-2]] * n_users, valid_target=np.full(n_users, 10),
        test_target=np.full(n_users, 11), n_items=n_items,
    )
    cands = _lists(sample_candidates(data, "test", n_negatives, seed=1))
    negs = cands[cands != 11]
    counts = np.bincount(negs, minlength=n_items)
    assert counts[:12].sum() == 0
    free = counts[12:]
    expected = n_users * n_negatives / free.size
    chi2 = float(((free - expected) ** 2 / expected).sum())
    assert (free > 0).all() and chi2 < 137 + 6 * 16.6


def test_too_few_free_items_is_a_one_line_error():
    data = LeaveOneOutSequences(
        user_ids=np.array([4, 9]), train=[np.arange(5), np.arange(95)], valid_target=np.array([5, 95]),
        test_target=np.array([6, 96]), n_items=100,
    )
    with pytest.raises(CandidateError, match=r"^user_id 9 interacted with 97 of 100 items, leaving 3 .* 50 negatives \(1 such users\)") as exc:
        sample_candidates(data, "test", 50)
    assert "\n" not in str(exc.value)
    assert sample_candidates(data, "test", 3)["candidates"].list.len().to_list() == [4, 4]


def test_user_ids_need_not_be_rows():
    ids = np.arange(80, dtype=np.int64)[::-1] * 3 + 5
    data = _synthetic(user_ids=ids)
    df = sample_candidates(data, "valid")
    _check(df, data, "valid", 99)
    assert df["user_id"].to_list() == ids.tolist()


def test_unknown_stage():
    with pytest.raises(ValueError, match="stage must be 'valid' or 'test'"):
        sample_candidates(_synthetic(), "train")


# --- read_candidates --------------------------------------------------------------------------


def test_read_round_trip_aligns_rows_to_the_split(tmp_path):
    data = _synthetic(n_items=1000)
    df = sample_candidates(data, "test")
    path = tmp_path / "c.parquet"
    write_parquet(df.reverse(), path)  # file order differs from the split's
    rows, cands, targets = read_candidates(path, data, stage="test")
    assert np.array_equal(rows, np.arange(data.n_users))
    assert cands.dtype == np.int64 and cands.shape == (data.n_users, 100)
    assert np.array_equal(cands, _lists(df)) and np.array_equal(targets, data.test_target)
    # a subset of users, when allowed
    write_parquet(df[10:20].reverse(), path)
    rows, cands, _ = read_candidates(path, data, require_all=False)
    assert rows.tolist() == list(range(10, 20)) and np.array_equal(cands, _lists(df)[10:20])


def _bad(df: pl.DataFrame, case: str) -> pl.DataFrame:
    lists = df["candidates"].to_list()
    if case == "duplicate_user":
        return pl.concat([df, df[:1]])
    if case == "missing_user":
        return df[1:]
    if case == "foreign_user":
        return df.with_columns(pl.Series("user_id", [999] + df["user_id"].to_list()[1:], dtype=pl.Int32))
    row = {"target_missing": 0, "lengths": 3, "repeat": 2, "range": 1}[case]
    target = df["target_item_id"][row]
    negatives = [i for i, x in enumerate(lists[row]) if x != target]
    if case == "target_missing":
        fill = next(x for x in range(10**6) if x not in lists[row])
        lists[row] = [fill if x == target else x for x in lists[row]]
    elif case == "lengths":
        del lists[row][negatives[0]]
    elif case == "repeat":
        lists[row][negatives[1]] = lists[row][negatives[0]]
    elif case == "range":
        lists[row][negatives[0]] = 10_000
    return df.with_columns(pl.Series("candidates", lists, dtype=pl.List(pl.Int32)))


@pytest.mark.parametrize(
    "case, message",
    [
        ("duplicate_user", r"more than one row per user \(e.g. user_id 0\)"),
        ("missing_user", r"no candidates for 1 of 80 users \(e.g. user_id 0\)"),
        ("foreign_user", r"user_id 999 is not a user of the split"),
        ("target_missing", r"user_id 0: target item \d+ is not in its candidate list"),
        ("lengths", r"candidate lists must all have one positive length, got lengths 99..100"),
        ("repeat", r"user_id 2: candidate list repeats item \d+"),
        ("range", r"item id 10000 out of range for 1000 items"),
    ],
)
def test_read_rejects_bad_files(tmp_path, case, message):
    data = _synthetic(n_items=1000)
    path = tmp_path / "c.parquet"
    write_parquet(_bad(sample_candidates(data, "test"), case), path)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: {message}"):
        read_candidates(path, data)


def test_read_checks_stage_target_columns_and_existence(tmp_path):
    data = _synthetic(n_items=1000)
    path = tmp_path / "c.parquet"
    write_parquet(sample_candidates(data, "valid"), path)
    read_candidates(path, data, stage="valid")
    differ = int(np.flatnonzero(data.valid_target != data.test_target)[0])
    with pytest.raises(InputError, match=rf"user_id {differ}: target item \d+ is not its test target"):
        read_candidates(path, data, stage="test")
    write_parquet(sample_candidates(data, "valid").drop("target_item_id"), path)
    with pytest.raises(InputError, match="missing column"):
        read_candidates(path, data)
    with pytest.raises(InputError, match="file does not exist"):
        read_candidates(tmp_path / "nope.parquet", data)


# --- real data --------------------------------------------------------------------------------


def _split_sequences(ds, tmp_path) -> LeaveOneOutSequences:
    train, valid, test = leave_one_out(ds.interactions)
    for name, frame in (("train", train), ("valid", valid), ("test", test)):
        write_parquet(frame, tmp_path / f"{name}.parquet")
    return load_leave_one_out(tmp_path, int(ds.items["item_id"].max()) + 1)


def test_beauty_slice_of_500_users(beauty_canonical, tmp_path):
    ds, _ = beauty_canonical
    data = _split_sequences(filtering.subsample_users(ds, 500, seed=2022), tmp_path)
    assert data.n_users == 500
    for stage in ("valid", "test"):
        df = sample_candidates(data, stage)
        _check(df, data, stage, 99)
        write_parquet(df, tmp_path / f"{stage}_a.parquet")
        write_parquet(sample_candidates(data, stage), tmp_path / f"{stage}_b.parquet")
        assert (tmp_path / f"{stage}_a.parquet").read_bytes() == (tmp_path / f"{stage}_b.parquet").read_bytes()
        rows, cands, targets = read_candidates(tmp_path / f"{stage}_a.parquet", data, stage=stage)
        assert np.array_equal(cands, _lists(df)) and np.array_equal(targets, data.targets(stage))
    assert not sample_candidates(data, "test", seed=1)["candidates"].equals(sample_candidates(data, "test")["candidates"])


def test_full_beauty_in_seconds(beauty_canonical, tmp_path):
    """22,363 users x 12,101 items: exact lists in a few seconds."""
    ds, _ = beauty_canonical
    data = _split_sequences(ds, tmp_path)
    assert (data.n_users, data.n_items) == (22363, 12101)
    t0 = time.perf_counter()
    df = sample_candidates(data, "test")
    seconds = time.perf_counter() - t0
    _check(df, data, "test", 99)
    assert seconds < 20, f"sampling took {seconds:.1f} s"
