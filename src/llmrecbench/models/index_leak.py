"""``index_leak``: a probe model that ranks items by their *number* alone (the P5 index leak).

P5's sequential indexing numbers items along users' full sequences, so a user's held-out item
is often numbered max(history) + 1. This model knows nothing but the ids it is given (the row's
item numbering, :mod:`llmrecbench.data.indexing`). With m_u the largest id in user u's history,

    score_u(j) = -|j - (m_u + 1)|,

so m_u + 1 ranks first, then m_u and m_u + 2 (ties by the lower id), and so on outward. Under
``p5_sequential`` its HR@1 is about the leakage probe; under a numbering that carries no held-out
information it is near chance. It has no parameters and no training.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from llmrecbench.models.base import SequentialRecommender
from llmrecbench.models.registry import register


@register("index_leak")
class IndexLeak(SequentialRecommender):
    trainable = False

    def __init__(self, n_items: int):
        super().__init__(n_items)

    def fit_closed_form(self, train: Sequence[np.ndarray]) -> None:
        """Nothing to fit: the scores are a function of the ids in the history."""

    def training_examples(self, train):
        raise TypeError("index_leak has no parameters; it has no training examples")

    def training_loss(self, batch, loss, generator):
        raise TypeError("index_leak has no parameters; it has no training loss")

    def forward_scores(self, histories):
        nxt = torch.tensor([int(np.max(h)) + 1 if len(h) else 0 for h in histories], dtype=torch.float32)
        ids = torch.arange(self.n_items, dtype=torch.float32)
        return -(ids.unsqueeze(0) - nxt.unsqueeze(1)).abs()
