"""Candidate lists of the direct recommendation task (P5 protocol, LLMRec Table 5).

For user u with chronological sequence i_1..i_n (leave-one-out: train i_1..i_{n-2}, valid target
i_{n-1}, test target i_n) and stage s in {valid, test}:

    C_u^s = shuffle({t_u^s} ∪ N_u^s),   N_u^s ~ Uniform{ S ⊂ I \\ {i_1..i_n} : |S| = n_negatives }

i.e. the stage's target plus ``n_negatives`` (99) distinct items drawn uniformly without
replacement from the items u never interacted with in the *whole* sequence (train + valid +
test), listed in a seeded random order so that a candidate's position says nothing about it.

Seeding: stage s draws from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(k_s,)))``
with k_valid = 1, k_test = 2, so valid and test negatives are independent streams of one seed
and equal inputs give identical lists (and, through :func:`llmrecbench.io.write_parquet`,
byte-identical files).

Sampling (vectorised, exact): all users draw ``n_negatives`` ids uniformly from 0..n_items-1 at
once; entries that hit the user's sequence or repeat an earlier entry of the same row are redrawn,
round after round, until no row has a clash. The procedure treats every never-interacted item
alike (it only tests equality and sequence membership), so the distribution of the final set is
invariant under any permutation of those items and hence uniform over all n_negatives-subsets.
Users with few free items (fewer than 4 * n_negatives) draw with ``rng.choice`` over their free
items instead, so rejection never stalls.

File layout (one row per user, in the split's user order): ``user_id`` Int32,
``target_item_id`` Int32, ``candidates`` List(Int32) of length n_negatives + 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import BenchError, InputError

# spawn keys of the seeded streams: the valid and test candidate files, and the negatives of the
# LLM training prompts of the direct task (llm.task_prompts), independent of both
STAGE_KEYS = {"valid": 1, "test": 2, "train": 3}
COLUMNS = ("user_id", "target_item_id", "candidates")
# rows with fewer free items than this many times n_negatives sample exactly with rng.choice
_DENSE_FACTOR = 4


class CandidateError(BenchError):
    """The candidate lists cannot be drawn under the requested protocol (too few free items)."""


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """The generator of ``stage``'s candidates: default_rng(SeedSequence(seed, spawn_key=(k_stage,)))."""
    if stage not in STAGE_KEYS:
        raise ValueError(f"stage must be one of {', '.join(STAGE_KEYS)}, got {stage!r}")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STAGE_KEYS[stage],)))


def _interaction_keys(data: LeaveOneOutSequences) -> np.ndarray:
    """Sorted unique keys row * n_items + item over every user's whole sequence (train, valid, test)."""
    n = data.n_items
    lengths = np.fromiter((len(t) for t in data.train), dtype=np.int64, count=data.n_users)
    rows = np.arange(data.n_users, dtype=np.int64)
    train_items = np.concatenate([np.asarray(t, dtype=np.int64) for t in data.train]) if data.n_users else np.empty(0, np.int64)
    keys = np.concatenate([
        np.repeat(rows, lengths) * n + train_items,
        rows * n + np.asarray(data.valid_target, dtype=np.int64),
        rows * n + np.asarray(data.test_target, dtype=np.int64),
    ])
    return np.unique(keys)


