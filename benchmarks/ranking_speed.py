"""The ranking part of full-ranking evaluation on Beauty's shape: history mask, ranks, top-20 lists.

All 22,363 Beauty test users against its 12,101 items, in batches of 1,024: the part of the
evaluator after the model's forward (``llmrecbench.evaluation.evaluate_full_ranking``). Histories
are Beauty's real test histories (train + valid items of each user, from the mirror's
``user_sequence.txt``); scores are seeded random floats with a share of exact ties (as
popularity-like models produce). It times the evaluator's ranking part
(:func:`llmrecbench.evaluation.rank_batch`: -inf written at the history pairs, ranks by numpy
counts, :func:`~llmrecbench.metrics.ranking.topk_stable`) against the evaluator's earlier one (a
``[B, N]`` bool mask, ``masked_fill``, torch bool sums, a stable full sort of every row), checks
that ranks and top-20 lists are byte-identical, and prints the medians of ``--repeats`` runs and
their ratio.

    .venv/bin/python benchmarks/ranking_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from llmrecbench.config import configured_mirror
from llmrecbench.evaluation import history_mask_index, rank_batch

MIRROR = configured_mirror() / "amazon-2014-5core" / "beauty" / "user_sequence.txt"


def beauty_test_histories() -> tuple[list[np.ndarray], np.ndarray, int]:
    """Per user the items before the last one (the test input) and the last one (the target)."""
    rows = [line.split() for line in MIRROR.read_text().splitlines() if line.strip()]
    ids: dict[str, int] = {}
    seqs = [np.asarray([ids.setdefault(i, len(ids)) for i in r[1:]], dtype=np.int64) for r in rows]
    return [s[:-1] for s in seqs], np.asarray([s[-1] for s in seqs]), len(ids)


def earlier_ranking_part(scores: torch.Tensor, hist, targets: np.ndarray):
    """The evaluator before this change: bool mask, masked_fill, bool sums, stable full sort."""
    r, c = history_mask_index(hist)
    hit = torch.zeros(scores.shape, dtype=torch.bool)
    hit[r, c] = True
    masked = scores.masked_fill(hit, float("-inf"))
    t = torch.from_numpy(targets)
    ts = masked.gather(1, t.view(-1, 1))
    cols = torch.arange(masked.shape[1]).view(1, -1)
    ranks = (masked > ts).sum(1) + ((masked == ts) & (cols < t.view(-1, 1))).sum(1) + 1
    lists = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :20]
    return ranks.numpy(), lists.numpy()


def current_ranking_part(scores: torch.Tensor, hist, targets: np.ndarray):
    ranks, lists, _ = rank_batch(scores, hist, targets, mask_history=True, topk=20)
    return ranks, lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    histories, targets, n_items = beauty_test_histories()
    gen = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, len(histories), args.batch_size):
        hist = histories[start : start + args.batch_size]
        scores = torch.rand(len(hist), n_items, generator=gen)
        scores[:, ::50] = 0.5  # 2% of the items tie exactly
        batches.append((scores, hist, targets[start : start + args.batch_size]))

    def run(fn) -> tuple[float, list]:
        t0 = time.perf_counter()
        out = [fn(s, h, t) for s, h, t in batches]
        return time.perf_counter() - t0, out

    timings: dict[str, list[float]] = {"earlier": [], "rank_batch": []}
    reference = None
    for _ in range(args.repeats):
        for name, fn in (("earlier", earlier_ranking_part), ("rank_batch", current_ranking_part)):
            seconds, out = run(fn)
            timings[name].append(seconds)
            got = (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]))
            if reference is None:
                reference = got
            if not (np.array_equal(got[0], reference[0]) and np.array_equal(got[1], reference[1])):
                raise SystemExit(f"{name}: ranks or top-20 lists differ from the earlier evaluator's")
    med = {k: statistics.median(v) for k, v in timings.items()}
    print(f"{len(histories)} users x {n_items} items, batch {args.batch_size}, {args.threads} threads, {args.repeats} repeats")
    for name, v in timings.items():
        print(f"  {name:10s} mask + ranks + top-20: median {med[name]:.3f} s (min {min(v):.3f}, max {max(v):.3f})")
    print(f"  ratio earlier / rank_batch: {med['earlier'] / med['rank_batch']:.1f}x; ranks and top-20 lists byte-identical")


if __name__ == "__main__":
    main()
