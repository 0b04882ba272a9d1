"""Base class of the conventional text generators of the explanation and review tasks.

Conventions shared by all text models:

* Users and items are the 0-based ids of the 8:1:1 split; the data is a
  :class:`llmrecbench.data.text_pairs.TextPairs` part (ids, rating, input text where the task has
  one, reference, feature word where the task has one).
* ``generate(pairs)`` returns one text per pair, in order (eval mode, no gradient). What a model
  may look at is what the task gives it at test time: ids, the feature word (explanation, when the
  model is a feature-hint variant) and the input review (summarization); never the reference.
* Trainable models (``trainable = True``) go through the one training loop
  (:func:`llmrecbench.training.fit`) with ``training_examples`` / ``training_loss``; closed-form
  ones (retrieval, lead) are fitted by ``fit_closed_form(train)``.
* ``save`` / ``load`` round-trip weights, buffers and any text state (``get_extra_state``) plus
  constructor arguments through the model registry, like the rating and direct families.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.errors import ConfigError
from llmrecbench.models.persistence import load_user_item_model, save_user_item_model


class TextModel(torch.nn.Module):
    """Generates one text per (user, item) pair; see the module docstring."""

    name: ClassVar[str] = "base"
    family: ClassVar[str] = "explanation"
    trainable: ClassVar[bool] = False
    losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_users: int, n_items: int, **hparams: Any):
        super().__init__()
        if n_users < 1 or n_items < 1:
            raise ConfigError(f"n_users and n_items must be positive, got {n_users}, {n_items}")
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.hparams: dict[str, Any] = dict(hparams)

    def check_data(self, data: TextPairs) -> None:
        if data.n == 0:
            raise ConfigError(f"{self.name}: no training pairs ({data.path})")
        if max(data.users) >= self.n_users or max(data.items) >= self.n_items:
            raise ConfigError(f"{self.name}: ids of {data.path} exceed the model's {self.n_users} users x {self.n_items} items")

    def fit_closed_form(self, train: TextPairs) -> None:
        raise TypeError(f"{self.name} is trained by gradient descent, not fitted in closed form")

    def generate(self, pairs: TextPairs) -> list[str]:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        save_user_item_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "TextModel":
        return load_user_item_model(cls, TextModel, path)
