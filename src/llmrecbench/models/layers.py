"""Building blocks shared by the user-item models (rating and direct families)."""

from __future__ import annotations

from typing import Sequence

from torch import nn


def user_item_embeddings(n_users: int, n_items: int, dim: int, init_std: float) -> tuple[nn.Embedding, nn.Embedding]:
    """User and item tables of width ``dim``, initialised N(0, init_std^2) (users first)."""
    user_emb, item_emb = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
    nn.init.normal_(user_emb.weight, std=init_std)
    nn.init.normal_(item_emb.weight, std=init_std)
    return user_emb, item_emb


def relu_layers(width: int, hidden: Sequence[int], dropout: float) -> tuple[list[nn.Module], int]:
    """NCF's MLP tower: Linear -> ReLU -> Dropout per hidden width; returns the layers and the output width."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    return layers, width
