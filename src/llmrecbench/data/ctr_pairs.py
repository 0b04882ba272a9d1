"""Labelled user-item pairs for CTR prediction (RecBench's pair-wise scenario, Legommenders protocol).

Every user contributes *held-out pairs* (user, candidate item, click label) and one *history*
(their clicked items in time order, without the held-out ones). Users, not pairs, are split:
one seeded shuffle puts ``test_user_share`` of them in test; of the rest (the fine-tuning
users) ``valid_user_share`` validate and the others train. So no test user's behaviour is ever
seen in training, and every model (deep CTR or LLM) scores the same test pairs.

* **Rated data** (a ``rating`` column, e.g. all_beauty, ml-100k): rating >= ``positive_min_rating``
  is a click (1), rating <= ``negative_max_rating`` a non-click (0), ratings in between are
  dropped. Only users with both labels are kept. The held-out pairs are the user's last
  ``heldout_positives`` clicks plus their last ``max_heldout_negatives`` real non-clicks (time,
  then file position, orders them); the history is the remaining clicks.
* **Positive-only data** (sequences, e.g. Amazon 2014 Beauty): the last ``heldout_positives``
  items of the sequence are the held-out clicks and the items before them the history;
  ``negatives_per_user`` non-clicks are drawn uniformly, seeded, from the items the user never
  interacted with (whole sequence, the held-out items included).

Histories keep at most ``max_history`` items (the latest); an LLM prompt shows fewer
(``llm.prompts``). The frame written per part has one row per pair: ``user_id``, ``item_id``,
``label`` (0/1) and ``history`` (list of item ids, oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from llmrecbench.errors import ConfigError, InputError

PAIR_SCHEMA = {"user_id": pl.Int32, "item_id": pl.Int32, "label": pl.Int8, "history": pl.List(pl.Int32)}


@dataclass(frozen=True)
class CTRProtocol:
    """The labelling and splitting options (``tasks.ctr.ground_truth``; defaults in the schema)."""

    positive_min_rating: float
    negative_max_rating: float
    heldout_positives: int
    max_heldout_negatives: int
    negatives_per_user: int
    max_history: int
    test_user_share: float
    valid_user_share: float
    seed: int

    @classmethod
    def from_options(cls, options: dict) -> "CTRProtocol":
        try:
            proto = cls(**{k: options[k] for k in cls.__dataclass_fields__})
        except KeyError as exc:
            raise ConfigError(f"tasks.ctr.ground_truth: missing {exc.args[0]!r}") from exc
        proto.check()
        return proto

    def check(self) -> None:
        where = "tasks.ctr.ground_truth"
        if self.negatives_per_user <= 0:
            raise ConfigError(f"{where}.negatives_per_user must be > 0 (non-clicks per user of positive-only data), got {self.negatives_per_user}")
        if self.negative_max_rating >= self.positive_min_rating:
            raise ConfigError(f"{where}: negative_max_rating {self.negative_max_rating} must lie below positive_min_rating {self.positive_min_rating}")
        if self.heldout_positives < 1 or self.max_heldout_negatives < 1 or self.max_history < 1:
            raise ConfigError(f"{where}: heldout_positives, max_heldout_negatives and max_history must be >= 1")
        if not 0 < self.test_user_share < 1 or not 0 < self.valid_user_share < 1:
            raise ConfigError(f"{where}: test_user_share and valid_user_share must lie in (0, 1)")


def _ordered(interactions: pl.DataFrame) -> pl.DataFrame:
    keys = ["user_id", "timestamp", "position"] if "timestamp" in interactions.columns else ["user_id", "position"]
    return interactions.sort(keys, maintain_order=True)


def rated_user_pairs(interactions: pl.DataFrame, proto: CTRProtocol, where: str) -> dict[int, tuple[list[int], list[tuple[int, int]]]]:
    """{user: (history, [(item, label), ...])} of rated data (see the module docstring)."""
    rated = _ordered(interactions).filter(
        (pl.col("rating") >= proto.positive_min_rating) | (pl.col("rating") <= proto.negative_max_rating)
    )
    out = {}
    for (user,), frame in rated.group_by("user_id", maintain_order=True):
        items = frame["item_id"].to_list()
        clicks = [i for i, r in zip(items, frame["rating"].to_list()) if r >= proto.positive_min_rating]
        skips = [i for i, r in zip(items, frame["rating"].to_list()) if r <= proto.negative_max_rating]
        if not clicks or not skips:
            continue
        held_pos = clicks[-proto.heldout_positives :]
        held_neg = skips[-proto.max_heldout_negatives :]
        held = set(held_pos) | set(held_neg)
        history = [i for i in clicks[: len(clicks) - len(held_pos)] if i not in held]
        out[int(user)] = (history[-proto.max_history :], [(i, 1) for i in held_pos] + [(i, 0) for i in held_neg])
    if not out:
        raise InputError(
            where,
            f"no user has both a click (rating >= {proto.positive_min_rating:g}) and a non-click "
            f"(rating <= {proto.negative_max_rating:g}); CTR pairs need users with both labels",
        )
    return out


def sequence_user_pairs(interactions: pl.DataFrame, n_items: int, proto: CTRProtocol) -> dict[int, tuple[list[int], list[tuple[int, int]]]]:
    """{user: (history, pairs)} of positive-only sequences with seeded uniform non-clicks."""
    rng = np.random.default_rng(proto.seed)
    out = {}
    for (user,), frame in _ordered(interactions).group_by("user_id", maintain_order=True):
        seq = frame["item_id"].to_list()
        if len(seq) <= proto.heldout_positives:
            continue  # no history would remain
        held_pos = seq[-proto.heldout_positives :]
        seen = set(seq)
        if len(seen) + proto.negatives_per_user > n_items:
            raise ConfigError(f"user {user}: fewer than {proto.negatives_per_user} never-seen items to draw non-clicks from")
        negs: list[int] = []
        while len(negs) < proto.negatives_per_user:
            cand = int(rng.integers(n_items))
            if cand not in seen and cand not in negs:
                negs.append(cand)
        history = [i for i in seq[: -proto.heldout_positives] if i not in set(held_pos)]
        out[int(user)] = (history[-proto.max_history :], [(i, 1) for i in held_pos] + [(i, 0) for i in negs])
    return out


def split_users(users: list[int], proto: CTRProtocol) -> dict[str, list[int]]:
    """One seeded shuffle: the first ``test_user_share`` are test users; of the rest the first
    ``valid_user_share`` validate and the others train (each part sorted by user id)."""
    order = np.random.default_rng(proto.seed).permutation(np.asarray(sorted(users), dtype=np.int64))
    n_test = max(1, int(round(len(order) * proto.test_user_share)))
    rest = order[n_test:]
    n_valid = max(1, int(round(len(rest) * proto.valid_user_share)))
    parts = {"test": order[:n_test], "valid": rest[:n_valid], "train": rest[n_valid:]}
    if any(len(v) == 0 for v in parts.values()):
        raise InputError("ctr users", f"{len(users)} users with labelled pairs are too few for a train/valid/test split by user")
    return {k: sorted(int(u) for u in v) for k, v in parts.items()}


def pairs_frame(per_user: dict, users: list[int]) -> pl.DataFrame:
    rows = {"user_id": [], "item_id": [], "label": [], "history": []}
    for u in users:
        history, pairs = per_user[u]
        for item, label in pairs:
            rows["user_id"].append(u)
            rows["item_id"].append(item)
            rows["label"].append(label)
            rows["history"].append(history)
    return pl.DataFrame(rows, schema=PAIR_SCHEMA)


def build_ctr_pairs(interactions: pl.DataFrame, n_items: int, options: dict, where: str) -> tuple[dict[str, pl.DataFrame], dict]:
    """({train, valid, test: pair frame}, stats) of one dataset; ``where`` names the input in errors."""
    proto = CTRProtocol.from_options(options)
    rated = "rating" in interactions.columns and interactions["rating"].null_count() < interactions.height
    per_user = rated_user_pairs(interactions, proto, where) if rated else sequence_user_pairs(interactions, n_items, proto)
    users = split_users(list(per_user), proto)
    parts = {p: pairs_frame(per_user, users[p]) for p in ("train", "valid", "test")}
    stats = {
        "labels": "rating" if rated else f"positive-only: last {proto.heldout_positives} items + {proto.negatives_per_user} uniform never-seen non-clicks per user",
        "protocol": {k: getattr(proto, k) for k in proto.__dataclass_fields__},
        "users_with_pairs": len(per_user),
        "users_without_both_labels": int(interactions["user_id"].n_unique() - len(per_user)) if rated else 0,
        "parts": {
            p: {
                "users": len(users[p]),
                "pairs": frame.height,
                "clicks": int(frame["label"].sum()),
                "mean_history": float(frame["history"].list.len().mean() or 0.0),
            }
            for p, frame in parts.items()
        },
    }
    return parts, stats


def check_pairs(frame: pl.DataFrame, n_items: int, where: str | Path) -> None:
    """One-line errors for a pair file that does not fit the dataset (unknown ids, bad labels)."""
    missing = set(PAIR_SCHEMA) - set(frame.columns)
    if missing:
        raise InputError(where, f"missing column(s) {sorted(missing)}; a CTR pair file has {list(PAIR_SCHEMA)}")
    labels = set(frame["label"].unique().to_list())
    if not labels <= {0, 1}:
        raise InputError(where, f"labels must be 0/1, found {sorted(labels)}")
    for col, values in (("item_id", frame["item_id"]), ("history", frame["history"].explode().drop_nulls())):
        if values.len() and (int(values.min()) < 0 or int(values.max()) >= n_items):
            bad = values.filter((values < 0) | (values >= n_items))
            raise InputError(where, f"{col} references unknown item id {int(bad[0])} (the dataset has items 0..{n_items - 1})")


@dataclass
class CTRData:
    """One part as arrays: ``history`` is [N, H] right-aligned item ids padded with -1."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    history: np.ndarray
    n_items: int

    @property
    def n(self) -> int:
        return len(self.labels)


def load_ctr_part(path: str | Path, n_items: int, max_history: int | None = None) -> CTRData:
    """A pair file as :class:`CTRData` (checked against ``n_items``), histories cut to ``max_history``
    (None: the longest history the file stores)."""
    frame = pl.read_parquet(path)
    check_pairs(frame, n_items, path)
    if max_history is None:
        max_history = int(frame["history"].list.len().max() or 0)
    hist = np.full((frame.height, max(1, max_history)), -1, dtype=np.int64)
    for row, h in enumerate(frame["history"].to_list()):
        h = h[-max_history:]
        if h:
            hist[row, -len(h) :] = h
    return CTRData(
        users=frame["user_id"].to_numpy().astype(np.int64),
        items=frame["item_id"].to_numpy().astype(np.int64),
        labels=frame["label"].to_numpy().astype(np.float32),
        history=hist,
        n_items=int(n_items),
    )
