"""Base class of every conventional sequential recommender.

Conventions shared by all models:

* Histories come in as 0-based item ids in chronological order. Internally every model shifts
  them by +1 so that id 0 is padding; sequences are left-padded (most recent item in the last
  column) and truncated to the model's ``max_len`` most recent items.
* ``score(histories)`` returns ``[B, n_items]`` scores over the 0-based catalogue (eval mode, no
  gradient); it is the ``score_fn`` that :func:`llmrecbench.evaluation.evaluate_full_ranking`
  expects. Models with a user embedding (``user_aware = True``, e.g. HGN) also take
  ``users=`` (the users' ids, one per history), are built with ``n_users`` and get the whole
  :class:`~llmrecbench.data.sequences.LeaveOneOutSequences` (ids and sequences) in
  ``training_examples``; they score only users seen in training.
* ``training_examples(train_sequences)`` turns the training sequences into a dict of tensors
  sharing their first dimension (one row per example); the trainer shuffles and slices rows and
  hands each batch to ``training_loss(batch, loss, generator)``.
* ``save(path)`` / ``load(path)`` round-trip weights plus constructor arguments, including the
  arrays a class declares in ``requires`` (semantic codes, text embeddings), so a loaded model
  needs no other file.
* Generative models (``generative = True``, e.g. TIGER, SID-SASRec) do not score every item:
  ``recommend(histories, **decoding)`` returns a ranked list per user (``[B, W]`` item ids, best
  first, :data:`INVALID_ITEM` where the decoder produced a sequence that is no item,
  :data:`NO_ITEM` where it returned fewer than ``W``), which
  :func:`llmrecbench.evaluation.evaluate_generated_lists` turns into the same metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from llmrecbench.errors import ConfigError
from llmrecbench.evaluation import INVALID_ITEM, NO_ITEM  # noqa: F401  (the generated-list contract)
from llmrecbench.io import atomic_path

LOSSES = ("ce", "bce")


def pad_histories(histories: Sequence[np.ndarray], max_len: int, shift: int = 1) -> torch.Tensor:
    """Left-pad (with 0) and truncate histories to their last ``max_len`` items, ids + ``shift``.

    Returns a ``[B, max_len]`` int64 tensor; the most recent item sits in the last column.
    """
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_len:] if max_len > 0 else np.empty(0, np.int64)
        if h.size:
            out[row, max_len - h.size :] = h + shift
    return torch.from_numpy(out)


def trim_left_padding(*tensors: torch.Tensor, ref: torch.Tensor) -> tuple[int, tuple[torch.Tensor, ...]]:
    """Drop the leading columns that are padding (0) in every row of ``ref``.

    Returns the number of dropped columns and the trimmed tensors (same columns dropped from
    each). Models whose padding is fully masked give identical outputs with or without it, so
    this only saves compute.
    """
    nonpad = (ref != 0).any(dim=0)
    first = int(nonpad.nonzero()[0]) if bool(nonpad.any()) else ref.shape[1] - 1
    return first, tuple(t[:, first:] for t in tensors)


def check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")


def sample_negatives(pos: torch.Tensor, n_items: int, generator: torch.Generator) -> torch.Tensor:
    """One uniformly drawn negative per positive (0-based ids), redrawn where it hits the positive."""
    neg = torch.randint(0, n_items, pos.shape, generator=generator)
    for _ in range(10):
        clash = neg == pos
        if not bool(clash.any()):
            break
        neg[clash] = torch.randint(0, n_items, (int(clash.sum()),), generator=generator)
    return neg


def ce_or_bce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor | None,
    loss: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """Loss of ``hidden`` ``[N, d]`` predicting 0-based ``targets`` ``[N]``.

    ``ce``: softmax cross-entropy over all items (logits = hidden @ out_weight.T + bias).
    ``bce``: binary cross-entropy of the target against one uniformly sampled negative.
    """
    check_loss(loss)
    if loss == "ce":
        logits = hidden @ out_weight.t()
        if out_bias is not None:
            logits = logits + out_bias
        return F.cross_entropy(logits, targets)
    neg = sample_negatives(targets, out_weight.shape[0], generator)
    pos_logit = (hidden * out_weight[targets]).sum(-1)
    neg_logit = (hidden * out_weight[neg]).sum(-1)
    if out_bias is not None:
        pos_logit = pos_logit + out_bias[targets]
        neg_logit = neg_logit + out_bias[neg]
    return F.binary_cross_entropy_with_logits(
        pos_logit, torch.ones_like(pos_logit)
    ) + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))


def next_item_examples(train: Sequence[np.ndarray], max_len: int) -> dict[str, torch.Tensor]:
    """Per user: input = items[:-1], target = items[1:] (last ``max_len`` of each), left-padded.

    Target 0 marks a padded position (no loss); targets are shifted ids like the inputs.
    """
    inputs = pad_histories([np.asarray(s)[:-1] for s in train], max_len)
    targets = pad_histories([np.asarray(s)[1:] for s in train], max_len)
    return {"input": inputs, "target": targets, "length": (targets != 0).sum(1)}


class SequentialRecommender(torch.nn.Module):
    """A next-item recommender over ``n_items`` items; see the module docstring."""

    name: ClassVar[str] = "base"
    family: ClassVar[str] = "sequential"
    trainable: ClassVar[bool] = True
    losses: ClassVar[tuple[str, ...]] = LOSSES  # what TrainConfig.loss may name
    # arrays the class takes as constructor arguments (one row per item id), e.g. "semantic_codes"
    requires: ClassVar[tuple[str, ...]] = ()
    # True: recommend() returns ranked lists instead of score() over all items
    generative: ClassVar[bool] = False
    # True: reads user ids; scored (or asked to recommend) with users=, trained on the
    # LeaveOneOutSequences (user ids + sequences) instead of the bare sequence list. As a class
    # attribute (a user embedding table, HGN) the model is also built with n_users; a model whose
    # user input is hashed (TIGER's user token) sets it per instance and needs no n_users
    user_aware: ClassVar[bool] = False
    # True: a self-supervised pre-training stage before fine-tuning (S3-Rec): the model offers
    # pretraining() (a context in which training_examples/training_loss are the pre-training
    # ones), pretrain_validation(sequences, seed), pretrain_epochs and pretrain_lr
    pretrains: ClassVar[bool] = False

    def __init__(self, n_items: int, **hparams: Any):
        super().__init__()
        if n_items < 1:
            raise ConfigError(f"n_items must be positive, got {n_items}")
        self.n_items = int(n_items)
        self.hparams: dict[str, Any] = dict(hparams)
        # the item numbering the model was trained in (llmrecbench.data.indexing.ItemNumbering);
        # its inputs and outputs are model ids, and callers map through it. None: canonical ids.
        self.item_numbering = None

    # --- training -------------------------------------------------------------------------
    def training_examples(self, train: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # --- inference ------------------------------------------------------------------------
    def forward_scores(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def score(self, histories: Sequence[np.ndarray], users: np.ndarray | None = None) -> torch.Tensor:
        """Scores ``[B, n_items]`` of every item as the next one after each history (of user
        ``users[b]``: a ``user_aware`` model needs them, every other model ignores them)."""
        if self.user_aware and users is None:
            raise ConfigError(f"model {self.name!r} has a user embedding: score(histories, users=...) needs the user ids")
        was_training = self.training
        self.eval()
        try:
            if self.user_aware:
                return self.forward_scores(histories, np.asarray(users, dtype=np.int64))
            return self.forward_scores(histories)
        finally:
            self.train(was_training)

    def recommend(self, histories: Sequence[np.ndarray], **decoding: Any) -> np.ndarray:
        """Generative models: ``[B, W]`` int64 ranked item ids per history (see module docstring)."""
        raise NotImplementedError(f"{self.name} is not a generative model; use score()")

    def required_inputs(self) -> dict[str, np.ndarray]:
        """The ``requires`` arrays this instance was built with (saved beside the weights)."""
        return {}

    def protocol(self) -> dict:
        """What this trained instance adds to its cell's protocol (e.g. the pre-training objectives
        it really used); nothing by default."""
        return {}

    # --- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        payload = {
            "name": self.name,
            "n_items": self.n_items,
            "hparams": self.hparams,
            "state_dict": self.state_dict(),
        }
        if self.required_inputs():
            payload["inputs"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.required_inputs().items()}
        if self.item_numbering is not None:
            payload["item_numbering"] = {"scheme": self.item_numbering.scheme,
                                         "to_model": torch.from_numpy(self.item_numbering.to_model)}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "SequentialRecommender":
        from llmrecbench.models.registry import get_model_class

        payload = torch.load(path, map_location="cpu", weights_only=True)
        model_cls = get_model_class(payload["name"])
        if cls is not SequentialRecommender and not issubclass(model_cls, cls):
            raise ConfigError(f"{path}: holds a {payload['name']!r} model, not {cls.name!r}")
        inputs = {k: v.numpy() for k, v in payload.get("inputs", {}).items()}
        model = model_cls(payload["n_items"], **payload["hparams"], **inputs)
        model.load_state_dict(payload["state_dict"])
        if "item_numbering" in payload:
            from llmrecbench.data.indexing import ItemNumbering

            numbering = payload["item_numbering"]
            model.item_numbering = ItemNumbering(numbering["scheme"], numbering["to_model"].numpy().astype(np.int64))
        model.eval()
        return model