def _later_duplicates(block: np.ndarray) -> np.ndarray:
    """Mask of entries equal to an earlier entry (lower column) of the same row."""
    order = np.argsort(block, axis=1, kind="stable")
    srt = np.take_along_axis(block, order, axis=1)
    dup_sorted = np.zeros(block.shape, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    return dup


def _in_sequence(rows: np.ndarray, block: np.ndarray, keys: np.ndarray, n_items: int) -> np.ndarray:
    q = rows[:, None] * n_items + block
    idx = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return keys[idx] == q


def sample_negatives(data: LeaveOneOutSequences, n_negatives: int, rng: np.random.Generator) -> np.ndarray:
    """``[U, n_negatives]`` int64: per data row, distinct items outside the user's whole sequence.

    See the module docstring for the procedure and why the result is uniform.
    """
    if n_negatives < 1:
        raise CandidateError(f"n_negatives must be positive, got {n_negatives}")
    n, U = data.n_items, data.n_users
    keys = _interaction_keys(data)
    free = n - np.bincount(keys // n, minlength=U)
    short = np.flatnonzero(free < n_negatives)
    if short.size:
        r = int(short[0])
        raise CandidateError(
            f"user_id {int(data.user_ids[r])} interacted with {n - int(free[r])} of {n} items, leaving {int(free[r])} "
            f"never-interacted items: too few for {n_negatives} negatives ({short.size} such users)"
        )
    out = np.empty((U, n_negatives), dtype=np.int64)
    dense = free < _DENSE_FACTOR * n_negatives
    sparse_rows = np.flatnonzero(~dense)
    # rejection rounds over the rows with plenty of free items
    out[sparse_rows] = rng.integers(0, n, size=(sparse_rows.size, n_negatives))
    todo = sparse_rows
    while todo.size:
        block = out[todo]
        bad = _in_sequence(todo, block, keys, n) | _later_duplicates(block)
        has_bad = bad.any(axis=1)
        todo, block, bad = todo[has_bad], block[has_bad], bad[has_bad]
        if not todo.size:
            break
        block[bad] = rng.integers(0, n, size=int(bad.sum()))
        out[todo] = block
    # exact draws for the (rare) rows with few free items, in row order
    for r in np.flatnonzero(dense).tolist():
        lo, hi = np.searchsorted(keys, [r * n, (r + 1) * n])
        seq = keys[lo:hi] - r * n
        allowed = np.setdiff1d(np.arange(n, dtype=np.int64), seq, assume_unique=True)
        out[r] = rng.choice(allowed, size=n_negatives, replace=False)
    return out


def sample_candidates(data: LeaveOneOutSequences, stage: str, n_negatives: int = 99, seed: int = 2022) -> pl.DataFrame:
    """The ``stage`` candidate lists of every user (module docstring): ``user_id`` Int32,
    ``target_item_id`` Int32, ``candidates`` List(Int32) (target + ``n_negatives``, shuffled)."""
    rng = stage_rng(seed, stage)
    targets = np.asarray(data.targets(stage), dtype=np.int64)
    negatives = sample_negatives(data, n_negatives, rng)
    candidates = rng.permuted(np.column_stack([targets, negatives]), axis=1)
    return pl.DataFrame({
        "user_id": pl.Series(np.asarray(data.user_ids), dtype=pl.Int32),
        "target_item_id": pl.Series(targets, dtype=pl.Int32),
        "candidates": pl.Series(candidates.astype(np.int32)).cast(pl.List(pl.Int32)),
    })


def read_candidates(
    path: str | Path,
    data: LeaveOneOutSequences,
    stage: str | None = None,
    require_all: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and validate a candidate file against the split ``data``.

    Returns ``(rows, candidates, targets)``: ``rows`` [U'] int64 are the row indices into ``data``
    (``data.user_ids[rows]`` are the file's users), ascending, i.e. the file aligned to the
    split's user order; ``candidates`` [U', C] and ``targets`` [U'] are int64 in that order.

    Checks (InputError(path, problem) on the first failure): the columns exist without nulls; one
    row per user; every user is a user of ``data`` and, with ``require_all``, every user of
    ``data`` has a row; all lists have one length C >= 1; item ids lie in 0..n_items-1; a list
    holds no item twice and its target exactly once; with ``stage`` the target is that stage's
    leave-one-out target.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several exception types for bad parquet
        raise InputError(path, f"cannot read parquet ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    if not isinstance(df.schema["candidates"], (pl.List, pl.Array)):
        raise InputError(path, f"column candidates must be a list of item ids, got {df.schema['candidates']}")
    df = df.select(COLUMNS)
    nulls = {c: n for c, n in zip(df.columns, df.null_count().row(0)) if n}
    if nulls:
        raise InputError(path, f"null values in column(s) {', '.join(nulls)}")
    if df.height == 0:
        raise InputError(path, "no rows")
    users = df["user_id"].to_numpy().astype(np.int64)
    uniq, counts = np.unique(users, return_counts=True)
    if (counts > 1).any():
        raise InputError(path, f"more than one row per user (e.g. user_id {int(uniq[counts > 1][0])})")
    data_users = np.asarray(data.user_ids, dtype=np.int64)
    order = np.argsort(data_users, kind="stable")
    pos = np.minimum(np.searchsorted(data_users[order], users), data_users.size - 1)
    known = data_users[order][pos] == users
    if not known.all():
        raise InputError(path, f"user_id {int(users[~known][0])} is not a user of the split ({(~known).sum()} such rows)")
    rows_of_file = order[pos]
    if require_all and users.size != data_users.size:
        absent = np.setdiff1d(data_users, users)
        raise InputError(path, f"no candidates for {absent.size} of {data_users.size} users (e.g. user_id {int(absent[0])})")
    lengths = df["candidates"].list.len().to_numpy()
    if lengths.min() != lengths.max() or lengths.min() < 1:
        raise InputError(path, f"candidate lists must all have one positive length, got lengths {int(lengths.min())}..{int(lengths.max())}")
    flat = df["candidates"].explode()
    if flat.null_count():
        raise InputError(path, "null item ids inside candidate lists")
    cands = np.asarray(flat.to_numpy(), dtype=np.int64).reshape(df.height, int(lengths[0]))
    targets = df["target_item_id"].to_numpy().astype(np.int64)
    bad = (cands < 0) | (cands >= data.n_items)
    if bad.any() or (targets < 0).any() or (targets >= data.n_items).any():
        item = int(cands[bad][0]) if bad.any() else int(targets[(targets < 0) | (targets >= data.n_items)][0])
        raise InputError(path, f"item id {item} out of range for {data.n_items} items")
    dup = _later_duplicates(cands)
    if dup.any():
        r = int(np.flatnonzero(dup.any(axis=1))[0])
        raise InputError(path, f"user_id {int(users[r])}: candidate list repeats item {int(cands[r][dup[r]][0])}")
    has_target = (cands == targets[:, None]).any(axis=1)
    if not has_target.all():
        r = int(np.flatnonzero(~has_target)[0])
        raise InputError(path, f"user_id {int(users[r])}: target item {int(targets[r])} is not in its candidate list")
    if stage is not None:
        expected = np.asarray(data.targets(stage), dtype=np.int64)[rows_of_file]
        wrong = targets != expected
        if wrong.any():
            r = int(np.flatnonzero(wrong)[0])
            raise InputError(path, f"user_id {int(users[r])}: target item {int(targets[r])} is not its {stage} target {int(expected[r])}")
    sort = np.argsort(rows_of_file, kind="stable")
    return rows_of_file[sort].astype(np.int64), cands[sort], targets[sort]
