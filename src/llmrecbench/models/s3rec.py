"""S3-Rec (Zhou et al., CIKM 2020): self-supervised pre-training, then SASRec fine-tuning.

One encoder (this project's SASRec: item + position embedding, self-attention blocks, item table
shared as output layer) and an attribute table ``E_A``. **Pre-training** runs the encoder
bidirectionally (padding masked) on each user's training sequence (its last ``max_len`` items)
with four objectives, as in the authors' code and RecBole's S3Rec:

* **MIP**, masked item prediction: each item is replaced by [MASK] with probability
  ``mask_prob`` (a sequence that drew none gets its last item masked); at a masked position with
  hidden ``f``, ``s(i) = sigmoid(<W_MIP f, e_i>)`` and the loss is
  ``BCE(sigmoid(s(pos) - s(neg)), 1)`` against one uniformly drawn negative item;
* **AAP**, associated attribute prediction: at every unmasked position, the item's attributes
  from ``sigmoid(<W_AAP f, E_A[a]>)`` with multi-hot BCE over all attributes;
* **MAP**, masked attribute prediction: the same with ``W_MAP`` at the masked positions;
* **SP**, segment prediction: a random segment (length uniform in 1..n/2) is masked as a whole;
  the context is ``W_SP h_last`` of that sequence, a segment's representation is ``h_last`` of
  the sequence holding only the segment (everything else [MASK]), the negative a segment of the
  same length from the concatenation of all training sequences;
  loss ``BCE(sigmoid(s(pos) - s(neg)), 1)`` with ``s = sigmoid(<context, segment>)``.

Loss = ``aap_weight * AAP + mip_weight * MIP + map_weight * MAP + sp_weight * SP`` (each summed
over positions / attributes, as in the authors' code), divided by the batch size. Without
attributes (no item text) AAP and MAP are dropped, which :meth:`protocol` records.

**Fine-tuning** is SASRec (causal) from the pre-trained weights, with the benchmark's loss
(``ce`` full softmax; the paper used ``bce`` with one negative, a config key away). Pre-training
runs ``pretrain_epochs`` epochs at ``pretrain_lr`` through the shared trainer; the epoch kept
is the one with the lowest pre-training loss on the users' train + valid sequences (fixed masks),
which is also checkpointed, so a killed job resumes in either stage.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.data.attributes import items_with_attributes
from llmrecbench.models.base import pad_histories, sample_negatives, trim_left_padding
from llmrecbench.models.registry import register
from llmrecbench.models.sasrec import SASRec
from llmrecbench.monitor import Monitor

PRETRAIN_MONITOR = Monitor("pretrain_loss", "min")


def long_sequence(sequences: Sequence[np.ndarray]) -> torch.Tensor:
    """All sequences concatenated in shifted ids: where SP's negative segments are cut from."""
    real = [np.asarray(s, dtype=np.int64) + 1 for s in sequences if len(s)]
    return torch.from_numpy(np.concatenate(real)) if real else torch.ones(1, dtype=torch.int64)


