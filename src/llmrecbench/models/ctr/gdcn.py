"""GDCN (Wang et al., CIKM 2023): the gated cross network, parallel to an MLP (GDCN-P)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


@register("ctr_gdcn")
class GDCN(CTRModel):
    """c_0 = [e_u ; e_i]; gated cross layers
        c_(l+1) = c_0 ⊙ (W_l c_l + b_l) ⊙ sigmoid(W_g,l c_l) + c_l
    (the gate learns which crosses matter); logit = w^T [c_L ; MLP(c_0)] + b."""

    def __init__(self, n_users: int, n_items: int, n_cross: int = 3, hidden: Sequence[int] = (128, 64), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, n_cross=n_cross, hidden=list(hidden), dropout=dropout, **kw)
        width = 2 * self.dim
        self.cross = nn.ModuleList([nn.Linear(width, width) for _ in range(n_cross)])
        self.gate = nn.ModuleList([nn.Linear(width, width, bias=False) for _ in range(n_cross)])
        self.deep, deep_width = mlp(width, list(hidden), dropout)
        self.out = nn.Linear(width + deep_width, 1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        c0 = torch.cat([user, item], -1)
        c = c0
        for layer, gate in zip(self.cross, self.gate):
            c = c0 * layer(c) * torch.sigmoid(gate(c)) + c
        return self.out(torch.cat([c, self.deep(c0)], -1)).squeeze(-1)
