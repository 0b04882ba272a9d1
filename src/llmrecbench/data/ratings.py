"""Explicit ratings of the rating-prediction task (P5 / LLMRec protocol).

The task reads the 8:1:1 split written by :func:`llmrecbench.data.splits.ratio_split` (one parquet
file per part, columns ``user_id``, ``item_id``, ``rating`` and others that are ignored) into
:class:`RatingData`: three aligned arrays plus the sizes of the id spaces. Rows keep the file's
order (the split files are sorted by ``user_id, position``).

Every rating must be a finite number in [1, 5] (the star scale of MovieLens and Amazon);
:func:`check_ratings` enforces that, here and when raw files are ingested, and names the first
offending row or line of the file in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from llmrecbench.errors import InputError

RATING_MIN = 1.0
RATING_MAX = 5.0


@dataclass(frozen=True)
class RatingData:
    """Aligned (user, item, rating) triples over ``n_users`` users and ``n_items`` items (0-based ids)."""

    users: np.ndarray  # int64 [n]
    items: np.ndarray  # int64 [n]
    ratings: np.ndarray  # float32 [n]
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        users = np.ascontiguousarray(self.users, dtype=np.int64)
        items = np.ascontiguousarray(self.items, dtype=np.int64)
        ratings = np.ascontiguousarray(self.ratings, dtype=np.float32)
        if not (users.ndim == items.ndim == ratings.ndim == 1) or not (users.shape == items.shape == ratings.shape):
            raise ValueError(f"users, items and ratings must be 1-D of one length, got {users.shape}, {items.shape}, {ratings.shape}")
        if self.n_users < 1 or self.n_items < 1:
            raise ValueError(f"n_users and n_items must be positive, got {self.n_users}, {self.n_items}")
        for ids, size, what in ((users, self.n_users, "user"), (items, self.n_items, "item")):
            if ids.size and (ids.min() < 0 or ids.max() >= size):
                raise ValueError(f"{what} ids must lie in [0, {size}), got [{ids.min()}, {ids.max()}]")
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "ratings", ratings)
        object.__setattr__(self, "n_users", int(self.n_users))
        object.__setattr__(self, "n_items", int(self.n_items))

    @property
    def n(self) -> int:
        """Number of rated (user, item) pairs."""
        return int(self.ratings.shape[0])

    def global_mean(self) -> float:
        """mu = (1/n) * sum_(u,i) r_ui, accumulated in float64."""
        if self.n == 0:
            raise ValueError("global mean of no ratings")
        return float(self.ratings.astype(np.float64).mean())


def check_ratings(
    values: Sequence[Any] | np.ndarray,
    path: str | Path,
    what: str = "row",
    positions: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """``values`` as float32 after checking that each is a finite number in [1, 5].

    ``what`` names the unit of the file the values come from ("row", "line", "data row") and
    ``positions[k]`` the 1-based number of value k in that unit (default: k + 1). The first bad
    value raises :class:`InputError`, e.g. ``"<path>: line 7: rating 6 is outside [1, 5] (2 such lines)"``;
    a missing value (None) is reported as missing, NaN or infinity as not finite, a string that
    is not a number as non-numeric.
    """
    arr = np.asarray(values)
    pos = np.arange(1, arr.shape[0] + 1) if positions is None else np.asarray(positions)
    if arr.ndim != 1 or pos.shape != arr.shape:
        raise ValueError(f"ratings must be 1-D with one position each, got shapes {arr.shape} and {pos.shape}")
    missing = np.zeros(arr.shape[0], dtype=bool)
    if arr.dtype.kind in "iuf":
        floats = arr.astype(np.float64)
    else:  # strings, None, mixed objects: parse one by one to name the first bad one
        floats = np.empty(arr.shape[0], dtype=np.float64)
        for k, v in enumerate(arr.tolist()):
            if v is None:
                missing[k], floats[k] = True, np.nan
                continue
            try:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, str, np.integer, np.floating)):
                    raise TypeError(type(v).__name__)
                floats[k] = float(v)
            except (TypeError, ValueError):
                raise InputError(path, f"{what} {pos[k]}: rating {v!r} is not a number") from None
    if missing.any():
        k = int(np.flatnonzero(missing)[0])
        raise InputError(path, f"{what} {pos[k]}: rating is missing ({int(missing.sum())} such {what}s)")
    infinite = ~np.isfinite(floats)
    if infinite.any():
        k = int(np.flatnonzero(infinite)[0])
        raise InputError(path, f"{what} {pos[k]}: rating {floats[k]} is not finite ({int(infinite.sum())} such {what}s)")
    outside = (floats < RATING_MIN) | (floats > RATING_MAX)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise InputError(
            path, f"{what} {pos[k]}: rating {floats[k]:g} is outside [{RATING_MIN:g}, {RATING_MAX:g}] ({int(outside.sum())} such {what}s)"
        )
    return floats.astype(np.float32)


def load_ratings(path: str | Path, n_users: int, n_items: int) -> RatingData:
    """One part (train, valid or test) of the 8:1:1 split as :class:`RatingData`, in file order.

    ``n_users`` / ``n_items`` are the sizes of the dataset's id spaces (all parts share them).
    Raises :class:`InputError` (one line, naming the file) for a missing or unreadable file, a
    missing column (no ``rating`` column: the dataset provides no ratings), a null, non-finite
    or out-of-range rating, or an id outside ``[0, n_users)`` / ``[0, n_items)``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises ComputeError / OSError variants
        raise InputError(path, f"cannot read as parquet ({type(exc).__name__}: {exc})") from exc
    if "rating" not in schema:
        raise InputError(
            path, f"no rating column: the dataset provides no ratings, so it cannot serve the rating task (columns: {', '.join(schema)})"
        )
    for col in ("user_id", "item_id"):
        if col not in schema:
            raise InputError(path, f"no {col} column (columns: {', '.join(schema)})")
    try:
        df = pl.read_parquet(path, columns=["user_id", "item_id", "rating"])
    except Exception as exc:
        raise InputError(path, f"cannot read as parquet ({type(exc).__name__}: {exc})") from exc
    ids = {}
    for col, size in (("user_id", n_users), ("item_id", n_items)):
        s = df[col]
        if not s.dtype.is_integer():
            raise InputError(path, f"column {col} is {s.dtype}, not integer")
        if s.null_count():
            k = int(s.is_null().arg_true()[0])
            raise InputError(path, f"row {k + 1}: {col} is missing ({s.null_count()} such rows)")
        arr = s.to_numpy().astype(np.int64)
        bad = (arr < 0) | (arr >= size)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InputError(path, f"row {k + 1}: {col} {arr[k]} is outside [0, {size}) ({int(bad.sum())} such rows)")
        ids[col] = arr
    rating = df["rating"]
    if rating.dtype.is_numeric():
        if rating.null_count():
            k = int(rating.is_null().arg_true()[0])
            raise InputError(path, f"row {k + 1}: rating is missing ({rating.null_count()} such rows)")
        values: Any = rating.cast(pl.Float64).to_numpy()
    else:  # strings, all-null: parsed one by one so the first bad value is named
        values = rating.to_list()
    ratings = check_ratings(values, path, "row")
    return RatingData(ids["user_id"], ids["item_id"], ratings, n_users, n_items)
