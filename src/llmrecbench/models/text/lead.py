"""The lead baseline of review summarization: the review's first sentence, cut to summary length."""

from __future__ import annotations

import numpy as np
import torch

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.errors import ConfigError
from llmrecbench.models.registry import register
from llmrecbench.models.text.base import TextModel


@register("lead")
class LeadSentence(TextModel):
    """summary_hat = the first ``L`` whitespace words of the review's first sentence (pysbd, English),
    with L = the median word count of the training summaries, rounded half up (fitted once)."""

    family = "summarization"

    def __init__(self, n_users: int, n_items: int):
        super().__init__(n_users, n_items)
        self.register_buffer("max_words", torch.tensor(0, dtype=torch.long))

    def fit_closed_form(self, train: TextPairs) -> None:
        self.check_data(train)
        lengths = np.asarray([len(s.split()) for s in train.references], dtype=np.float64)
        self.max_words.fill_(max(1, int(np.floor(np.median(lengths) + 0.5))))

    def generate(self, pairs: TextPairs) -> list[str]:
        import pysbd

        if pairs.sources is None:
            raise ConfigError(f"{self.name} summarises the review text, and {pairs.path} has none")
        seg = pysbd.Segmenter(language="en", clean=False)
        n = int(self.max_words)
        out = []
        for review in pairs.sources:
            sentences = [s for s in seg.segment(review or "") if s.strip()]
            out.append(" ".join((sentences[0] if sentences else "").split()[:n]))
        return out
