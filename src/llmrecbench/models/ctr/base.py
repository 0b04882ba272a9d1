"""Base class of every deep CTR model (RecBench Groups A-C; the ``ctr`` family).

Conventions shared by all CTR models:

* A sample is (history, item, label) from a CTR pair file (:class:`llmrecbench.data.ctr_pairs.CTRData`);
  the shared :class:`~llmrecbench.models.ctr.features.ItemFeatures` turns it into two fields,
  e_u (history mean) and e_i (the candidate), each in R^dim.
* A model implements ``logit(e_u, e_i) -> [B]``; p = sigmoid(logit) is P(click).
* ``training_examples(train)`` gives the trainer ``history`` [N, H], ``item`` [N] and ``label`` [N];
  ``training_loss`` is the binary cross-entropy
  L = -(1/|B|) * sum_k y_k log p_k + (1 - y_k) log(1 - p_k) (computed from the logits).
* ``predict(data)`` returns P(click) of every pair (eval mode, no gradient).
* ``save`` / ``load`` round-trip weights, item-feature buffers and constructor arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.data.ctr_pairs import CTRData
from llmrecbench.errors import ConfigError
from llmrecbench.models.ctr.features import ItemFeatures
from llmrecbench.models.persistence import load_user_item_model, save_user_item_model

CTR_LOSSES = ("bce",)


def mlp(width: int, hidden: list[int], dropout: float, out: int | None = None) -> tuple[nn.Sequential, int]:
    """ReLU MLP (+ dropout) of widths ``hidden``; with ``out`` a final linear layer to ``out``."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    if out is not None:
        layers.append(nn.Linear(width, out))
        width = out
    return nn.Sequential(*layers), width


class CTRModel(nn.Module):
    """P(click | user history, item); see the module docstring."""

    name: ClassVar[str] = "base"
    family: ClassVar[str] = "ctr"
    trainable: ClassVar[bool] = True
    losses: ClassVar[tuple[str, ...]] = CTR_LOSSES

    def __init__(self, n_users: int, n_items: int, item_repr: str = "unique_id", dim: int = 32,
                 vocab_size: int = 0, title_len: int = 0, vector_dim: int = 0, **hparams: Any):
        super().__init__()
        if n_items < 1 or dim < 1:
            raise ConfigError(f"{self.name}: n_items and dim must be positive, got {n_items}, {dim}")
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.dim = int(dim)
        self.hparams: dict[str, Any] = {"item_repr": item_repr, "dim": dim, "vocab_size": vocab_size,
                                        "title_len": title_len, "vector_dim": vector_dim, **hparams}
        self.features = ItemFeatures(n_items, dim, item_repr, vocab_size, title_len, vector_dim)

    # --- the two fields -----------------------------------------------------------------------
    def fields(self, history: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features.fields(history, items)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, history: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.logit(*self.fields(history, items))

    # --- training -------------------------------------------------------------------------------
    def check_loss(self, loss: str) -> None:
        if loss not in self.losses:
            raise ConfigError(f"{self.name}: unknown CTR loss {loss!r}; known: {', '.join(self.losses)}")

    def training_examples(self, train: CTRData) -> dict[str, torch.Tensor]:
        if train.n_items != self.n_items:
            raise ConfigError(f"{self.name}: model has {self.n_items} items but the data has {train.n_items}")
        if train.n == 0:
            raise ConfigError(f"{self.name}: no training pairs")
        return {
            "history": torch.from_numpy(train.history.copy()),
            "item": torch.from_numpy(train.items.copy()),
            "label": torch.from_numpy(train.labels.copy()),
        }

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str = "bce", generator: torch.Generator | None = None) -> torch.Tensor:
        """Binary cross-entropy of sigmoid(logit) against the click labels."""
        self.check_loss(loss)
        z = self(batch["history"], batch["item"])
        return F.binary_cross_entropy_with_logits(z, batch["label"].to(z.dtype))

    # --- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, history: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """P(click) ``[B]`` of a batch (eval mode restored afterwards)."""
        was = self.training
        self.eval()
        try:
            return torch.sigmoid(self(history, items)).float()
        finally:
            self.train(was)

    def predict_data(self, data: CTRData, batch_size: int = 4096) -> torch.Tensor:
        h, i = torch.from_numpy(data.history), torch.from_numpy(data.items)
        parts = [self.predict(h[s : s + batch_size], i[s : s + batch_size]) for s in range(0, data.n, batch_size)]
        return torch.cat(parts) if parts else torch.empty(0)

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        save_user_item_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "CTRModel":
        return load_user_item_model(cls, CTRModel, path)
