"""Biased matrix factorisation (Koren, Bell & Volinsky, IEEE Computer 2009; "SVD" in Surprise)."""

from __future__ import annotations

import torch
from torch import nn

from llmrecbench.errors import ConfigError
from llmrecbench.models.rating.base import RatingModel
from llmrecbench.models.registry import register


@register("mf")
class BiasedMF(RatingModel):
    """r_hat_ui = mu + b_u + b_i + p_u . q_i, with p_u, q_i in R^dim.

    mu is the training mean (a buffer set by ``training_examples``, not learnt); b_u, b_i start
    at 0 and p_u, q_i at N(0, init_std^2). Trained on mini-batches B of training ratings with
        L(B) = (1/|B|) * sum_(u,i) in B [ (r_hat_ui - r_ui)^2 + reg * (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2) ],
    i.e. the per-rating L2 penalty of Surprise's SVD applied to the batch's embeddings only (so
    a frequent user is regularised once per rating, and ids absent from the batch are untouched,
    unlike optimizer weight decay). Defaults: measured on ml-100k's 8:1:1 split (test RMSE ~0.90
    with Adam, lr 0.002, batch 256, early stopping on valid RMSE; benchmarks/rating_surprise.py).
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, init_std: float = 0.05, reg: float = 0.1):
        super().__init__(n_users, n_items, dim=dim, init_std=init_std, reg=reg)
        if dim < 1 or init_std < 0 or reg < 0:
            raise ConfigError(f"mf: dim must be >= 1 and init_std, reg >= 0, got {dim}, {init_std}, {reg}")
        self.dim, self.reg = int(dim), float(reg)
        self.user_factors = nn.Embedding(n_users, dim)
        self.item_factors = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def forward_pred(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors(users) * self.item_factors(items)).sum(-1)
        return self.mu + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + dot

    def l2_penalty(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """reg * (1/|B|) * sum_(u,i) in B (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2)."""
        if self.reg == 0:
            return torch.zeros(())
        u, i = batch["user"], batch["item"]
        sq = (
            self.user_factors(u).pow(2).sum(-1)
            + self.item_factors(i).pow(2).sum(-1)
            + self.user_bias(u).squeeze(-1).pow(2)
            + self.item_bias(i).squeeze(-1).pow(2)
        )
        return self.reg * sq.mean()
