"""MaskNet (Wang et al., DLP-KDD 2021), parallel variant: instance-guided masks on the embedding."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from llmrecbench.models.ctr.base import CTRModel, mlp
from llmrecbench.models.registry import register


class MaskBlock(nn.Module):
    """V_mask = W_2 ReLU(W_1 V_emb + b_1) + b_2 (instance-guided mask, reduction ``ratio``);
    out = ReLU(LN(W_h (V_mask ⊙ LN(V_emb))))."""

    def __init__(self, width: int, out: int, ratio: float):
        super().__init__()
        self.mask = nn.Sequential(nn.Linear(width, max(1, int(width * ratio))), nn.ReLU(), nn.Linear(max(1, int(width * ratio)), width))
        self.ln_emb = nn.LayerNorm(width)
        self.hidden = nn.Linear(width, out, bias=False)
        self.ln_out = nn.LayerNorm(out)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.ln_out(self.hidden(self.mask(v) * self.ln_emb(v))))


@register("ctr_masknet")
class MaskNet(CTRModel):
    """V_emb = [e_u ; e_i]; ``n_blocks`` MaskBlocks in parallel, concatenated, then an MLP:
    logit = MLP([block_1(V_emb) ; ... ; block_K(V_emb)])."""

    def __init__(self, n_users: int, n_items: int, n_blocks: int = 2, block_dim: int = 64, reduction_ratio: float = 1.0,
                 hidden: Sequence[int] = (64,), dropout: float = 0.1, **kw):
        super().__init__(n_users, n_items, n_blocks=n_blocks, block_dim=block_dim, reduction_ratio=reduction_ratio,
                         hidden=list(hidden), dropout=dropout, **kw)
        width = 2 * self.dim
        self.blocks = nn.ModuleList([MaskBlock(width, block_dim, reduction_ratio) for _ in range(n_blocks)])
        self.tower, _ = mlp(n_blocks * block_dim, list(hidden), dropout, out=1)

    def logit(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        v = torch.cat([user, item], -1)
        return self.tower(torch.cat([b(v) for b in self.blocks], -1)).squeeze(-1)