@register("s3rec")
class S3Rec(SASRec):
    requires = ("item_attributes",)
    pretrains = True
    pretrain_monitor = PRETRAIN_MONITOR

    def __init__(
        self,
        n_items: int,
        item_attributes: np.ndarray,
        max_len: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        attn_dropout: float = 0.5,
        mask_prob: float = 0.2,
        aap_weight: float = 0.2,
        mip_weight: float = 1.0,
        map_weight: float = 1.0,
        sp_weight: float = 0.5,
        pretrain_epochs: int = 10,
        pretrain_lr: float = 0.001,
    ):
        super().__init__(n_items, max_len, hidden, n_layers, n_heads, inner, dropout, attn_dropout)
        self.hparams.update(mask_prob=mask_prob, aap_weight=aap_weight, mip_weight=mip_weight, map_weight=map_weight,
                            sp_weight=sp_weight, pretrain_epochs=pretrain_epochs, pretrain_lr=pretrain_lr)
        attrs = np.asarray(item_attributes, dtype=np.int64).reshape(n_items, -1)
        self.item_attributes = attrs
        self.n_attributes = int(attrs.max()) + 1 if attrs.size and attrs.max() >= 0 else 0
        self.mask_id = n_items + 1
        self.item_emb = nn.Embedding(n_items + 2, hidden, padding_idx=0)  # + [MASK]
        self.attr_emb = nn.Embedding(max(self.n_attributes, 1), hidden)
        self.aap_head, self.mip_head, self.map_head, self.sp_head = (nn.Linear(hidden, hidden) for _ in range(4))
        for module in (self.item_emb, self.attr_emb, self.aap_head, self.mip_head, self.map_head, self.sp_head):
            self._init(module)
        # multi-hot attributes per shifted id (row 0 padding, last row [MASK]); not a parameter
        labels = torch.zeros(n_items + 2, max(self.n_attributes, 1))
        rows, cols = np.nonzero(attrs >= 0)
        labels[torch.from_numpy(rows + 1), torch.from_numpy(attrs[rows, cols])] = 1.0
        self.register_buffer("attr_labels", labels, persistent=False)
        self.mask_prob = mask_prob
        self.weights = {"aap": aap_weight, "mip": mip_weight, "map": map_weight, "sp": sp_weight}
        self.pretrain_epochs, self.pretrain_lr = int(pretrain_epochs), float(pretrain_lr)
        self.stage = "finetune"
        self._long_sequence = torch.zeros(1, dtype=torch.int64)

    def required_inputs(self) -> dict[str, np.ndarray]:
        return {"item_attributes": self.item_attributes}

    def output_table(self) -> torch.Tensor:
        return self.item_emb.weight[1 : self.n_items + 1]

    def objectives(self) -> tuple[str, ...]:
        """The pre-training objectives in use (AAP and MAP need attributes)."""
        names = ("aap", "mip", "map", "sp") if self.n_attributes else ("mip", "sp")
        return tuple(n for n in names if self.weights[n] > 0)

    def protocol(self) -> dict:
        with_attrs = items_with_attributes(self.item_attributes)
        return {
            "pretraining": "+".join(n.upper() for n in self.objectives()),
            "pretrain_epochs": self.pretrain_epochs,
            "attributes": f"title words ({self.n_attributes} words, {with_attrs} items with any)" if self.n_attributes else "none (no item text)",
        }

    # --- stages ---------------------------------------------------------------------------
    @contextmanager
    def pretraining(self):
        """Within the block, ``training_examples`` / ``training_loss`` are the pre-training ones."""
        self.stage = "pretrain"
        try:
            yield self
        finally:
            self.stage = "finetune"

    def training_examples(self, train: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        if self.stage != "pretrain":
            return super().training_examples(train)
        seq = pad_histories(train, self.max_len)
        self._long_sequence = long_sequence(train)
        return {"seq": seq, "length": (seq != 0).sum(1)}

    def training_loss(self, batch, loss, generator):
        if self.stage != "pretrain":
            return super().training_loss(batch, loss, generator)
        return self.pretrain_loss(batch["seq"], generator)

    def pretrain_validation(self, sequences: Sequence[np.ndarray], seed: int, batch_size: int = 1024):
        """``validate(model) -> {"pretrain_loss": mean loss per sequence}`` on ``sequences`` with
        masks and negatives drawn from a fixed ``seed`` (the same every epoch), in eval mode."""
        seq = pad_histories(sequences, self.max_len)
        negatives_from = long_sequence(sequences)

        def validate(model: "S3Rec") -> dict[str, float]:
            was = model.training
            saved, model._long_sequence = model._long_sequence, negatives_from
            gen = torch.Generator().manual_seed(seed)
            total = 0.0
            try:
                model.eval()
                with torch.no_grad():
                    for s in range(0, seq.shape[0], batch_size):
                        part = seq[s : s + batch_size]
                        total += float(model.pretrain_loss(part, gen)) * part.shape[0]
            finally:
                model._long_sequence = saved
                model.train(was)
            return {"pretrain_loss": total / max(1, seq.shape[0])}

        return validate

    # --- pre-training objectives ----------------------------------------------------------
    def _item_masks(self, seq: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        real = seq != 0
        masked = (torch.rand(seq.shape, generator=gen) < self.mask_prob) & real
        none = ~masked.any(1) & real[:, -1]
        masked[none, -1] = True  # left padding: the last column is the most recent item
        return masked

    def _segments(self, seq: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(segment positions ``[B, L]`` bool, negative segment ids ``[B, L]``, rows with a segment)."""
        b, length = seq.shape
        n = (seq != 0).sum(1)
        has = n >= 2
        seg_len = 1 + (torch.rand(b, generator=gen) * torch.div(n, 2, rounding_mode="floor").clamp_min(1)).long()
        seg_len = torch.where(has, seg_len, torch.zeros_like(seg_len))
        room = (n - seg_len + 1).clamp_min(1)
        start = (length - n) + (torch.rand(b, generator=gen) * room).long()
        col = torch.arange(length).unsqueeze(0)
        in_seg = (col >= start.unsqueeze(1)) & (col < (start + seg_len).unsqueeze(1))
        total = self._long_sequence.numel()
        neg_start = (torch.rand(b, generator=gen) * (total - seg_len + 1).clamp_min(1)).long()
        offset = (col - start.unsqueeze(1)).clamp(min=0)
        neg_idx = (neg_start.unsqueeze(1) + offset).clamp(max=total - 1)
        neg_ids = self._long_sequence[neg_idx]
        return in_seg, neg_ids, has

    def pretrain_loss(self, seq: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The weighted sum of the objectives (module docstring) for a batch of windows ``[B, L]``."""
        _, (seq,) = trim_left_padding(seq, ref=seq)  # the encoder drops all-padding columns too
        real = seq != 0
        mask = self._item_masks(seq, gen)
        neg_items = sample_negatives((seq - 1).clamp(min=0), self.n_items, gen) + 1
        masked_seq = torch.where(mask, torch.full_like(seq, self.mask_id), seq)
        h = self.encode(masked_seq, causal=False)
        terms: dict[str, torch.Tensor] = {}
        objectives = self.objectives()
        if "mip" in objectives:
            f = self.mip_head(h[mask])
            pos = torch.sigmoid((f * self.item_emb(seq[mask])).sum(-1))
            neg = torch.sigmoid((f * self.item_emb(neg_items[mask])).sum(-1))
            terms["mip"] = F.binary_cross_entropy(torch.sigmoid(pos - neg), torch.ones_like(pos), reduction="sum")
        if "aap" in objectives:
            keep = real & ~mask
            logits = self.aap_head(h[keep]) @ self.attr_emb.weight.t()
            terms["aap"] = F.binary_cross_entropy_with_logits(logits, self.attr_labels[seq[keep]], reduction="sum")
        if "map" in objectives:
            logits = self.map_head(h[mask]) @ self.attr_emb.weight.t()
            terms["map"] = F.binary_cross_entropy_with_logits(logits, self.attr_labels[seq[mask]], reduction="sum")
        if "sp" in objectives:
            in_seg, neg_ids, has = self._segments(seq, gen)
            fill = torch.full_like(seq, self.mask_id)
            context = self.sp_head(self.encode(torch.where(in_seg, fill, seq), causal=False)[:, -1])
            pos_seg = torch.where(in_seg, seq, torch.where(real, fill, seq))
            neg_seg = torch.where(in_seg, neg_ids, torch.where(real, fill, seq))
            pos = torch.sigmoid((context * self.encode(pos_seg, causal=False)[:, -1]).sum(-1))
            neg = torch.sigmoid((context * self.encode(neg_seg, causal=False)[:, -1]).sum(-1))
            d = torch.sigmoid(pos - neg)[has]
            terms["sp"] = F.binary_cross_entropy(d, torch.ones_like(d), reduction="sum")
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total / seq.shape[0]
