"""Base class of every conventional rating predictor (P5 / LLMRec rating task).

Conventions shared by all rating models:

* Users and items are the 0-based ids of the 8:1:1 split (:class:`llmrecbench.data.ratings.RatingData`).
* ``predict(users, items)`` returns the raw predicted rating ``r_hat_ui`` of each pair as a float
  tensor (eval mode, no gradient), *not* clipped to the star scale: clipping is the caller's
  choice (:func:`llmrecbench.metrics.clip_ratings`).
* Trainable models (``trainable = True``): ``training_examples(train)`` turns the training
  ratings into a dict of tensors sharing their first dimension (``user``, ``item``, ``rating``);
  the trainer shuffles and slices rows and hands each batch to ``training_loss(batch, loss,
  generator)``, which is the MSE of ``forward_pred`` on the batch plus the model's L2 penalty
  (``l2_penalty``) where it has one.
* Closed-form models (``trainable = False``) are fitted by ``fit_closed_form(train)``.
* ``save(path)`` / ``load(path)`` round-trip weights (buffers included, e.g. the training mean)
  and constructor arguments through the model registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from llmrecbench.data.ratings import RatingData
from llmrecbench.errors import ConfigError
from llmrecbench.models.persistence import load_user_item_model, save_user_item_model

RATING_LOSSES = ("mse",)


def as_ids(ids: np.ndarray | torch.Tensor | Any, size: int, what: str) -> torch.Tensor:
    """``ids`` as a 1-D int64 tensor, checked to lie in ``[0, size)``."""
    t = ids.detach().cpu() if isinstance(ids, torch.Tensor) else torch.from_numpy(np.asarray(ids))
    t = t.reshape(-1).long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= size):
        raise ValueError(f"{what} ids must lie in [0, {size}), got [{int(t.min())}, {int(t.max())}]")
    return t


class RatingModel(torch.nn.Module):
    """Predicts the rating r_hat_ui of user u for item i; see the module docstring."""

    name: ClassVar[str] = "base"
    family: ClassVar[str] = "rating"
    trainable: ClassVar[bool] = True
    losses: ClassVar[tuple[str, ...]] = RATING_LOSSES

    def __init__(self, n_users: int, n_items: int, **hparams: Any):
        super().__init__()
        if n_users < 1 or n_items < 1:
            raise ConfigError(f"n_users and n_items must be positive, got {n_users}, {n_items}")
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.hparams: dict[str, Any] = dict(hparams)
        # mu: the global mean of the training ratings (set by training_examples / fit_closed_form)
        self.register_buffer("mu", torch.zeros((), dtype=torch.float32))

    # --- data -----------------------------------------------------------------------------
    def check_data(self, data: RatingData) -> None:
        if (data.n_users, data.n_items) != (self.n_users, self.n_items):
            raise ConfigError(
                f"{self.name}: model has {self.n_users} users x {self.n_items} items but the data has {data.n_users} x {data.n_items}"
            )
        if data.n == 0:
            raise ConfigError(f"{self.name}: no training ratings")

    def set_mean(self, train: RatingData) -> None:
        """mu := (1/|R|) * sum_(u,i) in R r_ui over the training ratings R."""
        self.mu.fill_(train.global_mean())

    # --- training -------------------------------------------------------------------------
    def check_loss(self, loss: str) -> None:
        if loss not in self.losses:
            raise ConfigError(f"{self.name}: unknown rating loss {loss!r}; known: {', '.join(self.losses)}")

    def training_examples(self, train: RatingData) -> dict[str, torch.Tensor]:
        """One row per training rating: ``user``, ``item`` (int64) and ``rating`` (float32); sets mu."""
        if not self.trainable:
            raise TypeError(f"{self.name} is fitted in closed form; it has no training examples")
        self.check_data(train)
        self.set_mean(train)
        return {
            "user": torch.from_numpy(train.users.copy()),
            "item": torch.from_numpy(train.items.copy()),
            "rating": torch.from_numpy(train.ratings.copy()),
        }

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str = "mse", generator: torch.Generator | None = None) -> torch.Tensor:
        """L = (1/|B|) * sum_(u,i) in B (r_hat_ui - r_ui)^2 + l2_penalty(B)."""
        if not self.trainable:
            raise TypeError(f"{self.name} is fitted in closed form; it has no training loss")
        self.check_loss(loss)
        pred = self.forward_pred(batch["user"], batch["item"])
        return F.mse_loss(pred, batch["rating"].to(pred.dtype)) + self.l2_penalty(batch)

    def l2_penalty(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The model's L2 regularisation on the batch (none by default)."""
        return torch.zeros((), dtype=torch.float32)

    def fit_closed_form(self, train: RatingData) -> None:
        raise TypeError(f"{self.name} is trained by gradient descent, not fitted in closed form")

    # --- inference ------------------------------------------------------------------------
    def forward_pred(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Raw predictions ``[N]`` of int64 id tensors ``[N]`` (with gradient, in the current mode)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, users: np.ndarray | torch.Tensor, items: np.ndarray | torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
        """Unclipped predicted ratings ``[N]`` (float32) of the pairs (users[k], items[k])."""
        u = as_ids(users, self.n_users, "user")
        i = as_ids(items, self.n_items, "item")
        if u.shape != i.shape:
            raise ValueError(f"users and items differ in length: {u.numel()} vs {i.numel()}")
        was_training = self.training
        self.eval()
        try:
            parts = [self.forward_pred(u[s : s + batch_size], i[s : s + batch_size]).float() for s in range(0, u.numel(), batch_size)]
            return torch.cat(parts) if parts else torch.empty(0)
        finally:
            self.train(was_training)

    # --- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        save_user_item_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "RatingModel":
        return load_user_item_model(cls, RatingModel, path)
