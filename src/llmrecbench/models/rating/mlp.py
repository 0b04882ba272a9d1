"""NCF-style MLP rating regression (the MLP tower of He et al., WWW 2017, with a squared loss)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from llmrecbench.errors import ConfigError
from llmrecbench.models.layers import relu_layers, user_item_embeddings
from llmrecbench.models.rating.base import RatingModel
from llmrecbench.models.registry import register


@register("mlp")
class MLPRating(RatingModel):
    """r_hat_ui = mu + w^T h_L + b, with h_0 = [e_u ; e_i] (concatenated user and item embeddings,
    each in R^dim) and h_l = dropout(ReLU(W_l h_(l-1) + c_l)) for the layer widths ``hidden``.

    mu is the training mean (a buffer set by ``training_examples``), so the network learns the
    deviation from it; embeddings start at N(0, init_std^2), the output layer at 0 (initial
    prediction = mu). Loss: MSE on the batch plus
        reg * (1/|B|) * sum_(u,i) in B (|e_u|^2 + |e_i|^2)
    on the batch's embeddings (dense layers: the optimizer's weight decay, if any).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.2,
        init_std: float = 0.1,
        reg: float = 0.05,
    ):
        hidden = [int(h) for h in hidden]
        super().__init__(n_users, n_items, dim=dim, hidden=hidden, dropout=dropout, init_std=init_std, reg=reg)
        if dim < 1 or not hidden or min(hidden) < 1 or not 0 <= dropout < 1 or init_std < 0 or reg < 0:
            raise ConfigError(f"mlp: bad hyper-parameters dim={dim} hidden={hidden} dropout={dropout} init_std={init_std} reg={reg}")
        self.reg = float(reg)
        self.user_emb, self.item_emb = user_item_embeddings(n_users, n_items, dim, init_std)
        layers, width = relu_layers(2 * dim, hidden, dropout)
        self.tower = nn.Sequential(*layers)
        self.out = nn.Linear(width, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward_pred(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        h = self.tower(torch.cat([self.user_emb(users), self.item_emb(items)], dim=-1))
        return self.mu + self.out(h).squeeze(-1)

    def l2_penalty(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """reg * (1/|B|) * sum_(u,i) in B (|e_u|^2 + |e_i|^2)."""
        if self.reg == 0:
            return torch.zeros(())
        return self.reg * (self.user_emb(batch["user"]).pow(2).sum(-1) + self.item_emb(batch["item"]).pow(2).sum(-1)).mean()
