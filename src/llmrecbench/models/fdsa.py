"""FDSA (Zhang et al., IJCAI 2019): feature-level deeper self-attention for sequential recommendation.

Two self-attention streams over the same left-padded history window:

* the **item stream**: SASRec blocks over ID embeddings (+ positions), hidden states A_t;
* the **feature stream**: SASRec blocks over each item's feature vector (+ its own positions),
  hidden states F_t. FDSA pools an item's attribute embeddings with a vanilla attention; here an
  item has one feature, its frozen sentence-encoder vector of the title (the project's
  ``item_embeddings``), through a learned projection f_i = W v_i, so that pooling is the identity.
  Datasets without item text have no FDSA row (its cell says N/A and why).

The streams are concatenated and fused, o_t = W_o [A_t ; F_t] + b_o, and an item scores
s_i = <o_t, e_i> with the item stream's ID table e (shared input / output, as SASRec). Loss:
full-softmax cross-entropy over all items at every position (``ce``), or one sampled negative
(``bce``), as for SASRec.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from llmrecbench.models.base import SequentialRecommender, ce_or_bce, next_item_examples, pad_histories, trim_left_padding
from llmrecbench.models.registry import register
from llmrecbench.models.sasrec import SASRec
from llmrecbench.models.semantic import SASRecSBERT


@register("fdsa")
class FDSA(SequentialRecommender):
    requires = ("item_embeddings",)

    def __init__(
        self,
        n_items: int,
        item_embeddings: np.ndarray,
        max_len: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        attn_dropout: float = 0.5,
    ):
        super().__init__(n_items, max_len=max_len, hidden=hidden, n_layers=n_layers, n_heads=n_heads, inner=inner,
                         dropout=dropout, attn_dropout=attn_dropout)
        self.max_len = max_len
        self.items = SASRec(n_items, max_len, hidden, n_layers, n_heads, inner, dropout, attn_dropout)
        # the feature stream: SASRec blocks whose inputs are projected feature vectors only
        self.features = SASRecSBERT(n_items, item_embeddings, max_len, hidden, n_layers, n_heads, inner, dropout,
                                    attn_dropout, id_residual=False)
        self.fuse = nn.Linear(2 * hidden, hidden)
        nn.init.normal_(self.fuse.weight, std=0.02)
        nn.init.zeros_(self.fuse.bias)

    def required_inputs(self) -> dict[str, np.ndarray]:
        return self.features.required_inputs()

    def hidden_states(self, seq: torch.Tensor) -> torch.Tensor:
        """o_t = W_o [A_t ; F_t] + b_o for a left-padded shifted-id window ``[B, L]``."""
        return self.fuse(torch.cat([self.items.encode(seq), self.features.encode(seq)], dim=-1))

    def training_examples(self, train: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        return next_item_examples(train, self.max_len)

    def training_loss(self, batch, loss, generator):
        _, (inp, tgt) = trim_left_padding(batch["input"], batch["target"], ref=batch["target"])
        h = self.hidden_states(inp)
        real = tgt != 0
        return ce_or_bce(h[real], tgt[real] - 1, self.items.output_table(), None, loss, generator)

    def forward_scores(self, histories):
        seq = pad_histories(histories, self.max_len)
        return self.hidden_states(seq)[:, -1] @ self.items.output_table().t()
