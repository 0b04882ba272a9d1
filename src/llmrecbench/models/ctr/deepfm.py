"""DeepFM (Guo et al., IJCAI 2017): an FM and an MLP over the same field embeddings."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


@register("ctr_deepfm")
class DeepFM(CTRModel):
    """logit = b + w^T [e_u ; e_i] + <e_u, e_i> + MLP([e_u ; e_i]).

    With two dense fields the FM's second-order term sum_(f<g) <e_f, e_g> is the one inner
    product <e_u, e_i>; its first-order term is a linear map of the fields."""

    def __init__(self, n_users: int, n_items: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, hidden=list(hidden), dropout=dropout, **kw)
        self.linear = nn.Linear(2 * self.dim, 1)
        self.deep, _ = mlp(2 * self.dim, list(hidden), dropout, out=1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        x = torch.cat([user, item], -1)
        return (self.linear(x) + self.deep(x)).squeeze(-1) + (user * item).sum(-1)
