"""The one feature encoder every deep CTR model shares (RecBench's Eq. 2 and Groups A-C).

An item is a vector e_i in R^d from one of three representations (``item_repr``):

* ``unique_id`` (Group A): a trained ID embedding, e_i = E[i];
* ``text`` (Group B): the mean of the title's token embeddings, trained from scratch (no
  pretrained word vectors), e_i = (1/|T_i|) * sum_(t in T_i) W[t];
* ``semantic_embedding`` (Group C): the project's frozen sentence-encoder vector through a
  learned projection, e_i = P v_i + b.

A user is the mean of their history's item vectors, e_u = (1/|H_u|) * sum_(j in H_u) e_j (RecBench
Eq. 2; the zero vector for an empty history). The CTR models see the two fields (e_u, e_i).
"""

from __future__ import annotations

import torch
from torch import nn

from llmrecbench.errors import ConfigError

ITEM_REPRS = ("unique_id", "text", "semantic_embedding")


class ItemFeatures(nn.Module):
    """e_i for item ids (see the module docstring); text tokens and vectors are buffers, so a
    saved model carries the item features it was trained with."""

    def __init__(self, n_items: int, dim: int, item_repr: str, vocab_size: int = 0, title_len: int = 0, vector_dim: int = 0, init_std: float = 0.05):
        super().__init__()
        if item_repr not in ITEM_REPRS:
            raise ConfigError(f"CTR item_repr {item_repr!r}: expected one of {', '.join(ITEM_REPRS)}")
        self.item_repr = item_repr
        if item_repr == "unique_id":
            self.table = nn.Embedding(n_items, dim)
            nn.init.normal_(self.table.weight, std=init_std)
        elif item_repr == "text":
            if vocab_size < 2 or title_len < 1:
                raise ConfigError("CTR text items need a title vocabulary (vocab_size >= 2, title_len >= 1)")
            self.words = nn.Embedding(vocab_size, dim, padding_idx=0)
            nn.init.normal_(self.words.weight, std=init_std)
            with torch.no_grad():
                self.words.weight[0].zero_()
            self.register_buffer("tokens", torch.zeros(n_items, title_len, dtype=torch.long))
        else:
            if vector_dim < 1:
                raise ConfigError("CTR semantic_embedding items need the encoder's vector size (vector_dim >= 1)")
            self.register_buffer("vectors", torch.zeros(n_items, vector_dim))
            self.project = nn.Linear(vector_dim, dim)

    def set_features(self, tokens: torch.Tensor | None = None, vectors: torch.Tensor | None = None) -> None:
        """Fill the buffers of the text / semantic representation (before training)."""
        with torch.no_grad():
            if self.item_repr == "text":
                self.tokens.copy_(tokens)
            elif self.item_repr == "semantic_embedding":
                self.vectors.copy_(vectors)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """e_i of an int64 tensor of item ids (any shape) -> [..., d]. Text and vector items are
        encoded once per distinct id of the call, then gathered (a batch's histories repeat items)."""
        if self.item_repr == "unique_id":
            return self.table(items)
        distinct, where = torch.unique(items, return_inverse=True)
        return self.encode(distinct)[where]

    def encode(self, items: torch.Tensor) -> torch.Tensor:
        """e_i of a 1-D tensor of item ids, computed for each entry."""
        if self.item_repr == "unique_id":
            return self.table(items)
        if self.item_repr == "text":
            tok = self.tokens[items]
            mask = (tok > 0).unsqueeze(-1).to(self.words.weight.dtype)
            return (self.words(tok) * mask).sum(-2) / mask.sum(-2).clamp(min=1.0)
        return self.project(self.vectors[items])

    def user(self, history: torch.Tensor) -> torch.Tensor:
        """e_u = mean of e_j over the history ``[B, H]`` (padding -1) -> [B, d]."""
        return self.history_mean(history, self.forward(history.clamp(min=0)))

    @staticmethod
    def history_mean(history: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
        mask = (history >= 0).unsqueeze(-1)
        return (vecs * mask).sum(1) / mask.sum(1).clamp(min=1)

    def fields(self, history: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(e_u [B, d], e_i [B, d]), encoding the batch's history and candidate items in one call."""
        ids = torch.cat([history.clamp(min=0).reshape(-1), items.reshape(-1)])
        vecs = self.forward(ids)
        hist = vecs[: history.numel()].view(*history.shape, -1)
        return self.history_mean(history, hist), vecs[history.numel() :]
