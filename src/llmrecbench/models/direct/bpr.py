"""BPR-trained direct recommenders: BPR-MF (Rendle et al., UAI 2009) and BPR-MLP (an NCF-MLP scorer,
He et al., WWW 2017, trained with the BPR loss), the P5 / LLMRec Table 5 baselines."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.models.direct.base import CandidateRanker
from llmrecbench.models.layers import relu_layers, user_item_embeddings
from llmrecbench.models.registry import register


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """-(1/|ok|) * sum_{(u,i,j) ok} log sigma(s_ui - s_uj); ``ok`` masks unusable negatives."""
    terms = F.logsigmoid(pos - neg) * ok
    return -terms.sum() / ok.sum().clamp(min=1)


class _BPRModel(CandidateRanker):
    """Shared BPR training: one uniformly drawn unseen negative j per (u, i) training pair."""

    losses = ("bpr",)

    def pair_scores(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """s(u,i), s(u,j) and the batch L2 penalty of the embeddings involved."""
        raise NotImplementedError

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str, generator: torch.Generator) -> torch.Tensor:
        self.check_loss(loss)
        users, pos = batch["user"], batch["pos"]
        neg, ok = self.sample_unseen(users, 1, generator)
        s_pos, s_neg, penalty = self.pair_scores(users, pos, neg[:, 0])
        return bpr_loss(s_pos, s_neg, ok[:, 0].float()) + penalty


@register("bpr_mf")
class BPRMF(_BPRModel):
    """BPR-MF: matrix factorisation trained with Bayesian personalised ranking.

        s(u, i) = p_u . q_i + b_i                              (b_i only with ``item_bias``)
        L = -(1/B) sum_(u,i,j) log sigma(s(u,i) - s(u,j)) + reg * (1/B) sum (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 + b_j^2)

    over a batch of B training pairs (u, i) with j drawn uniformly from the items not among u's
    training items (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback",
    UAI 2009). Embeddings start as N(0, init_std^2), biases at 0.
    """

    def __init__(
        self, n_users: int, n_items: int, dim: int = 64, reg: float = 1e-4, item_bias: bool = True, init_std: float = 0.1
    ):
        super().__init__(n_users, n_items, dim=dim, reg=reg, item_bias=item_bias, init_std=init_std)
        self.reg = float(reg)
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.item_bias = nn.Parameter(torch.zeros(n_items)) if item_bias else None

    def _bias(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_bias[items] if self.item_bias is not None else torch.zeros(items.shape, dtype=self.user_emb.weight.dtype)

    def pair_scores(self, users, pos, neg):
        p, qi, qj = self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
        bi, bj = self._bias(pos), self._bias(neg)
        s_pos = (p * qi).sum(-1) + bi
        s_neg = (p * qj).sum(-1) + bj
        penalty = self.reg * (p.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1) + bi.pow(2) + bj.pow(2)).mean()
        return s_pos, s_neg, penalty

    def forward_candidates(self, users, items):
        p = self.user_emb(users)  # [B, d]
        return torch.einsum("bd,bcd->bc", p, self.item_emb(items)) + self._bias(items)


@register("bpr_mlp")
class BPRMLP(_BPRModel):
    """BPR-MLP: an NCF-style multi-layer perceptron over the concatenated embeddings, trained with BPR.

        z_0 = [p_u ; q_i],  z_l = dropout(ReLU(W_l z_{l-1} + b_l)) for l = 1..L,  s(u, i) = w^T z_L + b
        L = -(1/B) sum_(u,i,j) log sigma(s(u,i) - s(u,j)) + reg * (1/B) sum (|p_u|^2 + |q_i|^2 + |q_j|^2)

    with ``hidden`` = (h_1..h_L) and j uniform over the items not among u's training items (MLP
    tower of He et al., "Neural Collaborative Filtering", WWW 2017; pairwise loss of Rendle et
    al. 2009, as in P5's BPR-MLP baseline).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.0,
        reg: float = 0.0,
        init_std: float = 0.1,
    ):
        hidden = [int(h) for h in hidden]
        super().__init__(n_users, n_items, dim=dim, hidden=hidden, dropout=dropout, reg=reg, init_std=init_std)
        self.reg = float(reg)
        self.user_emb, self.item_emb = user_item_embeddings(n_users, n_items, dim, init_std)
        layers, width = relu_layers(2 * dim, hidden, dropout)
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def _score(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([p, q], dim=-1)).squeeze(-1)

    def pair_scores(self, users, pos, neg):
        p, qi, qj = self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
        penalty = self.reg * (p.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1)).mean()
        return self._score(p, qi), self._score(p, qj), penalty

    def forward_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        q = self.item_emb(items)  # [B, C, d]
        p = self.user_emb(users).unsqueeze(1).expand_as(q)
        return self._score(p, q)
