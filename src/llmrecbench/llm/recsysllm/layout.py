"""Part A / Part B layout, 2-D positions and the attention mask of blank infilling.

For a source text ``x`` with blanked spans ``s_1 .. s_m`` (chronological; the answer is always
``s_m``):

* Part A (the corrupted text) is ``x`` with each span replaced by one [MASK]; its tokens'
  inter-positions are 0, 1, ... and their intra-positions come from the entity pool on the
  corrupted ids (0 outside entities, 1..len inside one; [MASK] is in no entity);
* Part B is ``[START] s_1 .. [START] s_m``; every token of span ``i`` takes the inter-position of
  its [MASK] and the intra-positions of :func:`~.entities.dynamic_intra`; the labels are
  ``s_i [END]``, i.e. position ``q`` predicts the token after it, and only Part B has labels.

Attention: Part A attends to Part A (bidirectional); Part B attends to Part A and causally to
Part B. With ``two_d=False`` (the ``recsysllm_no_2d_pos`` ablation) positions are ordinary
(0..T-1 over A then B) and intra-positions are not used.

Figure 1 of the paper (x1..x7, e1 = x1 x2 x3, e2 = x6 x7, spans e1 and x5) gives Part A
``[M] x4 [M] x6 x7`` with inter 0..4 and intra 0 0 0 1 2, and Part B ``[S] x1 x2 x3 [S] x5`` with
inter 0 0 0 0 2 2 and intra 1 2 3 4 1 2 (``tests/unit/test_recsysllm.py`` writes it down).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from llmrecbench.llm.recsysllm.entities import EntityPool, dynamic_intra

SPECIAL_TOKENS = ("<|mask|>", "<|span_start|>", "<|span_end|>")


@dataclass(frozen=True)
class SpecialIds:
    mask: int
    start: int
    end: int

    @classmethod
    def of(cls, tok) -> "SpecialIds":
        ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
        return cls(*(int(i) for i in ids))


@dataclass
class Example:
    """One unpadded blank-infilling sequence: Part A then Part B."""

    ids: list[int]
    inter: list[int]
    intra: list[int]
    labels: list[int]  # -100 where no loss (all of Part A)
    n_a: int  # length of Part A


def build_example(
    source: Sequence[int],
    spans: Sequence[tuple[int, int]],
    answer: Sequence[int] | None,
    specials: SpecialIds,
    pool: EntityPool,
    two_d: bool = True,
) -> Example:
    """Lay out ``source`` with blanked ``spans`` (sorted, disjoint) and the ``answer`` span last
    (``answer=None``: no answer span, as in the paper's Figure 1)."""
    part_a: list[int] = []
    mask_at: list[int] = []
    pieces: list[list[int]] = []
    i = 0
    for a, b in spans:
        if a < i or b <= a or b > len(source):
            raise ValueError(f"spans {list(spans)} are not sorted, disjoint spans of {len(source)} tokens")
        part_a += list(source[i:a])
        mask_at.append(len(part_a))
        part_a.append(specials.mask)
        pieces.append(list(source[a:b]))
        i = b
    part_a += list(source[i:])
    if answer is not None:
        mask_at.append(len(part_a))
        part_a.append(specials.mask)
        pieces.append(list(answer))

    ids, inter, intra, labels = list(part_a), list(range(len(part_a))), pool.part_a_intra(part_a), [-100] * len(part_a)
    for pos, piece in zip(mask_at, pieces):
        ids += [specials.start] + piece
        inter += [pos] * (len(piece) + 1)
        intra += dynamic_intra(pool, piece)
        labels += piece + [specials.end]
    if not two_d:
        inter, intra = list(range(len(ids))), [0] * len(ids)
    return Example(ids, inter, intra, labels, len(part_a))


def blank_mask(n_a: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Boolean [B, 1, W, W] mask (True = may attend) of left-padded rows with Part A of length
    ``n_a`` and total length ``lengths``: A -> A, B -> A and B -> earlier B; padding attends to
    itself only (a row of all False would make attention NaN)."""
    j = torch.arange(width, device=n_a.device)
    start = (width - lengths).unsqueeze(1)  # [B, 1] first real column
    real = j.unsqueeze(0) >= start
    in_a = real & (j.unsqueeze(0) < start + n_a.unsqueeze(1))
    in_b = real & ~in_a
    q_a, k_a = in_a.unsqueeze(2), in_a.unsqueeze(1)
    q_b, k_b = in_b.unsqueeze(2), in_b.unsqueeze(1)
    causal = j.view(1, 1, -1) <= j.view(1, -1, 1)
    allowed = ((q_a | q_b) & k_a) | (q_b & k_b & causal)
    allowed |= torch.eye(width, dtype=torch.bool, device=n_a.device).unsqueeze(0) & ~real.unsqueeze(2)
    return allowed.unsqueeze(1)


def collate(examples: Sequence[Example], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Left-pad a batch: ids, 2-D padding mask, 4-D attention mask, inter / intra positions, labels."""
    width = max(len(e.ids) for e in examples)
    B = len(examples)
    ids = torch.full((B, width), pad_id, dtype=torch.long)
    inter = torch.zeros((B, width), dtype=torch.long)
    intra = torch.zeros((B, width), dtype=torch.long)
    labels = torch.full((B, width), -100, dtype=torch.long)
    pad_mask = torch.zeros((B, width), dtype=torch.long)
    for r, e in enumerate(examples):
        s = width - len(e.ids)
        ids[r, s:] = torch.as_tensor(e.ids)
        inter[r, s:] = torch.as_tensor(e.inter)
        intra[r, s:] = torch.as_tensor(e.intra)
        labels[r, s:] = torch.as_tensor(e.labels)
        pad_mask[r, s:] = 1
    n_a = torch.as_tensor([e.n_a for e in examples])
    lengths = torch.as_tensor([len(e.ids) for e in examples])
    out = {"ids": ids, "inter": inter, "intra": intra, "labels": labels, "pad_mask": pad_mask,
           "attention": blank_mask(n_a, lengths, width), "n_b": int((lengths - n_a).max())}
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in out.items()}
