"""PNN (Qu et al., ICDM 2016), inner-product variant (IPNN)."""

from __future__ import annotations

from typing import Sequence

import torch

from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


@register("ctr_pnn")
class PNN(CTRModel):
    """A product layer feeds the MLP the fields and their pairwise inner products:
    z = [e_u ; e_i], p = <e_u, e_i> (the one pair of two fields); logit = MLP([z ; p])."""

    def __init__(self, n_users: int, n_items: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, hidden=list(hidden), dropout=dropout, **kw)
        self.tower, _ = mlp(2 * self.dim + 1, list(hidden), dropout, out=1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        p = (user * item).sum(-1, keepdim=True)
        return self.tower(torch.cat([user, item, p], -1)).squeeze(-1)
