"""Evaluation metrics as pure functions of ranks or predictions; formulas in docstrings."""

from llmrecbench.metrics.candidates import (
    candidate_metrics,
    candidate_order,
    candidate_ranks,
    candidate_topk,
    target_columns,
    tie_keys,
)
from llmrecbench.metrics.ranking import (
    hit_rate_at_k,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    ranks_from_scores,
)
from llmrecbench.metrics.rating import clip_ratings, mae, rating_metrics, rmse

__all__ = [
    "candidate_metrics",
    "candidate_order",
    "candidate_ranks",
    "candidate_topk",
    "clip_ratings",
    "hit_rate_at_k",
    "mae",
    "mrr",
    "ndcg_at_k",
    "ranking_metrics",
    "ranks_from_scores",
    "rating_metrics",
    "rmse",
    "target_columns",
    "tie_keys",
]
