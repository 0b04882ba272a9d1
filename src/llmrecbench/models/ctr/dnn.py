"""DNN (RecBench's plain deep CTR model): an MLP over the concatenated fields."""

from __future__ import annotations

from typing import Sequence

import torch

from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


@register("ctr_dnn")
class DNN(CTRModel):
    """logit = MLP([e_u ; e_i]), ReLU layers of widths ``hidden`` with dropout, then a linear output."""

    def __init__(self, n_users: int, n_items: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, hidden=list(hidden), dropout=dropout, **kw)
        self.tower, _ = mlp(2 * self.dim, list(hidden), dropout, out=1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.tower(torch.cat([user, item], -1)).squeeze(-1)
