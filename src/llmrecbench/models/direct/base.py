"""Base class of every conventional direct recommender (P5 / LLMRec direct recommendation task).

Conventions shared by all direct (candidate-ranking) models:

* Users and items are the canonical 0-based ids of the leave-one-out split
  (:class:`llmrecbench.data.sequences.LeaveOneOutSequences`: ``data.user_ids`` and item ids
  0..n_items-1). A model has one user row per id 0..n_users-1 and looks users up *by id*, never
  by their row in the split; ids outside that range are an error.
* Models learn from the training interactions only (every item but the last two of each user).
* ``training_examples(train)`` turns the training sequences into a dict of tensors sharing their
  first dimension (here one row per training interaction: ``user``, ``pos``) and records what
  the loss needs (the training items of each user for negative sampling; SimpleX also its user
  histories); the trainer shuffles and slices rows and hands each batch to
  ``training_loss(batch, loss, generator)``, whose negatives come from ``generator`` so that an
  epoch is reproducible from its seed.
* ``score_candidates(user_ids [B], candidates [B, C])`` returns ``[B, C]`` float scores (eval
  mode, no gradient); :func:`llmrecbench.metrics.candidate_ranks` turns them into ranks.
* ``save(path)`` / ``load(path)`` round-trip weights and persistent buffers plus constructor
  arguments through the model registry (payload: name, family, n_users, n_items, hparams,
  state_dict), so a loaded model needs no other file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.models.persistence import load_user_item_model, save_user_item_model

# rounds of redrawing negatives that hit a training item; the rest are masked out of the loss
_MAX_REDRAWS = 100


def as_long(x: np.ndarray | torch.Tensor | Any) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    return t.long()


class CandidateRanker(torch.nn.Module):
    """Scores candidate items for a user; see the module docstring."""

    name: ClassVar[str] = "base"
    family: ClassVar[str] = "direct"
    trainable: ClassVar[bool] = True
    losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_users: int, n_items: int, **hparams: Any):
        super().__init__()
        if n_users < 1 or n_items < 2:
            raise ConfigError(f"n_users must be >= 1 and n_items >= 2, got {n_users}, {n_items}")
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.hparams: dict[str, Any] = dict(hparams)
        # sorted keys user * n_items + item of the training interactions (negative sampling);
        # set by training_examples, not saved (a loaded model gets them again before training)
        self.register_buffer("train_keys", torch.empty(0, dtype=torch.int64), persistent=False)

    # --- ids ------------------------------------------------------------------------------
    def check_ids(self, users: torch.Tensor, items: torch.Tensor | None = None) -> None:
        for what, ids, size in (("user", users, self.n_users), ("item", items, self.n_items)):
            if ids is not None and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise ValueError(f"{self.name}: {what} ids must lie in [0, {size}), got [{int(ids.min())}, {int(ids.max())}]")

    def check_data(self, train: LeaveOneOutSequences) -> None:
        if train.n_items != self.n_items:
            raise ConfigError(f"{self.name}: model has {self.n_items} items but the data has {train.n_items}")
        if train.n_users == 0:
            raise ConfigError(f"{self.name}: no training users")
        self.check_ids(as_long(train.user_ids))

    # --- training -------------------------------------------------------------------------
    def check_loss(self, loss: str) -> None:
        if loss not in self.losses:
            raise ConfigError(f"{self.name}: unknown loss {loss!r}; known: {', '.join(self.losses)}")

    def interactions(self, train: LeaveOneOutSequences) -> tuple[torch.Tensor, torch.Tensor]:
        """(user id, item id) of every training interaction, users in split order, items chronological."""
        lengths = np.fromiter((len(t) for t in train.train), dtype=np.int64, count=train.n_users)
        users = np.repeat(np.asarray(train.user_ids, dtype=np.int64), lengths)
        items = np.concatenate([np.asarray(t, dtype=np.int64) for t in train.train])
        return torch.from_numpy(users), torch.from_numpy(items)

    def set_training_items(self, users: torch.Tensor, items: torch.Tensor) -> None:
        """Record each user's training items for :meth:`sample_unseen`."""
        self.check_ids(users, items)
        self.train_keys = torch.unique(users * self.n_items + items)  # sorted

    def training_examples(self, train: LeaveOneOutSequences) -> dict[str, torch.Tensor]:
        """One row per training interaction: ``user`` and ``pos`` (item) ids, int64."""
        self.check_data(train)
        users, items = self.interactions(train)
        self.set_training_items(users, items)
        return {"user": users, "pos": items}

    def seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mask of (user, item) pairs (broadcast) that are training interactions."""
        q = (users * self.n_items + items).contiguous()
        keys = self.train_keys
        idx = torch.searchsorted(keys, q).clamp_(max=keys.numel() - 1)
        return keys[idx] == q

    def sample_unseen(self, users: torch.Tensor, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, n]`` item ids uniform over the items not among user u's training items, and a mask.

        Each entry is drawn uniformly from 0..n_items-1 and redrawn while it is a training item of
        its user (rejection sampling, hence exactly uniform over the unseen items); after
        ``_MAX_REDRAWS`` rounds any remaining clash (a user who has seen almost every item) is
        marked False in the returned mask and must be left out of the loss.
        """
        if self.train_keys.numel() == 0:
            raise RuntimeError(f"{self.name}: call training_examples(train) before training_loss")
        users = users.view(-1, 1)
        neg = torch.randint(0, self.n_items, (users.shape[0], n), generator=generator)
        clash = self.seen(users, neg)
        for _ in range(_MAX_REDRAWS):
            if not bool(clash.any()):
                break
            neg[clash] = torch.randint(0, self.n_items, (int(clash.sum()),), generator=generator)
            clash = self.seen(users, neg)
        return neg, ~clash

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # --- inference ------------------------------------------------------------------------
    def forward_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, C]`` of int64 ``items`` ``[B, C]`` for ``users`` ``[B]`` (with gradient)."""
        raise NotImplementedError

    @torch.no_grad()
    def score_candidates(self, user_ids: np.ndarray | torch.Tensor, candidates: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Scores ``[B, C]`` (float32) of each user's candidate items, eval mode, no gradient."""
        users, items = as_long(user_ids).view(-1), as_long(candidates)
        if items.ndim != 2 or items.shape[0] != users.shape[0]:
            raise ValueError(f"candidates must be [B, C] for B = {users.shape[0]} users, got {tuple(items.shape)}")
        self.check_ids(users, items)
        was_training = self.training
        self.eval()
        try:
            return self.forward_candidates(users, items).float()
        finally:
            self.train(was_training)

    # --- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        save_user_item_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "CandidateRanker":
        return load_user_item_model(cls, CandidateRanker, path)
