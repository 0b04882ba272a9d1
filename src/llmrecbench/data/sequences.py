"""Per-user item sequences for next-item tasks, read from leave-one-out split files.

Split files (``results/{dataset}/splits/loo/{train,valid,test}.parquet``) hold one row per
interaction with at least ``user_id``, ``item_id`` and ``position`` (0-based order within the
user's full chronological sequence). Item ids are the dataset's canonical 0-based ids
(``items.parquet``), so every model works over ``n_items`` contiguous ids.

For user u with chronological sequence i_1..i_n:
  train history = i_1..i_{n-2};  valid: history i_1..i_{n-2} -> target i_{n-1};
  test: history i_1..i_{n-1} -> target i_n.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from llmrecbench.errors import InputError


@dataclass(frozen=True)
class LeaveOneOutSequences:
    """Training sequences and the valid/test targets of every user, aligned by row."""

    user_ids: np.ndarray  # [U] int64
    train: list[np.ndarray]  # per user, item ids in chronological order
    valid_target: np.ndarray  # [U] int64
    test_target: np.ndarray  # [U] int64
    n_items: int

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    def histories(self, stage: str) -> list[np.ndarray]:
        """Model input for ``stage``: 'valid' sees train items, 'test' also sees the valid item."""
        if stage == "valid":
            return self.train
        if stage == "test":
            return [np.append(h, v) for h, v in zip(self.train, self.valid_target)]
        raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")

    def targets(self, stage: str) -> np.ndarray:
        if stage == "valid":
            return self.valid_target
        if stage == "test":
            return self.test_target
        raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")

    def subset(self, rows: np.ndarray) -> "LeaveOneOutSequences":
        """The same structure restricted to the given row indices (e.g. a user sample)."""
        return LeaveOneOutSequences(
            user_ids=self.user_ids[rows],
            train=[self.train[i] for i in rows],
            valid_target=self.valid_target[rows],
            test_target=self.test_target[rows],
            n_items=self.n_items,
        )


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError(path, "file does not exist")
    try:
        df = pl.read_parquet(path, columns=["user_id", "item_id", "position"])
    except Exception as exc:  # polars raises several exception types for bad parquet
        raise InputError(path, f"cannot read parquet ({type(exc).__name__}: {exc})") from exc
    return df


def load_leave_one_out(split_dir: str | Path, n_items: int) -> LeaveOneOutSequences:
    """Read ``train/valid/test.parquet`` from ``split_dir`` into aligned per-user sequences."""
    split_dir = Path(split_dir)
    return load_split_files(split_dir / "train.parquet", split_dir / "valid.parquet", split_dir / "test.parquet", n_items)


def load_split_files(train_path: str | Path, valid_path: str | Path, test_path: str | Path, n_items: int) -> LeaveOneOutSequences:
    """Read the three leave-one-out split files (as a rule declares them) into aligned sequences."""
    train_path, valid_path, test_path = Path(train_path), Path(valid_path), Path(test_path)
    split_dir = train_path.parent
    train = _read(train_path).sort(["user_id", "position"])
    valid = _read(valid_path).sort("user_id")
    test = _read(test_path).sort("user_id")
    for path, df in ((valid_path, valid), (test_path, test)):
        if df["user_id"].n_unique() != df.height:
            raise InputError(path, "more than one row per user")
    if not (valid["user_id"].equals(test["user_id"])):
        raise InputError(test_path, f"holds other users than {valid_path.name}")
    users = valid["user_id"].to_numpy().astype(np.int64)
    grouped = train.group_by("user_id", maintain_order=True).agg(pl.col("item_id"))
    by_user = dict(zip(grouped["user_id"].to_list(), grouped["item_id"].to_list()))
    missing = [u for u in users[:5] if u not in by_user]
    if missing:
        raise InputError(train_path, f"users without training items, e.g. {missing}")
    seqs = [np.asarray(by_user[u], dtype=np.int64) for u in users.tolist()]
    max_item = max(int(train["item_id"].max()), int(valid["item_id"].max()), int(test["item_id"].max()))
    if max_item >= n_items:
        raise InputError(split_dir, f"item id {max_item} out of range for {n_items} items")
    return LeaveOneOutSequences(
        user_ids=users,
        train=seqs,
        valid_target=valid["item_id"].to_numpy().astype(np.int64),
        test_target=test["item_id"].to_numpy().astype(np.int64),
        n_items=n_items,
    )
