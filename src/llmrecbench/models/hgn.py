"""HGN (Ma, Kang & Liu, KDD 2019): hierarchical gating networks for sequential recommendation.

For user ``u`` (embedding ``u``) and the ``L`` most recent items (embeddings ``E = [e_1..e_L]``):

* feature gating: ``F = E * sigmoid(E W_g1 + u W_g2 + b_g)`` (per dimension, per item);
* instance gating: ``g_j = sigmoid(F_j . w_g3 + (u W_g4)_j)`` (one weight per item position);
* average pooling of the gated items: ``s = sum_j g_j F_j / sum_j g_j``;
* prediction, with the item-item product: ``r(u, k) = u . q_k + s . q_k + sum_j e_j . q_k + b_k``,
  with a separate output embedding ``q`` and per-item bias ``b`` (the authors' code).

Left-padded windows: padding positions (id 0) have a zero embedding and get instance weight 0,
so a user with fewer than ``L`` items pools over the items they have. Initialisation as in the
authors' code (embeddings N(0, 1/d), bias 0). Training, as for Caser here: every position of a
training sequence is one example (previous ``L`` items and the user -> next item, T = 1) with
the benchmark's loss (``ce``: softmax over all items; ``bce``: one sampled negative). The paper
trains with T = 3 targets and BPR; the loss is named in each cell's protocol.

HGN has a user embedding (``user_aware``): it scores users seen in training only, which in the
leave-one-out protocol is every test user.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from llmrecbench.errors import ConfigError
from llmrecbench.models.base import SequentialRecommender, ce_or_bce, pad_histories
from llmrecbench.models.registry import register


@register("hgn")
class HGN(SequentialRecommender):
    user_aware = True

    def __init__(self, n_items: int, n_users: int, L: int = 5, hidden: int = 64):
        super().__init__(n_items, n_users=n_users, L=L, hidden=hidden)
        self.n_users = int(n_users)
        self.L = L
        self.user_emb = nn.Embedding(n_users, hidden)
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.gate_item = nn.Linear(hidden, hidden)  # W_g1, b_g
        self.gate_user = nn.Linear(hidden, hidden, bias=False)  # W_g2
        self.instance_item = nn.Parameter(torch.empty(hidden))  # w_g3
        self.instance_user = nn.Parameter(torch.empty(hidden, L))  # W_g4
        self.out_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)  # q
        self.out_bias = nn.Parameter(torch.zeros(n_items + 1))  # b
        for table in (self.user_emb, self.item_emb, self.out_emb):
            nn.init.normal_(table.weight, std=1.0 / hidden)
        for param in (self.instance_item, self.instance_user):
            nn.init.xavier_uniform_(param.view(hidden, -1))
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
            self.out_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """``u + s + sum_j e_j`` ``[B, d]`` for a left-padded shifted-id window ``[B, L]``."""
        e = self.item_emb(seq)  # [B, L, d]
        u = self.user_emb(users)  # [B, d]
        gated = e * torch.sigmoid(self.gate_item(e) + self.gate_user(u).unsqueeze(1))
        weight = torch.sigmoid(gated @ self.instance_item + u @ self.instance_user) * (seq != 0)
        pooled = (gated * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True).clamp_min(1e-12)
        return u + pooled + e.sum(1)

    def training_examples(self, data):
        """One example per position of each user's training sequence: (user, previous L items) -> item."""
        windows, targets, users = [], [], []
        pad = np.zeros(self.L, dtype=np.int64)
        for user, s in zip(np.asarray(data.user_ids, dtype=np.int64), data.train):
            s = np.asarray(s, dtype=np.int64) + 1
            if s.size < 2:
                continue
            windows.append(sliding_window_view(np.concatenate([pad, s]), self.L)[1 : s.size])
            targets.append(s[1:])
            users.append(np.full(s.size - 1, user, dtype=np.int64))
        return {
            "input": torch.from_numpy(np.concatenate(windows)),
            "user": torch.from_numpy(np.concatenate(users)),
            "target": torch.from_numpy(np.concatenate(targets)),
        }

    def training_loss(self, batch, loss, generator):
        h = self.encode(batch["input"], batch["user"])
        return ce_or_bce(h, batch["target"] - 1, self.out_emb.weight[1:], self.out_bias[1:], loss, generator)

    def forward_scores(self, histories, users):
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ConfigError(f"hgn: user ids must lie in 0..{self.n_users - 1} (users seen in training), got {users.min()}..{users.max()}")
        h = self.encode(pad_histories(histories, self.L), torch.from_numpy(users))
        return h @ self.out_emb.weight[1:].t() + self.out_bias[1:]
