"""RMSE / MAE of rating predictions against hand-computed values, and clipping to the star scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmrecbench.metrics import clip_ratings, mae, rating_metrics, rmse


def test_rmse_and_mae_by_hand():
    pred, target = [3.5, 2.0, 5.0, 1.0], [4.0, 2.0, 3.0, 2.0]
    # errors -0.5, 0, 2, -1: squares 0.25 + 0 + 4 + 1 = 5.25; absolutes 0.5 + 0 + 2 + 1 = 3.5
    assert rmse(pred, target) == pytest.approx(math.sqrt(5.25 / 4))
    assert mae(pred, target) == pytest.approx(3.5 / 4)
    assert rating_metrics(pred, target) == {"RMSE": pytest.approx(math.sqrt(5.25 / 4)), "MAE": pytest.approx(0.875)}


def test_perfect_prediction_and_tensor_input():
    t = torch.tensor([1.0, 4.0, 5.0])
    assert rmse(t, t.clone()) == 0.0 and mae(t.numpy(), t) == 0.0
    # float32 inputs are computed in float64
    assert rmse(torch.tensor([0.1], dtype=torch.float32), [0.0]) == pytest.approx(0.1, rel=1e-6)


def test_rmse_is_at_least_mae():
    rng = np.random.default_rng(0)
    p, t = rng.uniform(1, 5, 100), rng.integers(1, 6, 100)
    assert rmse(p, t) >= mae(p, t)


def test_empty_and_mismatched_input_raise():
    with pytest.raises(ValueError, match="no predictions"):
        rmse([], [])
    with pytest.raises(ValueError, match="no predictions"):
        mae(np.empty(0), np.empty(0))
    with pytest.raises(ValueError, match="no predictions"):
        rating_metrics([], [])
    with pytest.raises(ValueError, match="differ in shape"):
        rmse([1.0, 2.0], [1.0])


def test_clip_ratings():
    assert clip_ratings([0.2, 1.0, 3.3, 5.0, 7.5]).tolist() == [1.0, 1.0, 3.3, 5.0, 5.0]
    assert clip_ratings(np.array([-1.0, 2.0]), low=0.0, high=1.0).tolist() == [0.0, 1.0]
    t = clip_ratings(torch.tensor([0.0, 6.0], dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.tolist() == [1.0, 5.0]
    with pytest.raises(ValueError, match="empty"):
        clip_ratings([1.0], low=5.0, high=1.0)


def test_clipping_never_increases_the_error_of_in_range_targets():
    rng = np.random.default_rng(1)
    p, t = rng.normal(3, 2, 500), rng.integers(1, 6, 500)
    assert rmse(clip_ratings(p), t) <= rmse(p, t) and mae(clip_ratings(p), t) <= mae(p, t)
    # by hand: prediction 6.5 for a 5-star target: error 1.5 unclipped, 0 clipped
    assert rmse(clip_ratings([6.5]), [5.0]) == 0.0
