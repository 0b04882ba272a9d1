"""Most-popular baseline: every user gets the items ranked by their count in the training sequences."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from llmrecbench.models.base import SequentialRecommender
from llmrecbench.models.registry import register


@register("pop")
class Pop(SequentialRecommender):
    trainable = False

    def __init__(self, n_items: int):
        super().__init__(n_items)
        self.register_buffer("counts", torch.zeros(n_items, dtype=torch.float64))

    def fit_closed_form(self, train: Sequence[np.ndarray]) -> None:
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in train]) if len(train) else np.empty(0, np.int64)
        counts = np.bincount(items, minlength=self.n_items).astype(np.float64)
        self.counts.copy_(torch.from_numpy(counts))

    def training_examples(self, train):
        raise TypeError("pop is fitted in closed form; it has no training examples")

    def training_loss(self, batch, loss, generator):
        raise TypeError("pop is fitted in closed form; it has no training loss")

    def forward_scores(self, histories):
        return self.counts.float().unsqueeze(0).expand(len(histories), -1).clone()
