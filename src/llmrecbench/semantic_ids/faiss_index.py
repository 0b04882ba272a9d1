"""Exact cosine nearest neighbours over item embeddings (faiss inner product on unit vectors).

``build_index`` uses a flat (exact) inner-product index, so CPU and GPU give the same neighbours
(up to float rounding of near-ties); the GPU is used only when the installed faiss has GPU support
and a CUDA device is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise ValueError(f"expected a [N, d] array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or inf")
    faiss.normalize_L2(x)  # zero rows stay zero
    return x


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees a CUDA device."""
    try:
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except Exception:  # noqa: BLE001 - CPU-only builds may lack the symbol or raise
        return False


def build_index(vectors: np.ndarray, use_gpu: bool | None = None) -> faiss.Index:
    """Exact inner-product index over the L2-normalised ``vectors`` (cosine similarity).

    ``use_gpu=None`` picks the GPU when :func:`gpu_available`; ``True`` without a GPU raises.
    """
    x = _unit_rows(vectors)
    index: Any = faiss.IndexFlatIP(x.shape[1])
    if use_gpu is None:
        use_gpu = gpu_available()
    if use_gpu:
        if not gpu_available():
            raise RuntimeError("faiss GPU requested but this faiss build has no GPU support or no CUDA device")
        res = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(res, 0, index)
        index._llmrecbench_gpu_resources = res  # keep the resources alive with the index
    index.add(x)
    return index


def nearest(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` cosine neighbours of each (normalised) query: ``(scores float32 [Q, k], ids int64 [Q, k])``.

    With ``k`` larger than the index, missing slots have id ``-1`` and score ``-inf``-like
    (faiss's ``-3.4e38``).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    q = _unit_rows(queries)
    scores, ids = index.search(q, k)
    return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)


def knn_report(
    item_ids: Sequence[Any],
    titles: Sequence[str],
    vectors: np.ndarray,
    sample: int = 20,
    k: int = 5,
    seed: int = 0,
    index: faiss.Index | None = None,
) -> list[dict[str, Any]]:
    """For ``sample`` randomly chosen items (seeded), their ``k`` nearest other items.

    Returns ``[{"item_id", "title", "neighbours": [{"item_id", "title", "score"}, ...]}, ...]``,
    neighbours sorted by cosine similarity descending, the item itself excluded. Handy as a sanity
    check that the embedding space groups similar products.
    """
    n = len(item_ids)
    if len(titles) != n or len(vectors) != n:
        raise ValueError(f"item_ids ({n}), titles ({len(titles)}) and vectors ({len(vectors)}) differ in length")
    if n == 0:
        return []
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    if index is None:
        index = build_index(vectors)
    kk = min(k + 1, n)
    scores, ids = nearest(index, np.asarray(vectors, dtype=np.float32)[picks], kk)
    out = []
    for row, i in enumerate(picks):
        neigh = []
        for s, j in zip(scores[row], ids[row]):
            if j < 0 or j == i:
                continue
            neigh.append({"item_id": item_ids[j], "title": titles[j], "score": round(float(s), 6)})
        out.append({"item_id": item_ids[i], "title": titles[i], "neighbours": neigh[:k]})
    return out
