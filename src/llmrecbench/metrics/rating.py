"""Rating-prediction metrics (P5 / LLMRec rating task): RMSE and MAE of predicted star ratings.

All functions take predictions and targets as array-likes or tensors of one shape, computed in
float64. Empty input raises ValueError (a metric of no prediction is undefined). Non-finite
predictions are not rejected: they make the metric NaN or infinite, which early stopping never
takes as an improvement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _as_array(pred)
    t = _as_array(target)
    if p.shape != t.shape:
        raise ValueError(f"predictions and targets differ in shape: {p.shape} vs {t.shape}")
    if p.size == 0:
        raise ValueError("rating metric of no predictions")
    return p.ravel(), t.ravel()


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def rmse(pred: Any, target: Any) -> float:
    """RMSE = sqrt( (1/N) * sum_k (pred_k - target_k)^2 )."""
    p, t = _as_pair(pred, target)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(pred: Any, target: Any) -> float:
    """MAE = (1/N) * sum_k |pred_k - target_k|."""
    p, t = _as_pair(pred, target)
    return float(np.mean(np.abs(p - t)))


def clip_ratings(pred: Any, low: float = 1.0, high: float = 5.0) -> Any:
    """clip(pred) = min(max(pred, low), high), elementwise; the star scale is [1, 5] by default.

    A tensor comes back as a tensor (same dtype), anything else as a float64 numpy array.
    """
    if low > high:
        raise ValueError(f"clip range is empty: low {low} > high {high}")
    if isinstance(pred, torch.Tensor):
        return pred.clamp(low, high)
    return np.clip(np.asarray(pred, dtype=np.float64), low, high)


def rating_metrics(pred: Any, target: Any) -> dict[str, float]:
    """``{"RMSE": rmse(pred, target), "MAE": mae(pred, target)}`` of the predictions as given
    (clip them first with :func:`clip_ratings` to score on the star scale)."""
    return {"RMSE": rmse(pred, target), "MAE": mae(pred, target)}
