"""SASRec (Kang & McAuley, ICDM 2018): self-attentive sequential recommendation.

Architecture as in the authors' code: item embedding scaled by sqrt(d) plus a learned absolute
position embedding (left-padded window, so the most recent item always sits at position
``max_len - 1``), dropout, then ``n_layers`` pre-LayerNorm blocks of causal multi-head
self-attention and a point-wise two-layer feed-forward net, a final LayerNorm, and the item
embedding table shared as output layer (score = <h_t, e_i>). Padding keys are masked, so padding
never changes a score.

Losses: ``ce`` = softmax over all items at every non-padded position (RecBole); ``bce`` = one
sampled negative per position (original paper / S3-Rec code).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.models.base import (
    SequentialRecommender,
    ce_or_bce,
    next_item_examples,
    pad_histories,
    trim_left_padding,
)
from llmrecbench.models.registry import register


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, hidden: int, n_heads: int, attn_dropout: float):
        super().__init__()
        if hidden % n_heads:
            raise ValueError(f"hidden size {hidden} not divisible by {n_heads} heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.attn_dropout = attn_dropout

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, d = query.shape
        h = self.n_heads
        w, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(query, w[:d], bias[:d])
        k, v = F.linear(key_value, w[d:], bias[d:]).chunk(2, dim=-1)
        q, k, v = (t.view(b, length, h, d // h).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.attn_dropout if self.training else 0.0
        )
        return self.out(out.transpose(1, 2).reshape(b, length, d))


def attention_mask(seq: torch.Tensor, causal: bool) -> torch.Tensor:
    """``[B, 1, L, L]`` bool: query q may attend key k (k non-padding, k <= q if causal).

    Padded queries attend to themselves only, so no softmax row is empty (their outputs are
    never used).
    """
    length = seq.shape[1]
    keys = (seq != 0)[:, None, None, :]
    eye = torch.eye(length, dtype=torch.bool)
    allowed = keys | eye
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool).tril()
    return allowed


@register("sasrec")
class SASRec(SequentialRecommender):
    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        attn_dropout: float = 0.5,
    ):
        super().__init__(
            n_items,
            max_len=max_len,
            hidden=hidden,
            n_layers=n_layers,
            n_heads=n_heads,
            inner=inner,
            dropout=dropout,
            attn_dropout=attn_dropout,
        )
        self.max_len = max_len
        self.hidden = hidden
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_dropout = nn.Dropout(dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(n_layers))
        self.attns = nn.ModuleList(MultiHeadSelfAttention(hidden, n_heads, attn_dropout) for _ in range(n_layers))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(n_layers))
        self.ffns = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, inner), nn.ReLU(), nn.Dropout(dropout), nn.Linear(inner, hidden), nn.Dropout(dropout))
            for _ in range(n_layers)
        )
        self.attn_dropouts = nn.ModuleList(nn.Dropout(dropout) for _ in range(n_layers))
        self.last_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    # Item representation hooks: subclasses (sasrec_sbert, sid_sasrec) replace the ID table.
    def embed_items(self, seq: torch.Tensor) -> torch.Tensor:
        """Input vectors ``[B, L, d]`` of shifted ids (0 = padding, a zero vector)."""
        return self.item_emb(seq)

    def output_table(self) -> torch.Tensor:
        """``[n_items, d]`` output vectors (score = <h, v_i>); the input table, shared."""
        return self.item_emb.weight[1:]

    def encode(self, seq: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """Hidden states ``[B, L, d]`` for a left-padded shifted-id window ``[B, L]`` (``causal``:
        a position sees itself and earlier ones; otherwise every non-padding position, as in
        S3-Rec's pre-training)."""
        offset, (seq,) = trim_left_padding(seq, ref=seq)
        length = seq.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len)
        keep = (seq != 0).unsqueeze(-1).to(self.pos_emb.weight.dtype)
        x = self.embed_items(seq) * math.sqrt(self.hidden) + self.pos_emb(positions)
        x = self.emb_dropout(x) * keep
        allowed = attention_mask(seq, causal=causal)
        for norm_a, attn, drop, norm_f, ffn in zip(self.attn_norms, self.attns, self.attn_dropouts, self.ffn_norms, self.ffns):
            q = norm_a(x)
            x = q + drop(attn(q, x, allowed))
            x = norm_f(x)
            x = (x + ffn(x)) * keep
        return self.last_norm(x)

    def training_examples(self, train: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        return next_item_examples(train, self.max_len)

    def training_loss(self, batch, loss, generator):
        _, (inp, tgt) = trim_left_padding(batch["input"], batch["target"], ref=batch["target"])
        h = self.encode(inp)
        real = tgt != 0
        return ce_or_bce(h[real], tgt[real] - 1, self.output_table(), None, loss, generator)

    def forward_scores(self, histories):
        seq = pad_histories(histories, self.max_len)
        h = self.encode(seq)[:, -1]
        return h @ self.output_table().t()
