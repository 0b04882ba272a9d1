"""AutoInt (Song et al., CIKM 2019): field interactions by multi-head self-attention."""

from __future__ import annotations

import torch
from torch import nn

from llmrecbench.errors import ConfigError
from llmrecbench.models.ctr.base import CTRModel
from llmrecbench.models.registry import register


@register("ctr_autoint")
class AutoInt(CTRModel):
    """E_0 = [e_u, e_i] (two field tokens in R^d); interacting layers
        E_(l+1) = ReLU(MultiHead(E_l, E_l, E_l) + E_l W_res)
    with softmax(Q K^T / sqrt(d_h)) V per head; logit = w^T flatten(E_L) + b."""

    def __init__(self, n_users: int, n_items: int, n_layers: int = 2, n_heads: int = 2, dropout: float = 0.0, **kw):
        super().__init__(n_users, n_items, n_layers=n_layers, n_heads=n_heads, dropout=dropout, **kw)
        if self.dim % n_heads:
            raise ConfigError(f"ctr_autoint: dim {self.dim} is not divisible by n_heads {n_heads}")
        self.attn = nn.ModuleList([nn.MultiheadAttention(self.dim, n_heads, dropout=dropout, batch_first=True) for _ in range(n_layers)])
        self.res = nn.ModuleList([nn.Linear(self.dim, self.dim, bias=False) for _ in range(n_layers)])
        self.out = nn.Linear(2 * self.dim, 1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        e = torch.stack([user, item], 1)
        for attn, res in zip(self.attn, self.res):
            e = torch.relu(attn(e, e, e, need_weights=False)[0] + res(e))
        return self.out(e.flatten(1)).squeeze(-1)
