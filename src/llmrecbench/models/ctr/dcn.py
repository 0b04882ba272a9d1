"""DCN (Wang et al., ADKDD 2017) and DCNv2 (Wang et al., WWW 2021): explicit feature crossing
beside an MLP (parallel structure)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


@register("ctr_dcn")
class DCN(CTRModel):
    """x_0 = [e_u ; e_i]; cross layers x_(l+1) = x_0 (x_l^T w_l) + b_l + x_l (a rank-one cross per
    layer); logit = w^T [x_L ; MLP(x_0)] + b."""

    def __init__(self, n_users: int, n_items: int, n_cross: int = 3, hidden: Sequence[int] = (128, 64), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, n_cross=n_cross, hidden=list(hidden), dropout=dropout, **kw)
        width = 2 * self.dim
        self.cross_w = nn.ParameterList([nn.Parameter(torch.randn(width) * 0.01) for _ in range(n_cross)])
        self.cross_b = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(n_cross)])
        self.deep, deep_width = mlp(width, list(hidden), dropout)
        self.out = nn.Linear(width + deep_width, 1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        x0 = torch.cat([user, item], -1)
        x = x0
        for w, b in zip(self.cross_w, self.cross_b):
            x = x0 * (x @ w).unsqueeze(-1) + b + x
        return self.out(torch.cat([x, self.deep(x0)], -1)).squeeze(-1)


@register("ctr_dcnv2")
class DCNv2(CTRModel):
    """x_0 = [e_u ; e_i]; cross layers x_(l+1) = x_0 ⊙ (W_l x_l + b_l) + x_l (a full-rank matrix
    per layer); logit = w^T [x_L ; MLP(x_0)] + b."""

    def __init__(self, n_users: int, n_items: int, n_cross: int = 3, hidden: Sequence[int] = (128, 64), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, n_cross=n_cross, hidden=list(hidden), dropout=dropout, **kw)
        width = 2 * self.dim
        self.cross = nn.ModuleList([nn.Linear(width, width) for _ in range(n_cross)])
        self.deep, deep_width = mlp(width, list(hidden), dropout)
        self.out = nn.Linear(width + deep_width, 1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        x0 = torch.cat([user, item], -1)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.out(torch.cat([x, self.deep(x0)], -1)).squeeze(-1)
