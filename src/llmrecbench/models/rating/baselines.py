"""Closed-form rating baselines: the global mean, and user/item biases (Koren 2010)."""

from __future__ import annotations

import numpy as np
import torch

from llmrecbench.data.ratings import RatingData
from llmrecbench.errors import ConfigError
from llmrecbench.models.rating.base import RatingModel
from llmrecbench.models.registry import register


@register("global_mean")
class GlobalMean(RatingModel):
    """r_hat_ui = mu = (1/|R|) * sum_(u,i) in R r_ui, the mean of the training ratings R."""

    trainable = False

    def __init__(self, n_users: int, n_items: int):
        super().__init__(n_users, n_items)

    def fit_closed_form(self, train: RatingData) -> None:
        self.check_data(train)
        self.set_mean(train)

    def forward_pred(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.mu.expand(users.shape).clone()


@register("bias")
class BiasBaseline(RatingModel):
    """Baseline predictor b_ui = mu + b_u + b_i (Koren, TKDD 2010, sec. 2.1).

    The biases minimise the regularised least squares
        sum_(u,i) in R (r_ui - mu - b_u - b_i)^2 + reg_user * sum_u b_u^2 + reg_item * sum_i b_i^2,
    found by ``n_iter`` rounds of alternating exact minimisation (each round: items, then users)
        b_i = sum_(u in R(i)) (r_ui - mu - b_u) / (reg_item + |R(i)|),
        b_u = sum_(i in R(u)) (r_ui - mu - b_i) / (reg_user + |R(u)|),
    starting from b_u = 0 (so round 1 is Koren's one-pass estimate). The objective is strictly
    convex for positive regularisation, so the rounds converge to its unique minimiser. A user or
    item without training ratings keeps bias 0. Defaults as Surprise's ``BaselineOnly`` (ALS).
    """

    trainable = False

    def __init__(self, n_users: int, n_items: int, reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10):
        super().__init__(n_users, n_items, reg_user=reg_user, reg_item=reg_item, n_iter=n_iter)
        if reg_user < 0 or reg_item < 0 or n_iter < 1:
            raise ConfigError(f"bias: reg_user, reg_item must be >= 0 and n_iter >= 1, got {reg_user}, {reg_item}, {n_iter}")
        self.reg_user, self.reg_item, self.n_iter = float(reg_user), float(reg_item), int(n_iter)
        self.register_buffer("user_bias", torch.zeros(n_users, dtype=torch.float32))
        self.register_buffer("item_bias", torch.zeros(n_items, dtype=torch.float32))

    def fit_closed_form(self, train: RatingData) -> None:
        self.check_data(train)
        mu = train.global_mean()
        u, i = train.users, train.items
        r = train.ratings.astype(np.float64) - mu
        n_u = np.bincount(u, minlength=self.n_users).astype(np.float64)
        n_i = np.bincount(i, minlength=self.n_items).astype(np.float64)
        # an id without ratings and without regularisation has 0/0: its bias stays 0
        den_u = np.where(n_u + self.reg_user > 0, n_u + self.reg_user, 1.0)
        den_i = np.where(n_i + self.reg_item > 0, n_i + self.reg_item, 1.0)
        b_u = np.zeros(self.n_users)
        b_i = np.zeros(self.n_items)
        for _ in range(self.n_iter):
            b_i = np.bincount(i, weights=r - b_u[u], minlength=self.n_items) / den_i
            b_u = np.bincount(u, weights=r - b_i[i], minlength=self.n_users) / den_u
        self.mu.fill_(mu)
        self.user_bias.copy_(torch.from_numpy(b_u))
        self.item_bias.copy_(torch.from_numpy(b_i))

    def forward_pred(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.mu + self.user_bias[users] + self.item_bias[items]
