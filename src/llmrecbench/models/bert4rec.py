"""BERT4Rec (Sun et al., CIKM 2019): bidirectional transformer trained with the cloze task.

Ids: 0 = padding, 1..n_items = items, n_items + 1 = [MASK]. Training masks each real item of the
(last ``max_len``) training sequence with probability ``mask_prob`` (a sequence that drew no
mask gets its last item masked) and predicts the masked items. Scoring appends [MASK] to the
last ``max_len - 1`` history items and reads the prediction at the [MASK] position.
Architecture as in RecBole: item + learned position embedding, LayerNorm, dropout,
post-LayerNorm transformer blocks with GELU, then dense + GELU + LayerNorm and the item
embedding (tied) plus a per-item bias as output layer. Padding keys are masked.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.models.base import SequentialRecommender, ce_or_bce, pad_histories, trim_left_padding
from llmrecbench.models.registry import register
from llmrecbench.models.sasrec import MultiHeadSelfAttention, attention_mask


class _Block(nn.Module):
    def __init__(self, hidden: int, n_heads: int, inner: int, dropout: float, attn_dropout: float):
        super().__init__()
        self.attn = MultiHeadSelfAttention(hidden, n_heads, attn_dropout)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(), nn.Linear(inner, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop1(self.attn(x, x, allowed)))
        return self.norm2(x + self.drop2(self.ffn(x)))


@register("bert4rec")
class BERT4Rec(SequentialRecommender):
    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner: int = 256,
        dropout: float = 0.2,
        attn_dropout: float = 0.2,
        mask_prob: float = 0.2,
    ):
        super().__init__(
            n_items, max_len=max_len, hidden=hidden, n_layers=n_layers, n_heads=n_heads, inner=inner,
            dropout=dropout, attn_dropout=attn_dropout, mask_prob=mask_prob,
        )
        self.max_len = max_len
        self.mask_prob = mask_prob
        self.mask_id = n_items + 1
        self.item_emb = nn.Embedding(n_items + 2, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, n_heads, inner, dropout, attn_dropout) for _ in range(n_layers))
        self.out_dense = nn.Linear(hidden, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.out_bias = nn.Parameter(torch.zeros(n_items))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        length = seq.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len)
        x = self.emb_dropout(self.emb_norm(self.item_emb(seq) + self.pos_emb(positions)))
        allowed = attention_mask(seq, causal=False)
        for block in self.blocks:
            x = block(x, allowed)
        return self.out_norm(F.gelu(self.out_dense(x)))

    def training_examples(self, train):
        seq = pad_histories(train, self.max_len)
        return {"seq": seq, "length": (seq != 0).sum(1)}

    def training_loss(self, batch, loss, generator):
        _, (seq,) = trim_left_padding(batch["seq"], ref=batch["seq"])
        real = seq != 0
        masked = (torch.rand(seq.shape, generator=generator) < self.mask_prob) & real
        none = ~masked.any(dim=1)
        masked[none, -1] = True  # the last column is always a real item (left padding)
        h = self.encode(seq.masked_fill(masked, self.mask_id))
        return ce_or_bce(h[masked], seq[masked] - 1, self.item_emb.weight[1 : self.n_items + 1], self.out_bias, loss, generator)

    def forward_scores(self, histories):
        seq = pad_histories(histories, self.max_len - 1)
        seq = torch.cat([seq, torch.full((seq.shape[0], 1), self.mask_id, dtype=torch.long)], dim=1)
        _, (seq,) = trim_left_padding(seq, ref=seq)
        h = self.encode(seq)[:, -1]
        return h @ self.item_emb.weight[1 : self.n_items + 1].t() + self.out_bias
