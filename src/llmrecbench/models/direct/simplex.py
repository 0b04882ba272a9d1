"""SimpleX (Mao et al., "SimpleX: A Simple and Strong Baseline for Collaborative Filtering", CIKM 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.models.direct.base import CandidateRanker
from llmrecbench.models.registry import register


@register("simplex")
class SimpleX(CandidateRanker):
    """SimpleX: a user tower that mixes the user embedding with its aggregated history, cosine
    scores, and the cosine contrastive loss (CCL) over many uniform negatives.

        h_u    = (1/|H_u|) sum_{j in H_u} e_j                      (mean aggregation; 0 if H_u is empty)
        v_u    = gamma * e_u + (1 - gamma) * W h_u                 (W: d x d linear map, no bias)
        s(u,i) = cos(v_u, e_i)
        L      = (1/B) sum_(u,i) [ (1 - s(u,i)) + (w / |N|) sum_{j in N_ui} max(0, s(u,j) - m) ]
                 + reg * (1/B) sum (|e_u|^2 + |e_i|^2)

    H_u is the user's last ``max_history`` training items; N_ui are ``n_negatives`` items drawn
    uniformly from those not among u's training items; m = ``margin``, w = ``neg_weight``.
    ``dropout`` is applied to v_u in training. H_u holds every training item, including the item i
    of the pair being trained, as in the paper; with ``exclude_positive`` i is left out of H_u in
    its own pair (closer to evaluation, where no candidate is in H_u, but it scored lower on
    Beauty: benchmarks/direct_beauty.py).
    With ``shared_negatives`` one pool of ``n_negatives`` uniform items serves every pair of a
    batch (one [B, d] x [d, N] product instead of B x N gathered rows, so N can be large); a pool
    item that is a training item of u is masked out of u's sum, leaving N_ui uniform over u's
    unseen items (|N_ui| = N minus the few masked).

    H_u is stored as the persistent buffer ``history`` ([n_users, max_history], item id + 1,
    0 = padding), filled by :meth:`training_examples`, so save/load keeps it.
    """

    losses = ("ccl",)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        gamma: float = 0.5,
        max_history: int = 50,
        margin: float = 0.9,
        neg_weight: float = 150.0,
        n_negatives: int = 100,
        dropout: float = 0.1,
        reg: float = 0.0,
        exclude_positive: bool = False,
        shared_negatives: bool = False,
        init_std: float = 0.1,
    ):
        super().__init__(
            n_users, n_items, dim=dim, gamma=gamma, max_history=max_history, margin=margin, neg_weight=neg_weight,
            n_negatives=n_negatives, dropout=dropout, reg=reg, exclude_positive=exclude_positive,
            shared_negatives=shared_negatives, init_std=init_std,
        )
        self.gamma, self.margin, self.neg_weight = float(gamma), float(margin), float(neg_weight)
        self.n_negatives, self.reg, self.exclude_positive = int(n_negatives), float(reg), bool(exclude_positive)
        self.shared_negatives = bool(shared_negatives)
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)  # row 0: history padding
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.W = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("history", torch.zeros(n_users, max_history, dtype=torch.int32))

    def training_examples(self, train: LeaveOneOutSequences) -> dict[str, torch.Tensor]:
        examples = super().training_examples(train)
        width = self.history.shape[1]
        hist = torch.zeros_like(self.history)
        for user, items in zip(train.user_ids.tolist(), train.train):
            last = torch.as_tensor(items[-width:], dtype=torch.int32) + 1 if width else torch.empty(0, dtype=torch.int32)
            hist[user, : last.numel()] = last
        self.history.copy_(hist)
        return examples

    def user_vectors(self, users: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """v_u ``[B, d]``; ``exclude`` ``[B]`` (item ids) are left out of each user's history mean."""
        hist = self.history[users].long()  # [B, H]
        mask = hist != 0
        if exclude is not None:
            mask &= hist != (exclude.view(-1, 1) + 1)
        w = mask.to(self.item_emb.weight.dtype)
        w = w / w.sum(1, keepdim=True).clamp(min=1.0)
        # sum_j w_uj e_j without materialising [B, H, d]
        mean = F.embedding_bag(hist, self.item_emb.weight, mode="sum", per_sample_weights=w)
        return self.gamma * self.user_emb(users) + (1.0 - self.gamma) * self.W(mean)

    def unit_items(self) -> torch.Tensor:
        """The item table with unit rows, e_i / |e_i| ``[n_items + 1, d]`` (row 0, padding, stays 0)."""
        return F.normalize(self.item_emb.weight, dim=-1)

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str, generator: torch.Generator) -> torch.Tensor:
        self.check_loss(loss)
        users, pos = batch["user"], batch["pos"]
        v = F.normalize(self.dropout(self.user_vectors(users, pos if self.exclude_positive else None)), dim=-1)
        # normalising the table once is cheaper than normalising [B, N, d] gathered rows (same values)
        unit = self.unit_items()
        cos_pos = (v * unit[pos + 1]).sum(-1)
        if self.shared_negatives:
            pool = torch.randint(0, self.n_items, (self.n_negatives,), generator=generator)
            ok = ~self.seen(users.view(-1, 1), pool.view(1, -1))  # [B, N]
            cos_neg = v @ unit[pool + 1].t()
        else:
            neg, ok = self.sample_unseen(users, self.n_negatives, generator)  # [B, N]
            cos_neg = torch.bmm(unit[neg + 1], v.unsqueeze(-1)).squeeze(-1)
        neg_term = (F.relu(cos_neg - self.margin) * ok).sum(-1) * (self.neg_weight / self.n_negatives)
        value = ((1.0 - cos_pos) + neg_term).mean()
        if self.reg:
            value = value + self.reg * (self.user_emb(users).pow(2).sum(-1) + self.item_emb(pos + 1).pow(2).sum(-1)).mean()
        return value

    def forward_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        v = F.normalize(self.user_vectors(users), dim=-1)
        return torch.bmm(self.unit_items()[items + 1], v.unsqueeze(-1)).squeeze(-1)
