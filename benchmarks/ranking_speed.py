"""The ranking part of full-ranking evaluation on Beauty's shape: history mask, ranks, top-20 lists.

All 22,363 Beauty test users against its 12,101 items, in batches of 1,024: the part of the
evaluator after the model's forward (``llmrecbench.evaluation.evaluate_full_ranking``). Histories
are Beauty's real test histories (train + valid items of each user, from the mirror's
``user_sequence.txt``); scores are seeded random floats with a share of exact ties (as
popularity-like models produce). It times the top-k by a stable full sort of every row (the
evaluator's earlier way) against :func:`llmrecbench.metrics.ranking.topk_stable`, checks that both
give byte-identical lists, and prints the medians of ``--repeats`` runs and their ratio.

    .venv/bin/python benchmarks/ranking_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from llmrecbench.config import configured_mirror
from llmrecbench.evaluation import history_mask_index
from llmrecbench.metrics import ranks_from_scores
from llmrecbench.metrics.ranking import topk_stable

MIRROR = configured_mirror() / "amazon-2014-5core" / "beauty" / "user_sequence.txt"


def beauty_test_histories() -> tuple[list[np.ndarray], np.ndarray, int]:
    """Per user the items before the last one (the test input) and the last one (the target)."""
    rows = [line.split() for line in MIRROR.read_text().splitlines() if line.strip()]
    ids: dict[str, int] = {}
    seqs = [np.asarray([ids.setdefault(i, len(ids)) for i in r[1:]], dtype=np.int64) for r in rows]
    return [s[:-1] for s in seqs], np.asarray([s[-1] for s in seqs]), len(ids)


def ranking_part(scores: torch.Tensor, hist, targets: torch.Tensor, topk_fn) -> tuple[np.ndarray, np.ndarray]:
    r, c = history_mask_index(hist)
    hit = torch.zeros(scores.shape, dtype=torch.bool)
    hit[r, c] = True
    masked = scores.masked_fill(hit, float("-inf"))
    return ranks_from_scores(masked, targets).numpy(), topk_fn(masked).numpy()


def full_sort(scores: torch.Tensor) -> torch.Tensor:
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :20]


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
        batches.append((scores, hist, torch.from_numpy(targets[start : start + args.batch_size])))

    def run(topk_fn) -> tuple[float, list]:
        t0 = time.perf_counter()
        out = [ranking_part(s, h, t, topk_fn) for s, h, t in batches]
        return time.perf_counter() - t0, out

    timings: dict[str, list[float]] = {"stable full sort": [], "topk_stable": []}
    reference = None
    for _ in range(args.repeats):
        for name, fn in (("stable full sort", full_sort), ("topk_stable", lambda s: topk_stable(s, 20))):
            seconds, out = run(fn)
            timings[name].append(seconds)
            lists = np.concatenate([o[1] for o in out])
            if reference is None:
                reference = lists
            if not np.array_equal(lists, reference):
                raise SystemExit(f"{name}: top-20 lists differ from the stable full sort")
    med = {k: statistics.median(v) for k, v in timings.items()}
    print(f"{len(histories)} users x {n_items} items, batch {args.batch_size}, {args.threads} threads, {args.repeats} repeats")
    for name, v in timings.items():
        print(f"  {name:17s} mask + ranks + top-20: median {med[name]:.3f} s (min {min(v):.3f}, max {max(v):.3f})")
    print(f"  ratio full sort / topk_stable: {med['stable full sort'] / med['topk_stable']:.1f}x; top-20 lists byte-identical")


if __name__ == "__main__":
    main()
