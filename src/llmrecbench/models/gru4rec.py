"""GRU4Rec (Hidasi et al., ICLR 2016) in the RecBole form: item embedding, dropout, a GRU over the
session, a dense layer back to the embedding size, and the item embedding table as output layer
(score = <W h_t, e_i>). Trained to predict the next item at every position.

Sequences are right-padded internally (a GRU reads left to right, so trailing padding cannot
change the state at the last real item); scores are read at the last real position.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from llmrecbench.models.base import SequentialRecommender, ce_or_bce
from llmrecbench.models.registry import register


def pad_right(histories: Sequence[np.ndarray], max_len: int, shift: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``[B, max_len]`` shifted ids of the last ``max_len`` items, and the lengths."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    lengths = np.zeros(len(histories), dtype=np.int64)
    for row, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_len:]
        out[row, : h.size] = h + shift
        lengths[row] = h.size
    return torch.from_numpy(out), torch.from_numpy(lengths)


@register("gru4rec")
class GRU4Rec(SequentialRecommender):
    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        embedding: int = 64,
        hidden: int = 128,
        n_layers: int = 1,
        dropout: float = 0.3,
    ):
        super().__init__(n_items, max_len=max_len, embedding=embedding, hidden=hidden, n_layers=n_layers, dropout=dropout)
        self.max_len = max_len
        self.item_emb = nn.Embedding(n_items + 1, embedding, padding_idx=0)
        self.emb_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embedding, hidden, num_layers=n_layers, batch_first=True, bias=False)
        self.dense = nn.Linear(hidden, embedding)
        nn.init.xavier_normal_(self.item_emb.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        for w in self.gru.parameters():
            nn.init.xavier_uniform_(w)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        width = max(int((seq != 0).sum(1).max()), 1)
        seq = seq[:, :width]
        out, _ = self.gru(self.emb_dropout(self.item_emb(seq)))
        return self.dense(out)

    def training_examples(self, train):
        inp, length = pad_right([np.asarray(s)[:-1] for s in train], self.max_len)
        tgt, _ = pad_right([np.asarray(s)[1:] for s in train], self.max_len)
        return {"input": inp, "target": tgt, "length": length}

    def training_loss(self, batch, loss, generator):
        h = self.encode(batch["input"])
        tgt = batch["target"][:, : h.shape[1]]
        real = tgt != 0
        return ce_or_bce(h[real], tgt[real] - 1, self.item_emb.weight[1:], None, loss, generator)

    def forward_scores(self, histories):
        seq, lengths = pad_right(histories, self.max_len)
        h = self.encode(seq)
        last = h[torch.arange(len(histories)), (lengths - 1).clamp(min=0)]
        return last @ self.item_emb.weight[1:].t()
