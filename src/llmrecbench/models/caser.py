"""Caser (Tang & Wang, WSDM 2018): convolutional sequence embedding.

The last ``L`` items form an ``L x d`` "image"; ``n_v`` vertical filters (``L x 1``) and, for
every height ``h`` in ``1..L``, ``n_h`` horizontal filters (``h x d``, ReLU, max-pooled over
time) are concatenated, passed through dropout and a fully connected layer with ReLU to a
``d``-dimensional vector ``z``; item scores are ``z . w_i + b_i`` with a separate output
embedding ``W2``.

Deviation (documented): this is the *user-agnostic* variant: the paper concatenates a user
embedding ``P_u`` to ``z``; we drop it so that the model scores any history, including those of
users never seen in training (as every model in this benchmark must). Training uses every
position of each training sequence as one example (previous ``L`` items -> next item, T = 1),
with left zero-padding for the first positions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from llmrecbench.models.base import SequentialRecommender, ce_or_bce, pad_histories
from llmrecbench.models.registry import register


@register("caser")
class Caser(SequentialRecommender):
    def __init__(self, n_items: int, L: int = 5, hidden: int = 64, n_v: int = 4, n_h: int = 16, dropout: float = 0.5):
        super().__init__(n_items, L=L, hidden=hidden, n_v=n_v, n_h=n_h, dropout=dropout)
        self.L = L
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.conv_v = nn.Conv2d(1, n_v, (L, 1))
        self.conv_h = nn.ModuleList(nn.Conv2d(1, n_h, (h, hidden)) for h in range(1, L + 1))
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(n_v * hidden + n_h * L, hidden)
        self.out_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.out_bias = nn.Parameter(torch.zeros(n_items + 1))
        nn.init.normal_(self.item_emb.weight, std=1.0 / hidden)
        nn.init.normal_(self.out_emb.weight, std=1.0 / hidden)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
            self.out_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        e = self.item_emb(seq).unsqueeze(1)  # [B, 1, L, d]
        out_v = self.conv_v(e).flatten(1)
        out_h = [F.relu(conv(e).squeeze(3)).amax(dim=2) for conv in self.conv_h]
        z = torch.cat([out_v, *out_h], dim=1)
        return F.relu(self.fc1(self.dropout(z)))

    def training_examples(self, train):
        windows, targets = [], []
        pad = np.zeros(self.L, dtype=np.int64)
        for s in train:
            s = np.asarray(s, dtype=np.int64) + 1
            if s.size < 2:
                continue
            padded = np.concatenate([pad, s])
            windows.append(sliding_window_view(padded, self.L)[1 : s.size])
            targets.append(s[1:])
        return {"input": torch.from_numpy(np.concatenate(windows)), "target": torch.from_numpy(np.concatenate(targets))}

    def training_loss(self, batch, loss, generator):
        z = self.encode(batch["input"])
        return ce_or_bce(z, batch["target"] - 1, self.out_emb.weight[1:], self.out_bias[1:], loss, generator)

    def forward_scores(self, histories):
        z = self.encode(pad_histories(histories, self.L))
        return z @ self.out_emb.weight[1:].t() + self.out_bias[1:]
