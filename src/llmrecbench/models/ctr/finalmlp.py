"""FinalMLP (Mao et al., AAAI 2023): two MLP streams with feature gating and bilinear fusion."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from llmrecbench.errors import ConfigError
from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


@register("ctr_finalmlp")
class FinalMLP(CTRModel):
    """x = [e_u ; e_i]. Feature selection: stream k sees x ⊙ g_k with g_k = 2 sigmoid(MLP_gk(c_k)),
    the user field as stream 1's context and the item field as stream 2's. o_k = MLP_k(x ⊙ g_k).
    Multi-head bilinear fusion over H heads (o_k split into H chunks o_k,h):
        logit = b + sum_h w1_h^T o_1,h + w2_h^T o_2,h + o_1,h^T W3_h o_2,h."""

    def __init__(self, n_users: int, n_items: int, hidden1: Sequence[int] = (128, 64), hidden2: Sequence[int] = (128, 64),
                 gate_hidden: int = 64, n_heads: int = 1, dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, hidden1=list(hidden1), hidden2=list(hidden2), gate_hidden=gate_hidden,
                         n_heads=n_heads, dropout=dropout, **kw)
        width = 2 * self.dim
        self.gate1 = nn.Sequential(nn.Linear(self.dim, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, width))
        self.gate2 = nn.Sequential(nn.Linear(self.dim, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, width))
        self.stream1, w1 = mlp(width, list(hidden1), dropout)
        self.stream2, w2 = mlp(width, list(hidden2), dropout)
        if w1 % n_heads or w2 % n_heads:
            raise ConfigError(f"ctr_finalmlp: stream widths {w1}, {w2} are not divisible by n_heads {n_heads}")
        self.n_heads = int(n_heads)
        self.w1 = nn.Linear(w1, 1, bias=False)
        self.w2 = nn.Linear(w2, 1, bias=False)
        self.w3 = nn.Parameter(torch.randn(n_heads, w1 // n_heads, w2 // n_heads) * 0.01)
        self.bias = nn.Parameter(torch.zeros(()))

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        x = torch.cat([user, item], -1)
        o1 = self.stream1(x * 2 * torch.sigmoid(self.gate1(user)))
        o2 = self.stream2(x * 2 * torch.sigmoid(self.gate2(item)))
        h1 = o1.view(o1.shape[0], self.n_heads, -1)
        h2 = o2.view(o2.shape[0], self.n_heads, -1)
        bilinear = torch.einsum("bhi,hij,bhj->b", h1, self.w3, h2)
        return self.bias + self.w1(o1).squeeze(-1) + self.w2(o2).squeeze(-1) + bilinear
